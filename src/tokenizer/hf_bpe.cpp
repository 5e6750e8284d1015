#include "tokenizer/hf_bpe.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <algorithm>

#include "tokenizer/bpe_merge.h"
#include "tokenizer/regex.h"
#include "util/error.h"

namespace edgellm::tok {
namespace {

using json = nlohmann::json;

// GPT-2's pre-tokenizer regex, used by ByteLevel(use_regex=true).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

uint32_t decode_cp(std::string_view s, size_t i, size_t n) {
  const auto c = static_cast<uint8_t>(s[i]);
  if (n == 1) return c;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

// Unicode White_Space (what Rust's char::is_whitespace tests; lstrip/rstrip use it).
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

void trim_end_ws(std::string& s) {
  size_t end = 0;  // end of the last non-space character
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_len(s, i);
    if (!is_white_space(decode_cp(s, i, n))) end = i + n;
    i += n;
  }
  s.resize(end);
}

void trim_start_ws(std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = utf8_len(s, i);
    if (!is_white_space(decode_cp(s, i, n))) break;
    i += n;
  }
  s.erase(0, i);
}

// Splits s at the given matches according to HF's SplitDelimiterBehavior.
void split_by(std::string_view s, const std::vector<std::pair<size_t, size_t>>& m,
              SplitBehavior behavior, bool invert, std::vector<std::string>& out) {
  // (begin, end, is_match) covering s
  std::vector<std::tuple<size_t, size_t, bool>> parts;
  size_t prev = 0;
  for (const auto& [b, e] : m) {
    if (b > prev) parts.emplace_back(prev, b, invert);
    parts.emplace_back(b, e, !invert);
    prev = e;
  }
  if (prev < s.size()) parts.emplace_back(prev, s.size(), invert);

  std::vector<std::string> res;
  bool pending_next = false;  // MergedWithNext: the last piece waits for the following one
  bool last_was_match = false;
  for (const auto& [b, e, is_match] : parts) {
    const std::string_view p = s.substr(b, e - b);
    switch (behavior) {
      case SplitBehavior::kIsolated:
        res.emplace_back(p);
        break;
      case SplitBehavior::kRemoved:
        if (!is_match) res.emplace_back(p);
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (is_match && !res.empty() && !last_was_match)
          res.back() += p;
        else
          res.emplace_back(p);
        break;
      case SplitBehavior::kMergedWithNext:
        if (pending_next)
          res.back() += p;
        else
          res.emplace_back(p);
        pending_next = is_match;
        break;
      case SplitBehavior::kContiguous:
        if (is_match && last_was_match)
          res.back() += p;
        else
          res.emplace_back(p);
        break;
    }
    last_was_match = is_match;
  }
  for (auto& r : res)
    if (!r.empty()) out.push_back(std::move(r));
}

const char* behavior_name(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::kIsolated:
      return "Isolated";
    case SplitBehavior::kRemoved:
      return "Removed";
    case SplitBehavior::kMergedWithPrevious:
      return "MergedWithPrevious";
    case SplitBehavior::kMergedWithNext:
      return "MergedWithNext";
    case SplitBehavior::kContiguous:
      return "Contiguous";
  }
  return "?";
}

const Regex& gpt2_regex() {
  static const Regex re(kGpt2Pattern, "ByteLevel");
  return re;
}
const Regex& digits_regex() {
  static const Regex re(R"(\p{N})", "Digits");
  return re;
}

}  // namespace

std::string PreTokStep::signature() const {
  switch (kind) {
    case Kind::kSplit:
      return fmt::format("Split({},{},{},{})", pattern_is_regex ? "Regex" : "String", pattern,
                         behavior_name(behavior), invert);
    case Kind::kByteLevel:
      return fmt::format("ByteLevel({},{})", add_prefix_space, use_regex);
    case Kind::kDigits:
      return fmt::format("Digits({})", individual_digits);
    case Kind::kMetaspace:
      return fmt::format("Metaspace({},{},{})", replacement, prepend_scheme, split);
  }
  return "?";
}

std::string NormStep::signature() const {
  switch (kind) {
    case Kind::kUnicode:
      return fmt::format("Unicode({})", static_cast<int>(form));
    case Kind::kLowercase:
      return "Lowercase";
    case Kind::kReplace:
      return fmt::format("Replace({},{},{})", pattern_is_regex, pattern, content);
    case Kind::kPrepend:
      return fmt::format("Prepend({})", content);
  }
  return "?";
}

HfBpeTokenizer::HfBpeTokenizer(HfBpeSpec spec, std::string kind, const std::string& source)
    : spec_(std::move(spec)), kind_(std::move(kind)) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : spec_.vocab) {
    if (id < 0)
      fail("[tokenizer] {}: field 'model.vocab': token '{}': id {} negative", source, tok, id);
    max_id = std::max(max_id, id);
  }
  for (const auto& a : spec_.added) {
    if (a.id < 0)
      fail("[tokenizer] {}: field 'added_tokens': token '{}': id {} negative", source, a.content,
           a.id);
    if (a.content.empty())
      fail("[tokenizer] {}: field 'added_tokens': id {}: empty content", source, a.id);
    max_id = std::max(max_id, a.id);
  }
  if (max_id < 0) fail("[tokenizer] {}: field 'model.vocab': empty vocabulary", source);
  id_to_token_.assign(max_id + 1, std::string());
  added_kind_.assign(max_id + 1, 0);
  for (const auto& [tok, id] : spec_.vocab) id_to_token_[id] = tok;
  for (const auto& a : spec_.added) {
    id_to_token_[a.id] = a.content;
    added_kind_[a.id] = a.special ? 2 : 1;
  }

  for (const auto& s : spec_.pre)
    if (s.kind == PreTokStep::Kind::kByteLevel) byte_level_ = true;
  for (const auto& d : spec_.decoder)
    if (d.kind == DecodeStep::Kind::kByteLevel) byte_level_ = true;

  merge_map_.reserve(spec_.merges.size() * 2);
  for (size_t r = 0; r < spec_.merges.size(); ++r) {
    const auto& [a, b] = spec_.merges[r];
    const auto ia = spec_.vocab.find(a), ib = spec_.vocab.find(b), iab = spec_.vocab.find(a + b);
    if (ia == spec_.vocab.end() || ib == spec_.vocab.end() || iab == spec_.vocab.end())
      fail("[tokenizer] {}: field 'model.merges[{}]': value '{} {}': {} not in the vocabulary",
           source, r, a, b,
           ia == spec_.vocab.end()   ? "'" + a + "'"
           : ib == spec_.vocab.end() ? "'" + b + "'"
                                     : "'" + a + b + "'");
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                         static_cast<uint32_t>(ib->second);
    merge_map_.emplace(key, std::make_pair(static_cast<int32_t>(r), iab->second));  // first wins
  }

  const auto& alpha = byte_level_alphabet();
  for (int b = 0; b < 256; ++b) {
    const auto it = spec_.vocab.find(alpha.byte_to_utf8[b]);
    byte_ids_[b] = it == spec_.vocab.end() ? -1 : it->second;
    const auto jt = spec_.vocab.find(byte_piece(static_cast<uint8_t>(b)));
    fallback_ids_[b] = jt == spec_.vocab.end() ? -1 : jt->second;
  }
  if (!spec_.unk_token.empty()) {
    const auto it = spec_.vocab.find(spec_.unk_token);
    if (it == spec_.vocab.end())
      fail("[tokenizer] {}: field 'model.unk_token': value '{}' not in the vocabulary", source,
           spec_.unk_token);
    unk_id_ = it->second;
  }
  for (const auto& a : spec_.added) {
    auto& table = a.normalized && !spec_.normalizer.empty() ? added_norm_ : added_raw_;
    table[static_cast<uint8_t>(a.content[0])].push_back(a.id);
  }
  for (auto* tables : {&added_raw_, &added_norm_})
    for (auto& v : *tables)
      std::stable_sort(v.begin(), v.end(), [&](int32_t x, int32_t y) {
        return id_to_token_[x].size() > id_to_token_[y].size();
      });
  auto check_id = [&](const char* what, int id) {
    if (id < -1 || id > max_id)
      fail("[tokenizer] {}: {}: id {} outside vocabulary of {}", source, what, id, max_id + 1);
  };
  check_id("bos_token", spec_.bos);
  check_id("eos_token", spec_.eos);
  bos_id_ = spec_.bos;
  eos_id_ = spec_.eos;
}

HfBpeTokenizer::~HfBpeTokenizer() = default;

void HfBpeTokenizer::split_added(std::vector<Section>& secs, bool normalized_pass) const {
  const auto& table = normalized_pass ? added_norm_ : added_raw_;
  std::vector<Section> out;
  for (auto& sec : secs) {
    if (sec.added_id >= 0) {
      out.push_back(std::move(sec));
      continue;
    }
    const std::string& t = sec.text;
    const size_t first = out.size();
    size_t start = 0;
    for (size_t i = 0; i < t.size();) {
      int32_t hit = -1;
      for (const int32_t id : table[static_cast<uint8_t>(t[i])]) {
        const std::string& c = id_to_token_[id];
        if (t.compare(i, c.size(), c) == 0) {
          hit = id;
          break;
        }
      }
      if (hit < 0) {
        ++i;
        continue;
      }
      if (i > start) out.push_back({t.substr(start, i - start), -1});
      out.push_back({id_to_token_[hit], hit});
      i += id_to_token_[hit].size();
      start = i;
    }
    if (start < t.size()) out.push_back({t.substr(start), -1});
    // lstrip/rstrip: the token swallows whitespace beside it (within this section's pieces).
    for (size_t k = first; k < out.size(); ++k) {
      if (out[k].added_id < 0) continue;
      const AddedToken* a = nullptr;
      for (const auto& x : spec_.added)
        if (x.id == out[k].added_id) a = &x;
      if (a == nullptr) continue;
      if (a->lstrip && k > first && out[k - 1].added_id < 0) trim_end_ws(out[k - 1].text);
      if (a->rstrip && k + 1 < out.size() && out[k + 1].added_id < 0)
        trim_start_ws(out[k + 1].text);
    }
  }
  std::erase_if(out, [](const Section& s) { return s.added_id < 0 && s.text.empty(); });
  secs = std::move(out);
}

std::string HfBpeTokenizer::normalize(std::string_view s) const {
  std::string t(s);
  for (const auto& n : spec_.normalizer) {
    switch (n.kind) {
      case NormStep::Kind::kUnicode:
        t = tok::normalize(t, n.form);
        break;
      case NormStep::Kind::kLowercase: {
        std::string lower;
        icu::UnicodeString::fromUTF8(t).toLower(icu::Locale::getRoot()).toUTF8String(lower);
        t = std::move(lower);
        break;
      }
      case NormStep::Kind::kReplace:
        if (n.pattern_is_regex) {
          std::vector<std::pair<size_t, size_t>> m;
          n.re->find_all(t, m);
          std::string r;
          size_t p = 0;
          for (const auto& [b, e] : m) {
            r.append(t, p, b - p);
            r += n.content;
            p = e;
          }
          r.append(t, p, std::string::npos);
          t = std::move(r);
        } else {
          t = tok::replace_all(t, n.pattern, n.content);
        }
        break;
      case NormStep::Kind::kPrepend:
        if (!t.empty()) t = n.content + t;
        break;
    }
  }
  return t;
}

void HfBpeTokenizer::pre_tokenize(std::string_view s, bool first_section,
                                  std::vector<std::string>& words) const {
  std::vector<std::string> cur{std::string(s)}, next;
  std::vector<std::pair<size_t, size_t>> m;
  for (const auto& step : spec_.pre) {
    next.clear();
    for (std::string& piece : cur) {
      m.clear();
      switch (step.kind) {
        case PreTokStep::Kind::kSplit:
          if (step.pattern_is_regex) {
            step.re->find_all(piece, m);
          } else if (!step.pattern.empty()) {
            for (size_t q = piece.find(step.pattern); q != std::string::npos;
                 q = piece.find(step.pattern, q + step.pattern.size()))
              m.emplace_back(q, q + step.pattern.size());
          }
          split_by(piece, m, step.behavior, step.invert, next);
          break;
        case PreTokStep::Kind::kByteLevel:
          // HF applies the prefix space to every piece reaching this step.
          if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) piece.insert(0, 1, ' ');
          if (step.use_regex) {
            gpt2_regex().find_all(piece, m);
            split_by(piece, m, SplitBehavior::kIsolated, false, next);
          } else {
            next.push_back(std::move(piece));
          }
          break;
        case PreTokStep::Kind::kDigits:
          digits_regex().find_all(piece, m);
          split_by(piece, m,
                   step.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                   false, next);
          break;
        case PreTokStep::Kind::kMetaspace: {
          piece = tok::replace_all(piece, " ", step.replacement);
          const bool starts = piece.compare(0, step.replacement.size(), step.replacement) == 0;
          if (!starts && (step.prepend_scheme == "always" ||
                          (step.prepend_scheme == "first" && first_section)))
            piece.insert(0, step.replacement);
          if (step.split) {
            for (size_t q = piece.find(step.replacement); q != std::string::npos;
                 q = piece.find(step.replacement, q + step.replacement.size()))
              m.emplace_back(q, q + step.replacement.size());
            split_by(piece, m, SplitBehavior::kMergedWithNext, false, next);
          } else {
            next.push_back(std::move(piece));
          }
          break;
        }
      }
    }
    std::swap(cur, next);
  }
  for (auto& w : cur)
    if (!w.empty()) words.push_back(std::move(w));
}

void HfBpeTokenizer::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  const auto& alpha = byte_level_alphabet();
  if (spec_.ignore_merges) {
    const auto it = spec_.vocab.find(byte_level_ ? alpha.encode(word) : std::string(word));
    if (it != spec_.vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<BpeSymbol> syms;
  syms.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    const size_t n = byte_level_ ? 1 : utf8_len(word, i);
    int32_t id;
    if (byte_level_) {
      id = byte_ids_[static_cast<uint8_t>(word[i])];
    } else {
      const auto it = spec_.vocab.find(std::string(word.substr(i, n)));
      id = it == spec_.vocab.end() ? -1 : it->second;
    }
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, static_cast<uint32_t>(i), static_cast<uint32_t>(n), idx - 1, -1});
    if (idx > 0) syms[idx - 1].next = idx;
    i += n;
  }
  bpe_merge(syms, [&](const BpeSymbol& l, const BpeSymbol& r, PairCandidate& c) {
    if (l.id < 0 || r.id < 0) return false;
    const auto it = merge_map_.find((static_cast<uint64_t>(static_cast<uint32_t>(l.id)) << 32) |
                                    static_cast<uint32_t>(r.id));
    if (it == merge_map_.end()) return false;
    c.priority = it->second.first;
    c.new_id = it->second.second;
    return true;
  });
  bool last_unk = false;
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
    const BpeSymbol& s = syms[i];
    if (s.id >= 0) {
      out.push_back(s.id);
      last_unk = false;
      continue;
    }
    const std::string_view text = word.substr(s.start, s.len);
    if (spec_.byte_fallback) {
      bool all = true;
      for (char c : text) all = all && fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : text) out.push_back(fallback_ids_[static_cast<uint8_t>(c)]);
        last_unk = false;
        continue;
      }
    }
    // No unk token: the character is dropped, as HF tokenizers.js does.
    if (unk_id_ >= 0 && !(spec_.fuse_unk && last_unk)) out.push_back(unk_id_);
    last_unk = true;
  }
}

std::vector<int32_t> HfBpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  std::vector<Section> secs{{std::string(text), -1}};
  split_added(secs, false);
  const bool first_at_start = !secs.empty() && secs[0].added_id < 0;
  if (!spec_.normalizer.empty()) {
    for (auto& s : secs)
      if (s.added_id < 0) s.text = normalize(s.text);
    split_added(secs, true);
  }
  std::vector<std::string> words;
  for (size_t k = 0; k < secs.size(); ++k) {
    if (secs[k].added_id >= 0) {
      out.push_back(secs[k].added_id);
      continue;
    }
    words.clear();
    pre_tokenize(secs[k].text, k == 0 && first_at_start, words);
    for (const auto& w : words) bpe_word(w, out);
  }
  return out;
}

std::string HfBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("[tokenizer] decode: token id {} outside vocabulary of {}", id, vocab_size());
    if (added_kind_[id] == 2) continue;  // special tokens render as nothing
    toks.push_back(id_to_token_[id]);
  }
  if (spec_.decoder.empty()) {
    std::string s;
    for (size_t i = 0; i < toks.size(); ++i) s += (i ? " " : "") + toks[i];
    return s;
  }
  const auto& alpha = byte_level_alphabet();
  for (const auto& d : spec_.decoder) {
    switch (d.kind) {
      case DecodeStep::Kind::kByteLevel:
        for (auto& t : toks) t = alpha.decode(t);
        break;
      case DecodeStep::Kind::kMetaspace:
        for (size_t i = 0; i < toks.size(); ++i) {
          toks[i] = tok::replace_all(toks[i], d.content, " ");
          if (i == 0 && d.prepend && !toks[i].empty() && toks[i][0] == ' ') toks[i].erase(0, 1);
        }
        break;
      case DecodeStep::Kind::kReplace:
        for (auto& t : toks) t = tok::replace_all(t, d.pattern, d.content);
        break;
      case DecodeStep::Kind::kByteFallback:
        for (auto& t : toks)
          if (const int b = parse_byte_piece(t); b >= 0) t = std::string(1, static_cast<char>(b));
        break;
      case DecodeStep::Kind::kFuse: {
        std::string all;
        for (const auto& t : toks) all += t;
        toks.assign(1, std::move(all));
        break;
      }
      case DecodeStep::Kind::kStrip:
        for (auto& t : toks) {
          for (int k = 0; k < d.start && t.compare(0, d.content.size(), d.content) == 0; ++k)
            t.erase(0, d.content.size());
          for (int k = 0; k < d.stop && t.size() >= d.content.size() &&
                          t.compare(t.size() - d.content.size(), d.content.size(), d.content) == 0;
               ++k)
            t.resize(t.size() - d.content.size());
        }
        break;
    }
  }
  std::string s;
  for (const auto& t : toks) s += t;
  return s;
}

// ---- tokenizer.json parsing ----

namespace {

struct JsonCtx {
  const std::string& path;
  [[noreturn]] void bad(const std::string& field, const std::string& what) const {
    fail("[tokenizer] {}: field '{}': {}", path, field, what);
  }
  const json& get(const json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) bad(field, fmt::format("expected an object, got {}", obj.type_name()));
    const auto it = obj.find(key);
    if (it == obj.end()) bad(field + "." + key, "missing");
    return *it;
  }
  std::string str(const json& obj, const char* key, const std::string& field) const {
    const json& v = get(obj, key, field);
    if (!v.is_string()) bad(field + "." + key, fmt::format("expected a string, got {}", v.dump()));
    return v.get<std::string>();
  }
  bool flag(const json& obj, const char* key, bool def) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return def;
    if (!it->is_boolean()) bad(key, fmt::format("expected a boolean, got {}", it->dump()));
    return it->get<bool>();
  }
};

void parse_pattern(const JsonCtx& c, const json& p, const std::string& field, std::string& pattern,
                   bool& is_regex) {
  if (!p.is_object())
    c.bad(field, fmt::format("expected {{\"Regex\"|\"String\": ...}}, got {}", p.dump()));
  if (p.contains("Regex")) {
    pattern = c.str(p, "Regex", field);
    is_regex = true;
  } else if (p.contains("String")) {
    pattern = c.str(p, "String", field);
    is_regex = false;
  } else {
    c.bad(field, fmt::format("expected Regex or String, got {}", p.dump()));
  }
}

void parse_normalizer(const JsonCtx& c, const json& n, const std::string& field,
                      std::vector<NormStep>& out) {
  if (n.is_null()) return;
  const std::string type = c.str(n, "type", field);
  NormStep s;
  if (type == "Sequence") {
    const json& list = c.get(n, "normalizers", field);
    if (!list.is_array()) c.bad(field + ".normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      parse_normalizer(c, list[i], fmt::format("{}.normalizers[{}]", field, i), out);
    return;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    s.kind = NormStep::Kind::kUnicode;
    s.form = type == "NFC"    ? NormForm::kNFC
             : type == "NFD"  ? NormForm::kNFD
             : type == "NFKC" ? NormForm::kNFKC
                              : NormForm::kNFKD;
  } else if (type == "Lowercase") {
    s.kind = NormStep::Kind::kLowercase;
  } else if (type == "Replace") {
    s.kind = NormStep::Kind::kReplace;
    parse_pattern(c, c.get(n, "pattern", field), field + ".pattern", s.pattern, s.pattern_is_regex);
    s.content = c.str(n, "content", field);
    if (s.pattern_is_regex) s.re = std::make_shared<Regex>(s.pattern, c.path);
  } else if (type == "Prepend") {
    s.kind = NormStep::Kind::kPrepend;
    s.content = c.str(n, "prepend", field);
  } else {
    c.bad(field + ".type", fmt::format("value '{}' unsupported", type));
  }
  out.push_back(std::move(s));
}

SplitBehavior parse_behavior(const JsonCtx& c, const std::string& b, const std::string& field) {
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  c.bad(field, fmt::format("value '{}' unknown", b));
}

void parse_pre(const JsonCtx& c, const json& p, const std::string& field,
               std::vector<PreTokStep>& out) {
  if (p.is_null()) return;
  const std::string type = c.str(p, "type", field);
  PreTokStep s;
  if (type == "Sequence") {
    const json& list = c.get(p, "pretokenizers", field);
    if (!list.is_array()) c.bad(field + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      parse_pre(c, list[i], fmt::format("{}.pretokenizers[{}]", field, i), out);
    return;
  } else if (type == "Split") {
    s.kind = PreTokStep::Kind::kSplit;
    parse_pattern(c, c.get(p, "pattern", field), field + ".pattern", s.pattern, s.pattern_is_regex);
    s.behavior = parse_behavior(c, c.str(p, "behavior", field), field + ".behavior");
    s.invert = c.flag(p, "invert", false);
    if (s.pattern_is_regex) s.re = std::make_shared<Regex>(s.pattern, c.path);
  } else if (type == "ByteLevel") {
    s.kind = PreTokStep::Kind::kByteLevel;
    s.add_prefix_space = c.flag(p, "add_prefix_space", true);
    s.use_regex = c.flag(p, "use_regex", true);
  } else if (type == "Digits") {
    s.kind = PreTokStep::Kind::kDigits;
    s.individual_digits = c.flag(p, "individual_digits", false);
  } else if (type == "Metaspace") {
    s.kind = PreTokStep::Kind::kMetaspace;
    s.replacement = p.contains("replacement") ? c.str(p, "replacement", field) : "\xE2\x96\x81";
    if (p.contains("prepend_scheme"))
      s.prepend_scheme = c.str(p, "prepend_scheme", field);
    else
      s.prepend_scheme = c.flag(p, "add_prefix_space", true) ? "always" : "never";
    if (s.prepend_scheme != "always" && s.prepend_scheme != "first" && s.prepend_scheme != "never")
      c.bad(field + ".prepend_scheme", fmt::format("value '{}' unknown", s.prepend_scheme));
    s.split = c.flag(p, "split", true);
  } else {
    c.bad(field + ".type", fmt::format("value '{}' unsupported", type));
  }
  out.push_back(std::move(s));
}

void parse_decoder(const JsonCtx& c, const json& d, const std::string& field,
                   std::vector<DecodeStep>& out) {
  if (d.is_null()) return;
  const std::string type = c.str(d, "type", field);
  DecodeStep s{};
  if (type == "Sequence") {
    const json& list = c.get(d, "decoders", field);
    if (!list.is_array()) c.bad(field + ".decoders", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      parse_decoder(c, list[i], fmt::format("{}.decoders[{}]", field, i), out);
    return;
  } else if (type == "ByteLevel") {
    s.kind = DecodeStep::Kind::kByteLevel;
  } else if (type == "Metaspace") {
    s.kind = DecodeStep::Kind::kMetaspace;
    s.content = d.contains("replacement") ? c.str(d, "replacement", field) : "\xE2\x96\x81";
    const std::string scheme = d.contains("prepend_scheme") ? c.str(d, "prepend_scheme", field)
                               : c.flag(d, "add_prefix_space", true) ? "always"
                                                                     : "never";
    s.prepend = scheme != "never";
  } else if (type == "Replace") {
    s.kind = DecodeStep::Kind::kReplace;
    bool is_regex = false;
    parse_pattern(c, c.get(d, "pattern", field), field + ".pattern", s.pattern, is_regex);
    if (is_regex) c.bad(field + ".pattern", "regex Replace decoder unsupported");
    s.content = c.str(d, "content", field);
  } else if (type == "ByteFallback") {
    s.kind = DecodeStep::Kind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecodeStep::Kind::kFuse;
  } else if (type == "Strip") {
    s.kind = DecodeStep::Kind::kStrip;
    s.content = c.str(d, "content", field);
    s.start = c.get(d, "start", field).get<int>();
    s.stop = c.get(d, "stop", field).get<int>();
  } else {
    c.bad(field + ".type", fmt::format("value '{}' unsupported", type));
  }
  out.push_back(std::move(s));
}

// tokenizer_config.json's bos_token/eos_token: a string or {"content": ...}.
std::string config_token(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return "";
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

std::unique_ptr<HfBpeTokenizer> hf_bpe_from_json(const json& doc, const json& config,
                                                 const std::string& path) {
  const JsonCtx c{path};
  if (!doc.is_object()) c.bad("(root)", fmt::format("expected an object, got {}", doc.type_name()));
  HfBpeSpec spec;
  const json& model = c.get(doc, "model", "(root)");
  const std::string type = model.contains("type") ? c.str(model, "type", "model") : "BPE";
  if (type != "BPE") c.bad("model.type", fmt::format("value '{}' unsupported (only BPE)", type));
  const json& vocab = c.get(model, "vocab", "model");
  if (!vocab.is_object())
    c.bad("model.vocab", fmt::format("expected an object, got {}", vocab.type_name()));
  spec.vocab.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      c.bad("model.vocab",
            fmt::format("token '{}': id {} is not an integer", it.key(), it.value().dump()));
    spec.vocab.emplace(it.key(), it.value().get<int32_t>());
  }
  const json& merges = c.get(model, "merges", "model");
  if (!merges.is_array()) c.bad("model.merges", "expected an array");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        c.bad(fmt::format("model.merges[{}]", i), fmt::format("value '{}' is not 'a b'", s));
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      c.bad(fmt::format("model.merges[{}]", i),
            fmt::format("value {} is not 'a b' or [a, b]", m.dump()));
    }
  }
  spec.ignore_merges = c.flag(model, "ignore_merges", false);
  spec.byte_fallback = c.flag(model, "byte_fallback", false);
  spec.fuse_unk = c.flag(model, "fuse_unk", false);
  if (model.contains("unk_token") && !model["unk_token"].is_null())
    spec.unk_token = c.str(model, "unk_token", "model");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && model[k].is_string() && !model[k].get<std::string>().empty())
      c.bad(std::string("model.") + k,
            fmt::format("value '{}' unsupported", model[k].get<std::string>()));
  if (model.contains("dropout") && model["dropout"].is_number() &&
      model["dropout"].get<double>() > 0)
    c.bad("model.dropout", fmt::format("value {} unsupported (BPE dropout is for training)",
                                       model["dropout"].dump()));

  if (doc.contains("added_tokens") && !doc["added_tokens"].is_null()) {
    const json& list = doc["added_tokens"];
    if (!list.is_array()) c.bad("added_tokens", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string f = fmt::format("added_tokens[{}]", i);
      AddedToken a;
      a.content = c.str(list[i], "content", f);
      const json& id = c.get(list[i], "id", f);
      if (!id.is_number_integer())
        c.bad(f + ".id", fmt::format("value {} is not an integer", id.dump()));
      a.id = id.get<int32_t>();
      a.special = c.flag(list[i], "special", false);
      a.lstrip = c.flag(list[i], "lstrip", false);
      a.rstrip = c.flag(list[i], "rstrip", false);
      a.normalized = c.flag(list[i], "normalized", !a.special);
      a.single_word = c.flag(list[i], "single_word", false);
      spec.added.push_back(std::move(a));
    }
  }
  if (doc.contains("normalizer"))
    parse_normalizer(c, doc["normalizer"], "normalizer", spec.normalizer);
  if (doc.contains("pre_tokenizer")) parse_pre(c, doc["pre_tokenizer"], "pre_tokenizer", spec.pre);
  if (doc.contains("decoder")) parse_decoder(c, doc["decoder"], "decoder", spec.decoder);

  // BOS/EOS: tokenizer_config.json when present, else the conventional names.
  auto find_id = [&](const std::string& s) -> int {
    if (s.empty()) return -1;
    for (const auto& a : spec.added)
      if (a.content == s) return a.id;
    const auto it = spec.vocab.find(s);
    return it == spec.vocab.end() ? -1 : it->second;
  };
  auto first_of = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (const int id = find_id(n); id >= 0) return id;
    return -1;
  };
  spec.bos = find_id(config_token(config, "bos_token"));
  spec.eos = find_id(config_token(config, "eos_token"));
  if (spec.bos < 0) spec.bos = first_of({"<|begin_of_text|>", "<s>", "<|startoftext|>"});
  if (spec.eos < 0) spec.eos = first_of({"<|end_of_text|>", "<|endoftext|>", "</s>", "<|im_end|>"});
  bool add_bos = spec.bos >= 0;
  if (config.is_object() && config.contains("add_bos_token") &&
      config["add_bos_token"].is_boolean())
    add_bos = config["add_bos_token"].get<bool>();
  // A model without BOS (Qwen) reuses EOS, as llama.cpp does, with add_bos false.
  if (spec.bos < 0) {
    spec.bos = spec.eos;
    add_bos = false;
  }
  spec.add_bos = add_bos;
  return std::make_unique<HfBpeTokenizer>(std::move(spec), "bpe", path);
}

const std::vector<GgufPre>& gguf_pre_table() {
  static const std::vector<GgufPre> table = [] {
    auto split = [](const char* re) {
      PreTokStep s;
      s.kind = PreTokStep::Kind::kSplit;
      s.pattern = re;
      s.re = std::make_shared<Regex>(re, "gguf pre table");
      return s;
    };
    auto byte_level = [](bool use_regex) {
      PreTokStep s;
      s.kind = PreTokStep::Kind::kByteLevel;
      s.add_prefix_space = false;
      s.use_regex = use_regex;
      return s;
    };
    PreTokStep digits;
    digits.kind = PreTokStep::Kind::kDigits;
    digits.individual_digits = true;
    NormStep nfc;
    nfc.form = NormForm::kNFC;
    const char* llama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const char* qwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    std::vector<GgufPre> t;
    t.push_back({"llama-bpe", {split(llama3), byte_level(false)}, {}, true});
    t.push_back({"qwen2", {split(qwen2), byte_level(false)}, {nfc}, false});
    t.push_back({"gpt-2", {byte_level(true)}, {}, false});
    t.push_back({"smollm", {digits, byte_level(true)}, {}, false});
    return t;
  }();
  return table;
}

}  // namespace edgellm::tok
