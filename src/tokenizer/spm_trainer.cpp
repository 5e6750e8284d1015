#include "tokenizer/spm_trainer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <chrono>
#include <filesystem>
#include <unordered_map>

#include "util/error.h"

namespace edgellm {

namespace fs = std::filesystem;

SpmTrainResult train_spm_tokenizer(const SpmTrainOptions& o) {
  if (o.files.empty()) fail("[train-tokenizer] no --text files given");
  // 256 byte pieces + unk/bos/eos must fit, and a vocabulary is addressed by int32 ids.
  if (o.vocab_size < 259 + 8 || o.vocab_size > 1000000)
    fail("[train-tokenizer] --vocab {} outside [267, 1000000] (byte fallback needs 259 ids)",
         o.vocab_size);
  if (o.out_dir.empty()) fail("[train-tokenizer] --out is required");
  std::string inputs;
  for (const std::string& f : o.files) {
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) fail("[train-tokenizer] {}: not a readable file", f);
    if (f.find(',') != std::string::npos)
      fail("[train-tokenizer] {}: file names with ',' are not supported by the trainer", f);
    inputs += (inputs.empty() ? "" : ",") + f;
  }
  const fs::path out(o.out_dir), tmp(o.out_dir + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail("[train-tokenizer] cannot create {}: {}", tmp.string(), ec.message());
  const std::unordered_map<std::string, std::string> args = {
      {"input", inputs},
      {"model_prefix", (tmp / "tokenizer").string()},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"input_sentence_size", std::to_string(o.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(std::max(1, o.threads))},
      {"minloglevel", "1"},
  };
  // The sentence sample is drawn with SentencePiece's global generator: seed it for a
  // reproducible vocabulary.
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned>(o.seed));
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = sentencepiece::SentencePieceTrainer::Train(args);
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    fail("[train-tokenizer] libsentencepiece trainer failed on {}: {}", inputs, st.ToString());
  }
  fs::remove_all(out, ec);
  fs::rename(tmp, out, ec);
  if (ec)
    fail("[train-tokenizer] cannot rename {} to {}: {}", tmp.string(), o.out_dir, ec.message());
  SpmTrainResult r;
  r.model_path = (out / "tokenizer.model").string();
  r.vocab_size = o.vocab_size;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace edgellm
