// Reading numbers out of untrusted JSON (config.json, adapter_config.json, ...). nlohmann's
// get<int>() narrows silently (4294967297 becomes 1, 768.5 becomes 768), so every integer field
// is read here at full width, checked to be integral and inside [lo, hi] before it is narrowed,
// and an error shows the value exactly as the file wrote it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace edgellm {

// Where a value came from, for error messages: "[tag] source: field 'field' ...".
struct JsonWhere {
  const char* tag;            // module, e.g. "config"
  const std::string& source;  // file
  std::string field;          // dotted path inside the file
};

// An integer in [lo, hi]. Accepts JSON integers and integral floats (768.0); refuses fractions,
// strings, booleans and out-of-range values with the value as written.
int64_t json_int(const nlohmann::json& v, const JsonWhere& w, int64_t lo, int64_t hi);
// A finite number in [lo, hi].
double json_number(const nlohmann::json& v, const JsonWhere& w, double lo, double hi);
// A boolean (JSON true/false only).
bool json_bool(const nlohmann::json& v, const JsonWhere& w);

// A whole JSON file. Every failure — unreadable, not JSON, a number the parser cannot hold
// (1e999999 throws out_of_range, not parse_error) — is an Error "[tag] path: ...".
nlohmann::json read_json_file(const std::string& path, const char* tag);

}  // namespace edgellm
