// SentencePiece tokenizer.model files: encoded/decoded by libsentencepiece itself, plus a small
// reader of the ModelProto fields (pieces, scores, types, normalizer flags) that the library's
// public API does not expose — needed to export the vocabulary to GGUF and to build the pure
// SpmBpeTokenizer from the same file.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/spm_bpe.h"
#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace edgellm::tok {

// What tokenizer.model says (sentencepiece_model.proto field numbers in the .cpp).
struct SpmModelInfo {
  ScoredVocab vocab;
  int model_type = 1;  // TrainerSpec.ModelType: 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string normalizer_name;
  bool has_charsmap = false;  // a non-identity normalization rule is compiled in
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Parses the protobuf; throws Error naming `path` and the field on malformed input.
SpmModelInfo read_spm_model(const std::string& bytes, const std::string& path);

// The pure BPE equivalent of a BPE tokenizer.model with identity normalization; throws naming
// `path` for models it cannot reproduce (unigram, compiled normalization rules).
std::unique_ptr<SpmBpeTokenizer> spm_bpe_from_model(const SpmModelInfo& info,
                                                    const std::string& path);

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override;
  std::string kind() const override { return "sentencepiece"; }

  const SpmModelInfo& info() const { return info_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  SpmModelInfo info_;
};

}  // namespace edgellm::tok
