#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
constexpr size_t kQ8B = static_cast<size_t>(simd::kQ8Block);
// Elements per parallel chunk of the update: a multiple of the 8-bit block.
constexpr size_t kChunk = 64 * kQ8B;
// Offloaded moments are staged a slice of this many parameters at a time: a whole number of
// chunks, so the chunks (and the arithmetic) are those of the in-memory update.
constexpr size_t kOffloadSlice = 4 * kChunk;
// Each staged part starts at a multiple of this (the scales are floats, the codes bytes).
constexpr size_t kPartAlign = 64;

size_t align_up(size_t x) { return (x + kPartAlign - 1) / kPartAlign * kPartAlign; }
}  // namespace

size_t adamw_offload_stage_bytes(size_t n, OptimState s) {
  const size_t e = std::min(n, kOffloadSlice);
  if (s == OptimState::F32) return 2 * align_up(e * sizeof(float));
  // A slice's blocks: its first starts a block (slices are whole chunks), so ceil(e / B).
  return 2 * (align_up(e) + align_up((e + kQ8B - 1) / kQ8B * sizeof(float)));
}

AdamW::AdamW(std::vector<ParamSpan> spans, AdamWConfig cfg) : spans_(std::move(spans)), cfg_(cfg) {
  for (const ParamSpan& s : spans_) {
    block0_.push_back(blocks_);
    n_ += s.n;
    blocks_ += (s.n + kQ8B - 1) / kQ8B;
  }
  const bool q8 = cfg_.state == OptimState::Q8;
  n_state_ = q8 ? 2 * blocks_ : 2 * n_;
  n_codes_ = q8 ? 2 * n_ : 0;
  if (cfg_.offload_dir.empty()) {
    state_.assign(n_state_, 0.f);
    codes_.assign(n_codes_, 0);
  } else {
    file_ = std::make_unique<ScratchFile>(cfg_.offload_dir, "optimizer", "[train] --optim-offload");
    file_->resize(4 * n_state_ + n_codes_);  // zero moments, a sparse file until written
    stage_.resize(adamw_offload_stage_bytes(n_, cfg_.state));
  }
  span_t_.assign(spans_.size(), 0);
}

uint8_t* AdamW::section_data(Section s) {
  if (file_) return nullptr;
  return s == kState ? reinterpret_cast<uint8_t*>(state_.data()) : codes_.data();
}

uint8_t* AdamW::in_memory(uint64_t at) {
  return at < 4 * n_state_ ? reinterpret_cast<uint8_t*>(state_.data()) + at
                           : codes_.data() + (at - 4 * n_state_);
}

uint64_t AdamW::section_at(Section s, uint64_t off, size_t n) const {
  EDGELLM_CHECK(off + n <= section_bytes(s), "optimizer section {}: bytes [{}, {}) of {}", int(s),
                off, off + n, section_bytes(s));
  return (s == kState ? 0 : 4 * n_state_) + off;
}

void AdamW::read_section(Section s, uint64_t off, size_t n, uint8_t* dst) const {
  const uint64_t at = section_at(s, off, n);
  if (file_)
    file_->read(dst, n, at);
  else if (n)
    std::memcpy(dst, const_cast<AdamW*>(this)->in_memory(at), n);
}

void AdamW::write_section(Section s, uint64_t off, size_t n, const uint8_t* src) {
  const uint64_t at = section_at(s, off, n);
  if (file_)
    file_->write(src, n, at);
  else if (n)
    std::memcpy(in_memory(at), src, n);
}

std::vector<AdamW::Part> AdamW::parts(size_t k, size_t off, size_t s0, size_t len) const {
  if (cfg_.state == OptimState::F32)
    return {{4 * (off + s0), 4 * len}, {4 * (n_ + off + s0), 4 * len}};
  const size_t b = block0_[k] + s0 / kQ8B, nb = (len + kQ8B - 1) / kQ8B, codes = 4 * n_state_;
  return {{codes + off + s0, len},
          {4 * b, 4 * nb},
          {codes + n_ + off + s0, len},
          {4 * (blocks_ + b), 4 * nb}};
}

void AdamW::update(const ParamSpan& s, size_t s0, size_t len, uint8_t* const* mom,
                   const simd::AdamWStep& a) const {
  const bool q8 = cfg_.state == OptimState::Q8;
  const auto nc = static_cast<int64_t>((len + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (nc > 1)
  for (int64_t c = 0; c < nc; ++c) {
    const size_t c0 = static_cast<size_t>(c) * kChunk;
    const auto n = static_cast<int64_t>(std::min(kChunk, len - c0));
    float* p = s.p + s0 + c0;
    const float* g = s.g + s0 + c0;
    if (q8) {
      const size_t b = c0 / kQ8B;
      simd::adamw_q8(p, g, mom[0] + c0, reinterpret_cast<float*>(mom[1]) + b, mom[2] + c0,
                     reinterpret_cast<float*>(mom[3]) + b, n, a);
    } else {
      simd::adamw_f32(p, g, reinterpret_cast<float*>(mom[0]) + c0,
                      reinterpret_cast<float*>(mom[1]) + c0, n, a);
    }
  }
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
    uint8_t* mom[4];
    if (!file_) {  // the whole span in place
      const std::vector<Part> ps = parts(k, off, 0, s.n);
      for (size_t i = 0; i < ps.size(); ++i) mom[i] = in_memory(ps[i].at);
      update(s, 0, s.n, mom, a);
    } else {  // slice by slice through the staging buffer
      for (size_t s0 = 0; s0 < s.n; s0 += kOffloadSlice) {
        const size_t len = std::min(kOffloadSlice, s.n - s0);
        const std::vector<Part> ps = parts(k, off, s0, len);
        size_t at = 0;
        for (size_t i = 0; i < ps.size(); ++i) {
          mom[i] = stage_.data() + at;
          file_->read(mom[i], ps[i].bytes, ps[i].at);
          at += align_up(ps[i].bytes);
        }
        EDGELLM_CHECK(at <= stage_.size(), "optimizer slice of {} B over its stage of {} B", at,
                      stage_.size());
        update(s, s0, len, mom, a);
        for (size_t i = 0; i < ps.size(); ++i) file_->write(mom[i], ps[i].bytes, ps[i].at);
      }
    }
    off += s.n;
  }
  return norm;
}

}  // namespace edgellm
