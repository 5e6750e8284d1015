// Text helpers shared by the tokenizers: UTF-8 stepping, the GPT-2 byte<->unicode alphabet of
// byte-level BPE, and Unicode normalization (ICU).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgellm::tok {

// Length of the UTF-8 sequence starting at s[i] (1 for an invalid or truncated sequence, so that
// malformed input advances one byte at a time and is handled as raw bytes by the byte fallback).
size_t utf8_len(std::string_view s, size_t i);
bool utf8_valid(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);

// GPT-2's reversible byte -> printable codepoint map (printable Latin-1 bytes map to themselves,
// the rest to U+0100.. in byte order), so that every byte sequence is a string of "characters".
struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_utf8;  // byte -> UTF-8 of its codepoint
  std::array<int16_t, 512> cp_to_byte;        // codepoint (< 512) -> byte, -1 if not in the map
  ByteLevelAlphabet();
  // Maps byte-level text back to bytes; characters outside the alphabet are kept as UTF-8.
  std::string decode(std::string_view s) const;
  std::string encode(std::string_view bytes) const;
};
const ByteLevelAlphabet& byte_level_alphabet();

enum class NormForm { kNone, kNFC, kNFD, kNFKC, kNFKD };
// Normalizes valid UTF-8 runs of `s`; invalid bytes are passed through unchanged (ICU would turn
// them into U+FFFD, which would change what the byte-level model sees).
std::string normalize(std::string_view s, NormForm form);

// "▁" (U+2581), SentencePiece's whitespace symbol.
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";

// "<0xAB>" -> 0xAB, else -1.
int parse_byte_piece(std::string_view piece);
std::string byte_piece(uint8_t b);

// Every occurrence of `from` (non-empty) in s replaced by `to`, left to right.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

}  // namespace edgellm::tok
