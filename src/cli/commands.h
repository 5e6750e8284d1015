// The CLI is thin: each subcommand file registers its options on the CLI11 app and, when run,
// calls the library and prints (text, or JSON with --json). No algorithm lives under src/cli.
#pragma once

#include <CLI/CLI.hpp>

namespace edgellm::cli {

void register_info(CLI::App& app);
void register_generate(CLI::App& app);
void register_ppl(CLI::App& app);
void register_mmlu(CLI::App& app);
void register_eval_task(CLI::App& app);
void register_convert(CLI::App& app);
void register_compress(CLI::App& app);
void register_profile(CLI::App& app);
void register_make_model(CLI::App& app);
void register_bench(CLI::App& app);
void register_sim(CLI::App& app);
void register_tune(CLI::App& app);
void register_merge(CLI::App& app);
void register_train_tokenizer(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_pipeline(CLI::App& app);

}  // namespace edgellm::cli
