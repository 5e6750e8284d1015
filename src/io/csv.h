// RFC 4180 CSV: comma-separated fields, fields optionally enclosed in double quotes, a quote
// inside a quoted field written twice (""), line breaks (LF or CRLF) allowed inside quotes.
// This is what Python's csv module and pandas write (the MMLU files in both layouts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm {

struct CsvRecord {
  int64_t line = 0;  // 1-based line of the file on which the record starts
  std::vector<std::string> fields;
};

// Parses `text`; `source` names the file in errors. A final line break is optional. Throws
// Error "[csv] <source> line N: ..." for a quote inside an unquoted field, text after a closing
// quote, or an unterminated quoted field (naming the line where it opened).
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source);
std::vector<CsvRecord> read_csv(const std::string& path);

}  // namespace edgellm
