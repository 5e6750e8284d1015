#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cli/commands.h"
#include "util/error.h"

namespace {

// Threads that wait must yield the core. With the OpenMP runtime's default policy, workers spin
// at barriers; when another process keeps a core busy, the thread they wait for is descheduled
// and everything runs tens of times slower (measurements in docs/reliability.md). libgomp (and so
// oneDNN's OpenMP build) reads OMP_WAIT_POLICY once, when it is loaded, before main() runs: setting
// it here affects only a fresh process image, so the program re-executes itself once with PASSIVE
// set. A policy the user chose (any value, e.g. ACTIVE on a dedicated machine) is left alone.
void ensure_passive_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): run on with the runtime's default policy.
}

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_wait_policy(argv);
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
  register_mmlu(app);
  register_eval_task(app);
  register_tune(app);
  register_merge(app);
  register_train_tokenizer(app);
  register_pretrain(app);
  register_bench(app);
  register_convert(app);
  register_compress(app);
  register_profile(app);
  register_make_model(app);
  register_sim(app);
  register_pipeline(app);
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
