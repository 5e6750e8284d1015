// Tokenizers. encode() never adds BOS/EOS: the caller adds BOS once per document or window
// (DESIGN.md §5). Implementations:
//   * llama2.c tokenizer.bin and GGUF "llama" vocabularies: SentencePiece-style BPE over scored
//     pieces with byte fallback (<0xNN>) and a dummy-prefix space;
//   * SentencePiece .model files through libsentencepiece;
//   * HF tokenizer.json byte-level BPE (Llama-3, Qwen2/3) and GGUF "gpt2" vocabularies: regex
//     pre-tokenizer (PCRE2), byte-to-unicode mapping, ranked merges, added/special tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Decodes a whole sequence (special tokens such as BOS render as nothing). For streaming,
  // decode the growing prefix and print the new suffix: byte-level pieces may split UTF-8.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual std::string kind() const = 0;  // "llama2c", "sentencepiece", "bpe", "gguf-llama", ...
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }

 protected:
  int bos_id_ = 1;
  int eos_id_ = 2;
};

// Loads tokenizer.bin (llama2.c), *.model (SentencePiece), tokenizer.json (HF), or a directory
// holding one of tokenizer.json / tokenizer.model. Throws Error naming the file and field.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// From GGUF tokenizer.* metadata (Checkpoint::gguf_tokenizer); `source` names the file.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const nlohmann::json& meta,
                                               const std::string& source);
// GGUF tokenizer.* metadata describing `tok` (for GGUF export of models with any tokenizer).
nlohmann::json tokenizer_to_gguf(const Tokenizer& tok);

}  // namespace edgellm
