// A text corpus tokenized once into a token file that later runs memory-map instead of
// re-tokenizing, and the packed pretraining windows cut from it.
//
// Token file (little-endian): "EDGETOK1" | u32 width (2: u16 ids, 4: u32 ids) | u32 n_docs |
// u64 n_tokens | u64 key | n_docs × u64 document start | n_tokens ids. The key hashes the
// tokenizer file and every input file's bytes in order, so a changed input or tokenizer gives a
// new file name and never a stale corpus. Each input file is one document and starts with BOS.
// Files are cut at paragraph breaks ("\n\n") into chunks of about 4 MB that are encoded in
// parallel; each chunk is encoded on its own, exactly as a file is (the dummy-prefix space
// starts it), so the stream is the same whatever the thread count.
//
// Windows: window k covers stream tokens s[k·seq, (k+1)·seq); its inputs are BOS followed by the
// first seq−1 of them and its targets are all seq of them — every token of the stream is a
// target exactly once, and every sequence starts with BOS. A target that is BOS (a document
// start) is masked: nothing predicts where a new book begins.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/mapped_file.h"

namespace edgellm {

struct Example;

class TokenCorpus {
 public:
  // Loads cache_dir/tokens-<key>.bin, or tokenizes `files` into it first (atomically).
  // `tokenizer_file` is hashed into the key (the file the tokenizer was loaded from).
  static std::shared_ptr<TokenCorpus> build(const std::vector<std::string>& files,
                                            const Tokenizer& tok, const std::string& tokenizer_file,
                                            const std::string& cache_dir, bool* reused = nullptr);
  // Maps an existing token file (bounds-checked header).
  static std::shared_ptr<TokenCorpus> open(const std::string& path);

  int64_t size() const { return n_; }
  int32_t at(int64_t i) const { return w16_ ? int32_t(w16_[i]) : int32_t(w32_[i]); }
  const std::vector<int64_t>& doc_starts() const { return docs_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  const uint16_t* w16_ = nullptr;
  const uint32_t* w32_ = nullptr;
  int64_t n_ = 0;
  std::vector<int64_t> docs_;
};

// Packed windows of `seq` targets over stream tokens [begin, end) of a corpus; `stride` > 1 takes
// every stride-th window (an evenly spaced validation sample).
struct TokenWindows {
  std::shared_ptr<const TokenCorpus> corpus;
  int64_t begin = 0, end = 0, seq = 0, stride = 1;
  int32_t bos = 1;

  size_t size() const;
  // Fills e (resized to seq) with window i.
  void fill(size_t i, Example& e) const;
};

}  // namespace edgellm
