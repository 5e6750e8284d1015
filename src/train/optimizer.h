// AdamW (Loshchilov & Hutter 2019: weight decay decoupled from the adaptive step), global-norm
// gradient clipping, and learning-rate schedules with linear warmup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/scratch_file.h"

namespace edgellm {
namespace simd {
struct AdamWStep;
}

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
// Offloaded moments (AdamWConfig::offload_dir) of n parameters: the bytes of the one staging
// buffer each step reads them through, which is all the memory they then take.
size_t adamw_offload_stage_bytes(size_t n, OptimState s);

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.f;
  float max_grad_norm = 1.f;  // <= 0: no clipping
  OptimState state = OptimState::F32;
  // Non-empty: the moments live in a scratch file in this directory (util/scratch_file.h), not
  // in memory. Each step reads the moments of the spans it updates through one staging buffer,
  // a slice of 65,536 parameters at a time, and writes them back: adaptive layer tuning
  // touches one window's moments per step, so the rest stay on storage. The arithmetic is the
  // same as in memory, bit for bit.
  std::string offload_dir;
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
  // The moments as checkpoints store them, in two sections. kState: F32, m and v of every span
  // back to back, [2, Σn] floats; Q8, the per-block scales of m then of sqrt(v), [2, Σ blocks]
  // floats. kCodes: the Q8 codes, [2, Σn] bytes (empty for F32). Read and written by byte range
  // wherever they live, in memory or in the offload file.
  enum Section { kState = 0, kCodes = 1 };
  size_t section_bytes(Section s) const { return s == kState ? 4 * n_state_ : n_codes_; }
  // The section in memory; nullptr when the moments are offloaded.
  uint8_t* section_data(Section s);
  void read_section(Section s, uint64_t off, size_t n, uint8_t* dst) const;
  void write_section(Section s, uint64_t off, size_t n, const uint8_t* src);
  bool offloaded() const { return file_ != nullptr; }
  // Bytes of memory the moments take: all of them, or the staging buffer when offloaded.
  size_t state_bytes() const {
    return state_.capacity() * sizeof(float) + codes_.capacity() + stage_.capacity();
  }
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
  // Where one part of the moments of a slice sits: a byte offset into the sections laid end to
  // end (kState first) and its length.
  struct Part {
    uint64_t at;
    size_t bytes;
  };
  // The moment parts of span k's parameters [s0, s0 + len) (off: the span's first parameter):
  // F32 m, v; Q8 codes of m, scales of m, codes of v, scales of v.
  std::vector<Part> parts(size_t k, size_t off, size_t s0, size_t len) const;
  uint8_t* in_memory(uint64_t at);
  // Where bytes [off, off + n) of section s sit in the sections laid end to end (checked).
  uint64_t section_at(Section s, uint64_t off, size_t n) const;
  // One update of span s's parameters [s0, s0 + len), its moment parts at mom (parts() order).
  void update(const ParamSpan& s, size_t s0, size_t len, uint8_t* const* mom,
              const simd::AdamWStep& a) const;

  std::vector<ParamSpan> spans_;
  AdamWConfig cfg_;
  std::vector<float> state_;    // in memory: section kState
  std::vector<uint8_t> codes_;  // in memory: section kCodes
  size_t n_state_ = 0, n_codes_ = 0;
  std::unique_ptr<ScratchFile> file_;  // offloaded: both sections, kState first
  std::vector<uint8_t> stage_;         // offloaded: one slice's moment parts
  std::vector<size_t> block0_;         // Q8: first block of each span
  size_t n_ = 0, blocks_ = 0;
  int64_t t_ = 0;
  std::vector<int64_t> span_t_;
};

}  // namespace edgellm
