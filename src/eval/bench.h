// Speed of the forward engine in llama-bench's terms: pp<N> = prefill of N tokens in one batch
// from an empty cache, tg<N> = N single-token decode steps from an empty cache. Token ids are
// drawn deterministically (the speed of a dense forward does not depend on them).
#pragma once

#include <cstdint>

#include "model/model.h"

namespace edgellm {

struct BenchOptions {
  int64_t pp = 512;
  int64_t tg = 128;
  int reps = 3;  // best of reps (after one warm-up) — machines are noisy, the minimum is stable
};

struct BenchResult {
  double pp_tokens_per_s = 0, tg_tokens_per_s = 0;
  double pp_seconds = 0, tg_seconds = 0;  // best run
  double peak_rss_mb = 0;                 // process peak resident set after the runs
};

BenchResult bench_forward(const Model& m, const BenchOptions& o);
double peak_rss_mb();

}  // namespace edgellm
