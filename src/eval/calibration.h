// Calibration windows: the token sequences that profiling (eval/sensitivity.h) and calibrated
// compression (eval/calibrated_compress.h) run through the model. One helper, so `profile`,
// `compress` and the pipeline read the same text the same way (PAPER.md §1: the official code
// takes 128 × 2048-token segments of WikiText-2 train).
//
//   text file   tokenized as-is (no BOS inserted anywhere), N windows of T tokens each, at
//               positions 0..T-1. Evenly spaced by default:
//                 start_i = floor(i·(n_tokens − T)/(N − 1)), i = 0..N-1 (start_0 = 0 for N = 1),
//               so the first window opens the text and the last one closes it; or `random`:
//               N starts drawn independently and uniformly from [0, n_tokens − T] by a seeded
//               generator of our own (the same on every platform and library).
//   data-free   N sequences of T tokens sampled from the model itself (LLM-QAT; BOS first,
//               eval/data_free_calib.h), for when the user has no text.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

struct CalibOptions {
  std::string source;           // a UTF-8 text file, or "data-free"
  int64_t windows = 32;         // N
  int64_t len = 256;            // T
  std::string sample = "even";  // even | random (text only)
  uint64_t seed = 0;            // random windows; data-free sampling
  float temperature = 1.f;      // data-free sampling
};

// Evenly spaced starts (formula above). Throws unless 1 <= len <= n_tokens and windows >= 1.
std::vector<int64_t> calib_window_starts(int64_t n_tokens, int64_t windows, int64_t len);
// Seeded uniform starts in [0, n_tokens − len], in draw order (windows may overlap).
std::vector<int64_t> calib_window_starts_random(int64_t n_tokens, int64_t windows, int64_t len,
                                                uint64_t seed);

struct Calibration {
  std::vector<std::vector<int32_t>> windows;  // [N][T]
  nlohmann::json provenance;                  // source, N, T, sampling, seed, starts
  int64_t tokens() const;                     // Σ window lengths
};

// The calibration windows for `m`. `tok` is needed for a text source (null is an error there).
Calibration load_calibration(const Model& m, const Tokenizer* tok, const CalibOptions& o);

}  // namespace edgellm
