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

// How the moments are stored: fp32 (8 bytes per parameter), or 8-bit block-wise (2 bytes plus
// two fp32 scales per 256: simd.h adamw_q8, after Dettmers et al. 2022), updated in fp32.
enum class OptimState { F32, Q8 };
OptimState optim_state_from_name(const std::string& name);  // "fp32" | "8bit"
const char* optim_state_name(OptimState s);

// Bytes of the moments of n parameters in n_spans spans: exact for F32, an upper bound for Q8
// (each span's last block may be partial). For planning before the spans exist.
size_t adamw_state_bytes(size_t n, size_t n_spans, OptimState s);

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.f;
  float max_grad_norm = 1.f;  // <= 0: no clipping
  OptimState state = OptimState::F32;
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
  // active (optional, one flag per span): spans flagged 0 are left alone (parameters, moments
  // and their step count), as PyTorch's AdamW skips parameters without a gradient: adaptive
  // layer tuning updates only the picked exit's window and head. Each span's bias correction
  // uses its own count of the steps that updated it.
  double step(float lr, const std::vector<char>* active = nullptr);
  // The moments as checkpoints store them. F32: m and v of every span back to back, [2, Σn].
  // Q8: the per-block scales of m then of sqrt(v), [2, Σ blocks]; codes() holds the codes,
  // [2, Σn] (empty for F32).
  std::vector<float>& state() { return state_; }
  std::vector<uint8_t>& codes() { return codes_; }
  size_t state_bytes() const { return state_.capacity() * sizeof(float) + codes_.capacity(); }
  int64_t t() const { return t_; }
  // Sets the step count of the optimizer and of every span.
  void set_t(int64_t t);
  // Steps that updated each span (equal to t() unless some steps left spans out).
  const std::vector<int64_t>& span_steps() const { return span_t_; }
  void set_span_steps(const std::vector<int64_t>& s);
  size_t n() const { return n_; }
  // Points span k's gradients elsewhere: a windowed training engine holds the gradients of one
  // window at a time, in one buffer (train/engine.h lora_grads()).
  void set_grad(size_t k, float* g) { spans_.at(k).g = g; }

 private:
  std::vector<ParamSpan> spans_;
  AdamWConfig cfg_;
  std::vector<float> state_;
  std::vector<uint8_t> codes_;
  std::vector<size_t> block0_;  // Q8: first block of each span
  size_t n_ = 0, blocks_ = 0;
  int64_t t_ = 0;
  std::vector<int64_t> span_t_;
};

}  // namespace edgellm
