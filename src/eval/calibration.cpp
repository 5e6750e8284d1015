#include "eval/calibration.h"

#include "eval/data_free_calib.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {

void check_shape(int64_t n_tokens, int64_t windows, int64_t len) {
  if (windows < 1) fail("[calibration] --calib-windows {} must be >= 1", windows);
  if (len < 1) fail("[calibration] --calib-len {} must be >= 1", len);
  if (len > n_tokens)
    fail("[calibration] --calib-len {} exceeds the {} tokens of the calibration text", len,
         n_tokens);
}

// splitmix64 (Steele et al. 2014): a fixed, portable stream, unlike std:: distributions.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<int64_t> calib_window_starts(int64_t n_tokens, int64_t windows, int64_t len) {
  check_shape(n_tokens, windows, len);
  std::vector<int64_t> s(static_cast<size_t>(windows), 0);
  if (windows == 1) return s;
  const int64_t span = n_tokens - len;
  // Integer arithmetic: floor(i·span/(N−1)) exactly (span·i stays far below 2^63 for any text).
  for (int64_t i = 0; i < windows; ++i) s[static_cast<size_t>(i)] = i * span / (windows - 1);
  return s;
}

std::vector<int64_t> calib_window_starts_random(int64_t n_tokens, int64_t windows, int64_t len,
                                                uint64_t seed) {
  check_shape(n_tokens, windows, len);
  const uint64_t range = static_cast<uint64_t>(n_tokens - len) + 1;
  uint64_t state = seed;
  std::vector<int64_t> s;
  s.reserve(static_cast<size_t>(windows));
  // Rejection sampling: uniform over [0, range) without modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  while (static_cast<int64_t>(s.size()) < windows) {
    const uint64_t r = splitmix(state);
    if (r >= limit) continue;
    s.push_back(static_cast<int64_t>(r % range));
  }
  return s;
}

int64_t Calibration::tokens() const {
  int64_t n = 0;
  for (const auto& w : windows) n += static_cast<int64_t>(w.size());
  return n;
}

Calibration load_calibration(const Model& m, const Tokenizer* tok, const CalibOptions& o) {
  const ModelConfig& c = m.config();
  if (o.source.empty()) fail("[calibration] no calibration source (--calib FILE|data-free)");
  if (o.len > c.max_seq_len)
    fail("[calibration] --calib-len {} exceeds the model context of {}", o.len, c.max_seq_len);
  Calibration cal;
  cal.provenance = {{"source", o.source}, {"windows", o.windows}, {"len", o.len}};
  if (o.source == "data-free") {
    DataFreeCalibOptions d;
    d.n = o.windows;
    d.seq = o.len;
    d.seed = o.seed;
    d.temperature = o.temperature;
    cal.windows = data_free_calibration(m, d);
    cal.provenance["sample"] = "model";
    cal.provenance["seed"] = o.seed;
    cal.provenance["temperature"] = o.temperature;
    return cal;
  }
  if (!tok) fail("[calibration] '{}': a text source needs a tokenizer", o.source);
  if (o.sample != "even" && o.sample != "random")
    fail("[calibration] --calib-sample '{}': expected even or random", o.sample);
  const std::vector<int32_t> ids = tok->encode(read_file(o.source));
  const int64_t n = static_cast<int64_t>(ids.size());
  if (o.len > n)
    fail("[calibration] '{}': {} tokens, fewer than --calib-len {}", o.source, n, o.len);
  const std::vector<int64_t> starts = o.sample == "even"
                                          ? calib_window_starts(n, o.windows, o.len)
                                          : calib_window_starts_random(n, o.windows, o.len, o.seed);
  for (int64_t s : starts) cal.windows.emplace_back(ids.begin() + s, ids.begin() + s + o.len);
  cal.provenance["sample"] = o.sample;
  if (o.sample == "random") cal.provenance["seed"] = o.seed;
  cal.provenance["text_tokens"] = n;
  cal.provenance["starts"] = starts;
  return cal;
}

}  // namespace edgellm
