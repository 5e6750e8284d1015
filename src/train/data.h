// Training data: token sequences with per-position targets (−1 = not in the loss).
//   * plain text: [BOS] + encode(text), cut into packed windows of seq+1 tokens (stride seq):
//     window i predicts tokens i·seq+1 .. i·seq+seq from the seq before them;
//   * Alpaca-style instructions (.json array or .jsonl, records with "instruction", optional
//     "input", "output"): the standard Stanford-Alpaca prompt template, [BOS] + encode(prompt +
//     output) + [EOS], with every prompt token masked out of the loss (only output + EOS count).
//     Records longer than seq+1 tokens are truncated (counted in Dataset::truncated).
// The held-out split is deterministic: the last windows of a text, a seeded shuffle of records.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "train/token_corpus.h"
#include "util/rng.h"

namespace edgellm {

struct Example {
  std::vector<int32_t> tokens;   // [T] inputs
  std::vector<int32_t> targets;  // [T] next token, or −1 where masked
};

struct Dataset {
  std::string source, kind;  // file, "text" | "alpaca"
  std::vector<Example> train, val;
  int64_t truncated = 0;  // records cut to seq
  int64_t dropped = 0;    // records with no loss tokens left after truncation
  // Pretraining: packed windows over a memory-mapped token corpus, used instead of the
  // `train` / `val` vectors when set (nothing is materialised per window).
  std::shared_ptr<const TokenWindows> train_windows, val_windows;

  size_t n_train() const { return train_windows ? train_windows->size() : train.size(); }
  size_t n_val() const { return val_windows ? val_windows->size() : val.size(); }
  // Example i of the split; `buf` holds it when it is computed from windows.
  const Example& train_at(size_t i, Example& buf) const;
  const Example& val_at(size_t i, Example& buf) const;
};

std::string alpaca_prompt(const std::string& instruction, const std::string& input);

// The records of an Alpaca .json array or .jsonl file, in file order ("input" may be absent or
// null: empty). Every failure names the file, the record (or line) and the field.
struct AlpacaRecord {
  std::string instruction, input, output;
};
std::vector<AlpacaRecord> read_alpaca_records(const std::string& path);

Dataset load_text_dataset(const std::string& path, const Tokenizer& tok, int64_t seq,
                          double val_frac);
Dataset load_alpaca_dataset(const std::string& path, const Tokenizer& tok, int64_t seq,
                            double val_frac, uint64_t seed);
// .json / .jsonl -> Alpaca, anything else -> plain text. Every failure names the file (and the
// record and field for JSON); an empty result is an error.
Dataset load_dataset(const std::string& path, const Tokenizer& tok, int64_t seq, double val_frac,
                     uint64_t seed);

// Deterministic epoch-wise shuffled order over n examples: epoch e is a Fisher-Yates shuffle
// seeded by (seed, e). (epoch, pos) is the whole state, for checkpoints.
class DataOrder {
 public:
  DataOrder(size_t n, uint64_t seed);
  size_t next();
  int64_t epoch() const { return epoch_; }
  int64_t pos() const { return pos_; }
  void restore(int64_t epoch, int64_t pos);

 private:
  void shuffle();
  size_t n_;
  uint64_t seed_;
  int64_t epoch_ = 0, pos_ = 0;
  std::vector<size_t> perm_;
};

}  // namespace edgellm
