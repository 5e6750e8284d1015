#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "simd/simd.h"
#include "util/error.h"

namespace edgellm {

LrSchedule lr_schedule_from_name(const std::string& name) {
  if (name == "constant") return LrSchedule::Constant;
  if (name == "linear") return LrSchedule::Linear;
  if (name == "cosine") return LrSchedule::Cosine;
  fail("[train] --schedule '{}' unknown (constant, linear, cosine)", name);
}

const char* lr_schedule_name(LrSchedule s) {
  return s == LrSchedule::Constant ? "constant" : s == LrSchedule::Linear ? "linear" : "cosine";
}

float lr_at(LrSchedule s, float base, int64_t step, int64_t warmup, int64_t total, float min_lr) {
  if (step < warmup) return base * float(step + 1) / float(warmup);
  if (s == LrSchedule::Constant || total <= warmup) return base;
  const double frac = double(step - warmup) / double(total - warmup);  // [0, 1)
  const double span = double(base) - double(min_lr);
  if (s == LrSchedule::Linear) return static_cast<float>(min_lr + span * (1.0 - frac));
  return static_cast<float>(min_lr + span * 0.5 * (1.0 + std::cos(M_PI * frac)));
}

OptimState optim_state_from_name(const std::string& name) {
  if (name == "fp32") return OptimState::F32;
  if (name == "8bit") return OptimState::Q8;
  fail("[train] --optim-state '{}' unknown (fp32, 8bit)", name);
}

const char* optim_state_name(OptimState s) { return s == OptimState::Q8 ? "8bit" : "fp32"; }

size_t adamw_state_bytes(size_t n, size_t n_spans, OptimState s) {
  if (s == OptimState::F32) return 2 * n * sizeof(float);
  const size_t B = static_cast<size_t>(simd::kQ8Block);
  return 2 * n + 2 * sizeof(float) * ((n + B - 1) / B + n_spans);
}

namespace {
// Elements per parallel chunk of the update: a multiple of the 8-bit block.
constexpr size_t kChunk = 64 * static_cast<size_t>(simd::kQ8Block);
}  // namespace

AdamW::AdamW(std::vector<ParamSpan> spans, AdamWConfig cfg) : spans_(std::move(spans)), cfg_(cfg) {
  const size_t B = static_cast<size_t>(simd::kQ8Block);
  for (const ParamSpan& s : spans_) {
    block0_.push_back(blocks_);
    n_ += s.n;
    blocks_ += (s.n + B - 1) / B;
  }
  if (cfg_.state == OptimState::Q8) {
    state_.assign(2 * blocks_, 0.f);
    codes_.assign(2 * n_, 0);
  } else {
    state_.assign(2 * n_, 0.f);
  }
  span_t_.assign(spans_.size(), 0);
}

void AdamW::set_t(int64_t t) {
  t_ = t;
  span_t_.assign(spans_.size(), t);
}

void AdamW::set_span_steps(const std::vector<int64_t>& s) {
  if (s.size() != spans_.size())
    fail("[train] {} span step counts for an optimizer of {} spans", s.size(), spans_.size());
  span_t_ = s;
}

double AdamW::step(float lr, const std::vector<char>* active) {
  if (active && active->size() != spans_.size())
    fail("[train] {} span flags for an optimizer of {} spans", active->size(), spans_.size());
  auto on = [&](size_t k) { return !active || (*active)[k]; };
  double ss = 0;
  for (size_t k = 0; k < spans_.size(); ++k) {
    const ParamSpan& s = spans_[k];
    if (!on(k)) continue;
    const auto nc = static_cast<int64_t>((s.n + kChunk - 1) / kChunk);
    double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static) if (nc > 1)
    for (int64_t c = 0; c < nc; ++c) {
      const size_t c0 = static_cast<size_t>(c) * kChunk;
      part += simd::sum_squares(s.g + c0, static_cast<int64_t>(std::min(kChunk, s.n - c0)));
    }
    ss += part;
  }
  const double norm = std::sqrt(ss);
  // A NaN/Inf gradient would poison the parameters and both moments for good; refuse the step.
  if (!std::isfinite(norm))
    fail("[train] gradient norm is {} (NaN/Inf gradient); the step was not applied", norm);
  const float clip =
      cfg_.max_grad_norm > 0 && norm > cfg_.max_grad_norm ? float(cfg_.max_grad_norm / norm) : 1.f;
  ++t_;
  const bool q8 = cfg_.state == OptimState::Q8;
  size_t off = 0;
  for (size_t k = 0; k < spans_.size(); ++k) {
    const ParamSpan& s = spans_[k];
    if (!on(k)) {
      off += s.n;
      continue;
    }
    const int64_t st = ++span_t_[k];
    simd::AdamWStep a;
    a.b1 = cfg_.beta1;
    a.b2 = cfg_.beta2;
    a.eps = cfg_.eps;
    a.clip = clip;
    a.lr_bc1 = lr / (1.f - std::pow(cfg_.beta1, float(st)));
    a.inv_bc2 = 1.f / (1.f - std::pow(cfg_.beta2, float(st)));
    // Decoupled decay: shrink the weight directly, not through the gradient.
    a.decay = s.decay ? lr * cfg_.weight_decay : 0.f;
    const auto nc = static_cast<int64_t>((s.n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (nc > 1)
    for (int64_t c = 0; c < nc; ++c) {
      const size_t c0 = static_cast<size_t>(c) * kChunk;
      const auto n = static_cast<int64_t>(std::min(kChunk, s.n - c0));
      if (q8) {
        const size_t b = block0_[k] + c0 / static_cast<size_t>(simd::kQ8Block);
        simd::adamw_q8(s.p + c0, s.g + c0, codes_.data() + off + c0, state_.data() + b,
                       codes_.data() + n_ + off + c0, state_.data() + blocks_ + b, n, a);
      } else {
        simd::adamw_f32(s.p + c0, s.g + c0, state_.data() + off + c0, state_.data() + n_ + off + c0,
                        n, a);
      }
    }
    off += s.n;
  }
  return norm;
}

}  // namespace edgellm
