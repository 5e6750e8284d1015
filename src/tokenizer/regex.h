// PCRE2 in UTF + UCP mode: \p{L}, \p{N}, \s and (?i:...) with Unicode semantics, as the
// Oniguruma patterns of HF tokenizer.json files need (std::regex has no Unicode classes).
// Invalid UTF-8 in the subject is allowed (PCRE2_MATCH_INVALID_UTF): such bytes never match a
// character class, so they end up between matches and still reach the byte-level model.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgellm::tok {

class Regex {
 public:
  // Throws Error "[tokenizer] <where>: regex '<pattern>': <pcre2 message> at offset N".
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-empty matches of the pattern in s, left to right, as [begin, end) byte offsets.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace edgellm::tok
