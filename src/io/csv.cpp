#include "io/csv.h"

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source) {
  std::vector<CsvRecord> out;
  const size_t n = text.size();
  size_t i = 0;
  int64_t line = 1;
  // A line break is LF or CRLF; returns its length at position j (0 if none).
  auto line_break = [&](size_t j) -> size_t {
    if (j < n && text[j] == '\n') return 1;
    if (j + 1 < n && text[j] == '\r' && text[j + 1] == '\n') return 2;
    return 0;
  };
  while (i < n) {
    CsvRecord rec;
    rec.line = line;
    for (;;) {  // one field per iteration
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t opened = line;
        ++i;
        for (;;) {
          if (i >= n)
            fail("[csv] {} line {}: quoted field never closed (end of file reached)", source,
                 opened);
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        if (i < n && text[i] != ',' && line_break(i) == 0)
          fail("[csv] {} line {}: character '{}' after the closing quote of field {}", source, line,
               text[i], rec.fields.size() + 1);
      } else {
        while (i < n && text[i] != ',' && line_break(i) == 0) {
          if (text[i] == '"')
            fail("[csv] {} line {}: quote inside unquoted field {}", source, line,
                 rec.fields.size() + 1);
          field += text[i++];
        }
      }
      rec.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      break;  // line break or end of input ends the record
    }
    i += line_break(i);
    ++line;
    out.push_back(std::move(rec));
  }
  return out;
}

std::vector<CsvRecord> read_csv(const std::string& path) {
  return parse_csv(read_file(path), path);
}

}  // namespace edgellm
