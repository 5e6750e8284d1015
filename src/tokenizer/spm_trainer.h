// Training a SentencePiece BPE vocabulary with libsentencepiece's own trainer, in the settings
// Llama's tokenizer uses (BPE, byte fallback so no text is ever <unk>, digits split, no text
// normalisation, the dummy-prefix space, unk/bos/eos = 0/1/2, no pad). The result is a
// `tokenizer.model` that every command loads (tokenizer.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm {

struct SpmTrainOptions {
  std::vector<std::string> files;  // plain UTF-8 text; one sentence/paragraph per line
  int vocab_size = 4096;
  std::string out_dir;                  // receives tokenizer.model and tokenizer.vocab
  int64_t max_sentences = 1000000;      // lines sampled (seeded) from the input for training
  int64_t max_sentence_length = 16384;  // bytes; longer lines are skipped by the trainer
  double character_coverage = 0.99995;  // rarer characters are spelled with byte pieces
  uint64_t seed = 0;
  int threads = 2;
};

struct SpmTrainResult {
  std::string model_path;  // out_dir/tokenizer.model
  int vocab_size = 0;
  double seconds = 0;
};

// Trains into `out_dir`.tmp and renames it into place, so `out_dir` appears complete or not at
// all. Throws Error naming the file or option at fault.
SpmTrainResult train_spm_tokenizer(const SpmTrainOptions& o);

}  // namespace edgellm
