#include "train/optimizer.h"

#include <cmath>

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

AdamW::AdamW(std::vector<ParamSpan> spans, AdamWConfig cfg) : spans_(std::move(spans)), cfg_(cfg) {
  for (const ParamSpan& s : spans_) n_ += s.n;
  state_.assign(2 * n_, 0.f);
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
    double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static) if (s.n > 65536)
    for (size_t i = 0; i < s.n; ++i) part += double(s.g[i]) * s.g[i];
    ss += part;
  }
  const double norm = std::sqrt(ss);
  // A NaN/Inf gradient would poison the parameters and both moments for good; refuse the step.
  if (!std::isfinite(norm))
    fail("[train] gradient norm is {} (NaN/Inf gradient); the step was not applied", norm);
  const float clip =
      cfg_.max_grad_norm > 0 && norm > cfg_.max_grad_norm ? float(cfg_.max_grad_norm / norm) : 1.f;
  ++t_;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
  size_t off = 0;
  for (size_t k = 0; k < spans_.size(); ++k) {
    const ParamSpan& s = spans_[k];
    if (!on(k)) {
      off += s.n;
      continue;
    }
    const int64_t st = ++span_t_[k];
    const float bc1 = 1.f - std::pow(cfg_.beta1, float(st)),
                bc2 = 1.f - std::pow(cfg_.beta2, float(st));
    float* m = state_.data() + off;
    float* v = state_.data() + n_ + off;
    const float decay = s.decay ? lr * cfg_.weight_decay : 0.f;
#pragma omp parallel for schedule(static) if (s.n > 65536)
    for (size_t i = 0; i < s.n; ++i) {
      const float g = s.g[i] * clip;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      // Decoupled decay: shrink the weight directly, not through the gradient.
      s.p[i] -= decay * s.p[i] + lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
    }
    off += s.n;
  }
  return norm;
}

}  // namespace edgellm
