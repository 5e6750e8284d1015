// SentencePiece-style BPE over scored pieces: the encoder of llama2.c's tokenizer.bin and of GGUF
// "llama" vocabularies, and a pure re-implementation of libsentencepiece's BPE model for
// tokenizer.model files whose normalization is the identity (Llama-1/2, TinyLlama, stories*).
//
// Encoding (sentencepiece bpe_model.cc, llama2.c encode()):
//   1. optionally strip leading/trailing spaces and collapse runs (remove_extra_whitespaces);
//   2. replace ' ' with the space symbol ("▁", or " " in llama2.c's vocab) and prepend one as
//      the dummy prefix (llama2.c: "prepend the ' ' token"), only for non-empty text;
//   3. split into UTF-8 characters (user-defined pieces are matched whole and never merge);
//   4. repeatedly merge the adjacent pair whose concatenation is a piece with the highest score,
//      leftmost on ties;
//   5. a symbol that is not a piece becomes its UTF-8 bytes as <0xNN> pieces (byte fallback) or
//      <unk>; an UNUSED piece is split back into the two symbols it was merged from.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/text_util.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::tok {

// SentencePiece ModelProto piece types; GGUF's tokenizer.ggml.token_type uses the same numbers.
enum class PieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct ScoredVocab {
  std::vector<std::string> pieces;  // as the source stores them (space symbol included)
  std::vector<float> scores;
  std::vector<PieceType> types;
};

struct SpmOptions {
  std::string kind = "gguf-llama";
  std::string space = std::string(kSpmSpace);  // what ' ' is written as inside pieces
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;
  int bos = 1, eos = 2, unk = 0;
  bool add_bos = true;
};

class SpmBpeTokenizer : public Tokenizer {
 public:
  // Throws Error naming `source` if sizes disagree or bos/eos/unk are out of range.
  SpmBpeTokenizer(ScoredVocab vocab, SpmOptions opt, const std::string& source);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return static_cast<int>(vocab_.pieces.size()); }
  std::string kind() const override { return opt_.kind; }

  const ScoredVocab& vocab() const { return vocab_; }
  const SpmOptions& options() const { return opt_; }

 private:
  void emit(std::string_view text, int32_t id, std::vector<int32_t>& out,
            const std::unordered_map<std::string, std::pair<std::string, std::string>>& rev) const;

  ScoredVocab vocab_;
  SpmOptions opt_;
  // Pieces a merge may produce: NORMAL, USER_DEFINED and UNUSED (as in sentencepiece); control,
  // unknown and byte pieces are never the result of a merge, so "<s>" in text stays characters.
  std::unordered_map<std::string, int32_t> mergeable_;
  std::vector<std::string> user_defined_;  // longest first
  std::array<int32_t, 256> byte_ids_;      // -1 where the vocabulary lacks <0xNN>
  bool has_unused_ = false;
};

}  // namespace edgellm::tok
