// Data-free calibration (LLM-QAT, Liu et al. 2023, §3.1): calibration sequences sampled from the
// model itself, so profiling and compression need no data set. Each sequence starts at BOS and
// continues by sampling the model's next-token distribution (temperature, optional top-p) until
// it holds `seq` tokens. BOS and EOS are never sampled, so every sequence is one continuous
// text. Sequence i draws from its own stream seeded by (seed, i): the set is deterministic per
// seed (for a fixed thread count, like every forward) and a longer set extends a shorter one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/model.h"

namespace edgellm {

struct DataFreeCalibOptions {
  int64_t n = 16;     // sequences
  int64_t seq = 128;  // tokens per sequence, BOS included
  float temperature = 1.f;
  float top_p = 1.f;
  uint64_t seed = 0;
  std::function<void(int64_t done, int64_t total)> progress;  // after each sequence
};

// [n][seq] token ids, each row starting with the model's BOS.
std::vector<std::vector<int32_t>> data_free_calibration(const Model& m,
                                                        const DataFreeCalibOptions& o);

}  // namespace edgellm
