#include <malloc.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  // Large blocks straight from (and back to) the OS: glibc's adaptive mmap threshold otherwise
  // keeps freed staging buffers (weights re-encoded at load, conversion tiles) on the heap and
  // they stay in the resident set for the whole run.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  CLI::App app{"edgellm: LLM adaptation on edge devices (Edge-LLM, DAC 2024)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgellm 0.1.0");
  using namespace edgellm::cli;
  // Each line registers one subcommand (src/cli/cmd_<name>.cpp).
  register_info(app);
  register_generate(app);
  register_ppl(app);
  register_tune(app);
  register_merge(app);
  register_train_tokenizer(app);
  register_pretrain(app);
  register_bench(app);
  register_convert(app);
  register_compress(app);
  register_make_model(app);
  register_sim(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const edgellm::Error& e) {
    std::fprintf(stderr, "edgellm: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgellm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
