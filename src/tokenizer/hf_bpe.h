// Hugging Face tokenizer.json BPE (Llama-3, Qwen2/3, SmolLM, GPT-2 style byte-level BPE, and
// SentencePiece-converted BPE with Metaspace + byte_fallback), and GGUF "gpt2" vocabularies.
//
// Pipeline, in the order of HF tokenizers' TokenizerImpl::encode:
//   1. added tokens whose `normalized` is false are cut out of the raw text (leftmost, longest
//      match at a position), lstrip/rstrip eating whitespace next to them;
//   2. the normalizer (NFC/NFD/NFKC/NFKD through ICU, Lowercase, Replace, Prepend, Sequence) runs
//      on each remaining section, then `normalized` added tokens are cut out the same way;
//   3. the pre-tokenizer steps (Split with a PCRE2 regex or string, ByteLevel, Digits, Metaspace)
//      split sections into words;
//   4. BPE per word: ignore_merges (Llama-3) takes a word that is itself in the vocabulary whole;
//      otherwise merges apply lowest rank first, leftmost on ties; byte-level words start as one
//      symbol per byte, others as one per character with byte_fallback/<unk> for unknowns.
#pragma once

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/text_util.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::tok {

class Regex;  // PCRE2 pattern, UTF + UCP

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false, normalized = false, single_word = false;
};

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokStep {
  enum class Kind { kSplit, kByteLevel, kDigits, kMetaspace } kind = Kind::kSplit;
  std::string pattern;  // Split: the regex or literal string
  bool pattern_is_regex = true;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;   // ByteLevel
  bool use_regex = true;           // ByteLevel: split with the GPT-2 pattern first
  bool individual_digits = false;  // Digits
  std::string replacement;         // Metaspace: the space symbol
  std::string prepend_scheme;      // Metaspace: always | first | never
  bool split = true;               // Metaspace
  std::shared_ptr<const Regex> re;
  std::string signature() const;  // canonical text, used to recognise GGUF "pre" names
};

struct NormStep {
  enum class Kind { kUnicode, kLowercase, kReplace, kPrepend } kind = Kind::kUnicode;
  NormForm form = NormForm::kNone;
  std::string pattern, content;  // Replace: pattern -> content; Prepend: content
  bool pattern_is_regex = false;
  std::shared_ptr<const Regex> re;
  std::string signature() const;
};

struct DecodeStep {
  enum class Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip } kind;
  std::string pattern, content;  // Replace / Strip content / Metaspace replacement
  int start = 0, stop = 0;       // Strip
  bool prepend = true;           // Metaspace: strip the prefix space of the first token
};

struct HfBpeSpec {
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::vector<AddedToken> added;
  std::vector<NormStep> normalizer;
  std::vector<PreTokStep> pre;
  std::vector<DecodeStep> decoder;
  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  std::string unk_token;  // empty: none
  int bos = -1, eos = -1;
  bool add_bos = false;
};

class HfBpeTokenizer : public Tokenizer {
 public:
  // Validates the spec (merge parts in the vocabulary, ids in range); throws naming `source`.
  HfBpeTokenizer(HfBpeSpec spec, std::string kind, const std::string& source);
  ~HfBpeTokenizer() override;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  std::string kind() const override { return kind_; }

  const HfBpeSpec& spec() const { return spec_; }
  bool byte_level() const { return byte_level_; }
  bool add_bos() const { return spec_.add_bos; }
  // Token string by id ("" for an id with no token).
  const std::string& token(int32_t id) const { return id_to_token_[id]; }

 private:
  struct Section {
    std::string text;
    int32_t added_id;  // >= 0: the section is this added token
  };
  void split_added(std::vector<Section>& secs, bool normalized_pass) const;
  std::string normalize(std::string_view s) const;
  void pre_tokenize(std::string_view s, bool first_section, std::vector<std::string>& words) const;
  void bpe_word(std::string_view word, std::vector<int32_t>& out) const;

  HfBpeSpec spec_;
  std::string kind_;
  std::vector<std::string> id_to_token_;
  std::vector<int8_t> added_kind_;  // per id: 0 model token, 1 added, 2 added special
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_map_;
  std::array<int32_t, 256> byte_ids_{};      // byte-level: id of each byte's character
  std::array<int32_t, 256> fallback_ids_{};  // byte_fallback: id of <0xNN>
  bool byte_level_ = false;
  int32_t unk_id_ = -1;
  // Added tokens by first byte, longest first (leftmost-longest matching).
  std::array<std::vector<int32_t>, 256> added_raw_, added_norm_;
};

// Parses a tokenizer.json document (`config` is tokenizer_config.json or null).
std::unique_ptr<HfBpeTokenizer> hf_bpe_from_json(const nlohmann::json& doc,
                                                 const nlohmann::json& config,
                                                 const std::string& path);

// GGUF tokenizer.ggml.pre names and their pre-tokenizer/normalizer; empty name if none fits.
struct GgufPre {
  std::string name;
  std::vector<PreTokStep> pre;
  std::vector<NormStep> normalizer;
  bool ignore_merges = false;
};
const std::vector<GgufPre>& gguf_pre_table();

}  // namespace edgellm::tok
