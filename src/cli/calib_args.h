// --calib options shared by `profile` and `compress` (eval/calibration.h does the work).
#pragma once

#include <CLI/CLI.hpp>

#include "eval/calibration.h"

namespace edgellm::cli {

inline void add_calib_args(CLI::App* cmd, CalibOptions& o) {
  cmd->add_option("--calib", o.source,
                  "calibration text file (tokenized as-is, no BOS), or 'data-free' (sequences "
                  "sampled from the model)");
  cmd->add_option("--calib-windows", o.windows, "number of calibration windows N")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--calib-len", o.len, "tokens per window T")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--calib-sample", o.sample,
                  "even (start_i = floor(i(n-T)/(N-1))) | random (seeded uniform starts)");
  cmd->add_option("--seed", o.seed,
                  "seed of random windows / data-free sampling / --policy random");
}

}  // namespace edgellm::cli
