// edgellm train-tokenizer: a SentencePiece BPE vocabulary trained on the user's text
// (tokenizer/spm_trainer.h), written as DIR/tokenizer.model.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "tokenizer/spm_trainer.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::cli {

void register_train_tokenizer(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train-tokenizer",
      "train a SentencePiece BPE tokenizer (byte fallback, Llama-style settings) on text files");
  struct Args {
    SpmTrainOptions o;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--text", a->o.files, "UTF-8 text files (one paragraph per line)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--vocab", a->o.vocab_size, "vocabulary size (incl. 256 byte pieces)");
  cmd->add_option("--out,-o", a->o.out_dir, "output directory (tokenizer.model)")->required();
  cmd->add_option("--max-sentences", a->o.max_sentences, "lines sampled for training");
  cmd->add_option("--seed", a->o.seed, "seed of the line sample");
  cmd->add_option("--threads,-t", a->o.threads, "trainer threads");
  cmd->add_flag("--json", a->json, "machine-readable JSON on stdout");
  cmd->callback([a] {
    const SpmTrainResult r = train_spm_tokenizer(a->o);
    // Load it back through the same loader every command uses: a model file that trains but
    // does not load is an error here, not later.
    const auto tok = load_tokenizer(r.model_path);
    if (a->json)
      return print_json({{"model", r.model_path},
                         {"vocab_size", tok->vocab_size()},
                         {"kind", tok->kind()},
                         {"seconds", r.seconds}});
    fmt::print("{} ({} pieces, {}) in {:.1f} s\n", r.model_path, tok->vocab_size(), tok->kind(),
               r.seconds);
  });
}

}  // namespace edgellm::cli
