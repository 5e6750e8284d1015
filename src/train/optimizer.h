// AdamW (Loshchilov & Hutter 2019: weight decay decoupled from the adaptive step), global-norm
// gradient clipping, and learning-rate schedules with linear warmup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgellm {

enum class LrSchedule { Constant, Linear, Cosine };
LrSchedule lr_schedule_from_name(const std::string& name);
const char* lr_schedule_name(LrSchedule s);
// lr for 0-based optimizer step `step` of `total`: warmup steps ramp linearly from base/warmup
// to base, then constant / linear to min_lr / cosine to min_lr over the remaining steps.
float lr_at(LrSchedule s, float base, int64_t step, int64_t warmup, int64_t total,
            float min_lr = 0.f);

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.f;
  float max_grad_norm = 1.f;  // <= 0: no clipping
};

// One contiguous run of parameters and their gradients.
struct ParamSpan {
  float* p;  // [n]
  float* g;  // [n]
  size_t n;
  bool decay;  // receives weight decay
};

class AdamW {
 public:
  AdamW(std::vector<ParamSpan> spans, AdamWConfig cfg);
  // Clips the gradients to max_grad_norm (global L2 over all spans), then one AdamW update at
  // learning rate lr. Returns the gradient norm before clipping.
  double step(float lr);
  // m and v of every span back to back: [2, Σn], for checkpoints.
  std::vector<float>& state() { return state_; }
  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }
  size_t n() const { return n_; }

 private:
  std::vector<ParamSpan> spans_;
  AdamWConfig cfg_;
  std::vector<float> state_;
  size_t n_ = 0;
  int64_t t_ = 0;
};

}  // namespace edgellm
