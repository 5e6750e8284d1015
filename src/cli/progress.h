// The progress line of the training commands (tune, pretrain): one line per logged step.
#pragma once

#include <fmt/format.h>

#include <cstdio>

#include "train/trainer.h"

namespace edgellm::cli {

inline void print_step_line(const StepLog& s, int64_t steps) {
  std::fprintf(stderr,
               "step %lld/%lld  loss %.4f%s  lr %.2e  |g| %.3f  %.0f tok/s  ETA %.0fs  peak %.0f "
               "MiB\n",
               static_cast<long long>(s.step), static_cast<long long>(steps), s.loss,
               s.val_loss >= 0 ? fmt::format("  val {:.4f}", s.val_loss).c_str() : "", s.lr,
               s.grad_norm, s.tokens_per_s, s.eta, s.peak_rss / 1048576.0);
}

}  // namespace edgellm::cli
