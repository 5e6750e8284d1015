#include "tokenizer/text_util.h"

#include <fmt/format.h>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "util/error.h"

namespace edgellm::tok {

size_t utf8_len(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t n;
  uint32_t min_cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min_cp = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min_cp = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min_cp = 0x10000;
  } else {
    return 1;
  }
  if (i + n > s.size()) return 1;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto d = static_cast<uint8_t>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 1;
    cp = (cp << 6) | (d & 0x3F);
  }
  // Overlong forms, surrogates and codepoints past U+10FFFF are invalid UTF-8.
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 1;
  return n;
}

static bool valid_at(std::string_view s, size_t i, size_t n) {
  return n > 1 || static_cast<uint8_t>(s[i]) < 0x80;
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_len(s, i);
    if (!valid_at(s, i, n)) return false;
    i += n;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  cp_to_byte.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
    append_utf8(byte_to_utf8[b], cp);
    cp_to_byte[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_utf8[static_cast<uint8_t>(c)];
  return out;
}

std::string ByteLevelAlphabet::decode(std::string_view s) const {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_len(s, i);
    uint32_t cp = 0;
    if (n == 1) {
      cp = static_cast<uint8_t>(s[i]);
    } else if (n == 2) {
      cp = ((static_cast<uint8_t>(s[i]) & 0x1F) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3F);
    } else {
      cp = 0xFFFFFFFF;  // 3/4-byte characters are never in the alphabet
    }
    if (cp < cp_to_byte.size() && cp_to_byte[cp] >= 0 && (n == 2 || cp < 0x80)) {
      out += static_cast<char>(cp_to_byte[cp]);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet a;
  return a;
}

static const icu::Normalizer2* normalizer_for(NormForm form) {
  UErrorCode st = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormForm::kNFC:
      n = icu::Normalizer2::getNFCInstance(st);
      break;
    case NormForm::kNFD:
      n = icu::Normalizer2::getNFDInstance(st);
      break;
    case NormForm::kNFKC:
      n = icu::Normalizer2::getNFKCInstance(st);
      break;
    case NormForm::kNFKD:
      n = icu::Normalizer2::getNFKDInstance(st);
      break;
    case NormForm::kNone:
      return nullptr;
  }
  if (U_FAILURE(st) || n == nullptr)
    fail("[tokenizer] ICU normalizer unavailable: {}", u_errorName(st));
  return n;
}

static void normalize_valid(const icu::Normalizer2* n, std::string_view s, std::string& out) {
  if (s.empty()) return;
  UErrorCode st = U_ZERO_ERROR;
  const icu::StringPiece sp(s.data(), static_cast<int32_t>(s.size()));
  // Most text is already normalized; the quick check avoids a copy through ICU.
  if (n->isNormalizedUTF8(sp, st) && U_SUCCESS(st)) {
    out.append(s);
    return;
  }
  st = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  n->normalizeUTF8(0, sp, sink, nullptr, st);
  if (U_FAILURE(st)) fail("[tokenizer] ICU normalization failed: {}", u_errorName(st));
}

std::string normalize(std::string_view s, NormForm form) {
  const icu::Normalizer2* n = normalizer_for(form);
  if (n == nullptr) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t run = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_len(s, i);
    if (!valid_at(s, i, len)) {
      normalize_valid(n, s.substr(run, i - run), out);
      out += s[i];
      run = i + 1;
    }
    i += len;
  }
  normalize_valid(n, s.substr(run), out);
  return out;
}

int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

std::string byte_piece(uint8_t b) { return fmt::format("<0x{:02X}>", b); }

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  size_t p = 0;
  for (size_t q; (q = s.find(from, p)) != std::string_view::npos; p = q + from.size()) {
    out.append(s, p, q - p);
    out += to;
  }
  out.append(s.substr(p));
  return out;
}

}  // namespace edgellm::tok
