#include "tokenizer/spm_bpe.h"

#include <algorithm>

#include "tokenizer/bpe_merge.h"
#include "util/error.h"

namespace edgellm::tok {

SpmBpeTokenizer::SpmBpeTokenizer(ScoredVocab vocab, SpmOptions opt, const std::string& source)
    : vocab_(std::move(vocab)), opt_(std::move(opt)) {
  const size_t n = vocab_.pieces.size();
  if (n == 0) fail("[tokenizer] {}: empty vocabulary", source);
  if (vocab_.scores.size() != n)
    fail("[tokenizer] {}: field 'scores': {} entries for {} pieces", source, vocab_.scores.size(),
         n);
  if (vocab_.types.size() != n)
    fail("[tokenizer] {}: field 'token_type': {} entries for {} pieces", source,
         vocab_.types.size(), n);
  auto check_id = [&](const char* field, int id) {
    if (id < -1 || id >= static_cast<int>(n))
      fail("[tokenizer] {}: field '{}': value {} outside vocabulary of {}", source, field, id, n);
  };
  check_id("bos_token_id", opt_.bos);
  check_id("eos_token_id", opt_.eos);
  check_id("unknown_token_id", opt_.unk);
  if (opt_.space.empty()) fail("[tokenizer] {}: empty space symbol", source);
  bos_id_ = opt_.bos;
  eos_id_ = opt_.eos;
  byte_ids_.fill(-1);
  mergeable_.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    switch (vocab_.types[i]) {
      case PieceType::kByte: {
        const int b = parse_byte_piece(vocab_.pieces[i]);
        if (b < 0)
          fail("[tokenizer] {}: token {}: byte piece '{}' is not of the form <0xNN>", source, i,
               vocab_.pieces[i]);
        if (byte_ids_[b] < 0) byte_ids_[b] = id;
        break;
      }
      case PieceType::kUserDefined:
        user_defined_.push_back(vocab_.pieces[i]);
        [[fallthrough]];
      case PieceType::kNormal:
      case PieceType::kUnused:
        if (vocab_.types[i] == PieceType::kUnused) has_unused_ = true;
        // First occurrence wins, as in sentencepiece's piece map.
        mergeable_.emplace(vocab_.pieces[i], id);
        break;
      case PieceType::kUnknown:
      case PieceType::kControl:
        break;
      default:
        fail("[tokenizer] {}: token {} ('{}'): token_type {} unknown", source, i, vocab_.pieces[i],
             static_cast<int>(vocab_.types[i]));
    }
  }
  std::erase_if(user_defined_, [](const std::string& s) { return s.empty(); });
  std::sort(user_defined_.begin(), user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::vector<int32_t> SpmBpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  std::string_view t = text;
  std::string collapsed;
  if (opt_.remove_extra_whitespaces) {
    // sentencepiece's normalizer: drop leading/trailing spaces and squeeze internal runs.
    const size_t b = t.find_first_not_of(' ');
    if (b == std::string_view::npos) return out;
    t = t.substr(b, t.find_last_not_of(' ') - b + 1);
    collapsed.reserve(t.size());
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] != ' ' || t[i - 1] != ' ') collapsed += t[i];
    t = collapsed;
  }
  if (t.empty()) return out;

  std::string norm;
  norm.reserve(t.size() + t.size() / 4 + opt_.space.size());
  if (opt_.add_dummy_prefix) norm += opt_.space;
  for (char c : t) {
    if (c == ' ')
      norm += opt_.space;
    else
      norm += c;
  }

  std::vector<BpeSymbol> syms;
  std::vector<uint8_t> frozen;
  syms.reserve(norm.size());
  frozen.reserve(norm.size());
  const std::string_view nv = norm;
  for (size_t i = 0; i < nv.size();) {
    size_t len = 0;
    bool is_user = false;
    for (const std::string& u : user_defined_) {
      if (nv.substr(i, u.size()) == u) {
        len = u.size();
        is_user = true;
        break;
      }
    }
    if (!is_user) len = utf8_len(nv, i);
    const auto it = mergeable_.find(std::string(nv.substr(i, len)));
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({it == mergeable_.end() ? -1 : it->second, static_cast<uint32_t>(i),
                    static_cast<uint32_t>(len), idx - 1, -1});
    if (idx > 0) syms[idx - 1].next = idx;
    frozen.push_back(is_user);
    i += len;
  }

  std::string key;
  auto lookup = [&](const BpeSymbol& l, const BpeSymbol& r, PairCandidate& c) {
    if (frozen[&l - syms.data()] || frozen[&r - syms.data()]) return false;
    key.assign(nv.substr(l.start, l.len + r.len));
    const auto it = mergeable_.find(key);
    if (it == mergeable_.end()) return false;
    c.priority = -static_cast<double>(vocab_.scores[it->second]);
    c.new_id = it->second;
    return true;
  };
  // Only vocabularies with UNUSED pieces need to remember how a piece was formed.
  std::unordered_map<std::string, std::pair<std::string, std::string>> rev;
  if (has_unused_) {
    bpe_merge(syms, lookup, [&](const BpeSymbol& l, const BpeSymbol& r) {
      rev[std::string(nv.substr(l.start, l.len + r.len))] = {
          std::string(nv.substr(l.start, l.len)), std::string(nv.substr(r.start, r.len))};
    });
  } else {
    bpe_merge(syms, lookup);
  }

  out.reserve(syms.size());
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next)
    emit(nv.substr(syms[i].start, syms[i].len), syms[i].id, out, rev);
  return out;
}

void SpmBpeTokenizer::emit(
    std::string_view text, int32_t id, std::vector<int32_t>& out,
    const std::unordered_map<std::string, std::pair<std::string, std::string>>& rev) const {
  if (id >= 0 && vocab_.types[id] == PieceType::kUnused) {
    // sentencepiece's ResegmentPiece: an unused piece is replaced by what it was merged from.
    const auto it = rev.find(std::string(text));
    if (it != rev.end()) {
      const auto& [l, r] = it->second;
      const auto li = mergeable_.find(l), ri = mergeable_.find(r);
      emit(l, li == mergeable_.end() ? -1 : li->second, out, rev);
      emit(r, ri == mergeable_.end() ? -1 : ri->second, out, rev);
      return;
    }
  }
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  if (opt_.byte_fallback) {
    bool all = true;
    for (char c : text) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
    if (all) {
      for (char c : text) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      return;
    }
  }
  out.push_back(opt_.unk);
}

std::string SpmBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  // The dummy prefix is removed from the first visible piece (sentencepiece does so at the start
  // of the sequence, llama2.c after BOS; leading control tokens count as neither).
  bool at_start = true;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("[tokenizer] decode: token id {} outside vocabulary of {}", id, vocab_size());
    const PieceType type = vocab_.types[id];
    if (type == PieceType::kControl) continue;
    if (type == PieceType::kByte) {
      out += static_cast<char>(parse_byte_piece(vocab_.pieces[id]));
      at_start = false;
      continue;
    }
    std::string_view piece = vocab_.pieces[id];
    if (type == PieceType::kUnknown) piece = " \xE2\x81\x87 ";  // sentencepiece's unk surface
    std::string text;
    text.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
      if (piece.substr(i, opt_.space.size()) == opt_.space) {
        text += ' ';
        i += opt_.space.size();
      } else {
        text += piece[i++];
      }
    }
    if (at_start && opt_.add_dummy_prefix && !text.empty() && text[0] == ' ') text.erase(0, 1);
    at_start = false;
    out += text;
  }
  return out;
}

}  // namespace edgellm::tok
