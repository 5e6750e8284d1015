#include "compress/compress_linear.h"

#include <cmath>
#include <limits>

#include "compress/obs.h"
#include "compress/rtn.h"
#include "kernels/matmul.h"
#include "util/error.h"

namespace edgellm {

const char* quantizer_name(Quantizer q) { return q == Quantizer::Rtn ? "rtn" : "gptq"; }

const char* pruner_name(Pruner p) {
  switch (p) {
    case Pruner::None:
      return "none";
    case Pruner::Magnitude:
      return "magnitude";
    case Pruner::Wanda:
      return "wanda";
    case Pruner::SparseGpt:
      return "sparsegpt";
  }
  return "?";
}

Quantizer quantizer_from_name(const std::string& s, const std::string& what) {
  if (s == "rtn") return Quantizer::Rtn;
  if (s == "gptq") return Quantizer::Gptq;
  fail("[compress] {}: quantizer '{}' unknown (rtn, gptq)", what, s);
}

Pruner pruner_from_name(const std::string& s, const std::string& what) {
  for (Pruner p : {Pruner::None, Pruner::Magnitude, Pruner::Wanda, Pruner::SparseGpt})
    if (s == pruner_name(p)) return p;
  fail("[compress] {}: pruner '{}' unknown (none, magnitude, wanda, sparsegpt)", what, s);
}

WeightFormat CompressSpec::format() const {
  WeightFormat f;
  f.bits = bits;
  f.group = bits == 16 ? 0 : group;
  f.scheme = bits == 16 ? QuantScheme::Sym : scheme;
  if (sparse_storage && pruner != Pruner::None && sparsity.any()) {
    f.sparse = sparsity.nm() ? SparseFormat::NM : SparseFormat::Bitmask;
    if (sparsity.nm()) {
      f.nm_n = sparsity.n;
      f.nm_m = sparsity.m;
    }
  }
  return f;
}

void CompressSpec::validate(const std::string& what) const {
  format().validate(what);
  if (sparsity.nm()) {
    if (!(sparsity.n >= 1 && sparsity.n < sparsity.m && sparsity.m <= 16))
      fail("[compress] {}: N:M {}:{} not supported (1 <= N < M <= 16)", what, sparsity.n,
           sparsity.m);
  } else if (!(sparsity.p >= 0 && sparsity.p < 1)) {
    fail("[compress] {}: sparsity {} outside [0, 1)", what, sparsity.p);
  }
  if (pruner == Pruner::None && sparsity.any())
    fail("[compress] {}: sparsity given but pruner is none", what);
  if (act_order && quantizer != Quantizer::Gptq)
    fail("[compress] {}: act-order needs the gptq quantizer", what);
  if (!(percdamp >= 0)) fail("[compress] {}: percdamp {} is negative", what, percdamp);
}

double output_mse(const float* w, const float* w_hat, int64_t rows, int64_t cols,
                  const std::vector<double>& H) {
  // Σ_r δ_rᵀHδ_r as (Δ·H)∘Δ summed: Δ·H by the fp32 sgemm a chunk of rows at a time (a
  // rows·cols² product, 130 GFLOP for a TinyLlama down_proj, seconds in fp32 where Eigen's double
  // product took tens of them), the elementwise sum in double. H is symmetric: row- and
  // column-major are the same matrix.
  const std::vector<float> h(H.begin(), H.end());
  constexpr int64_t kChunk = 256;
  std::vector<float> d(static_cast<size_t>(std::min(rows, kChunk) * cols)), dh(d.size());
  double sum = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += kChunk) {
    const int64_t nr = std::min(kChunk, rows - r0);
    for (int64_t i = 0; i < nr * cols; ++i) d[i] = w[r0 * cols + i] - w_hat[r0 * cols + i];
    sgemm(false, false, nr, cols, cols, 1.f, d.data(), cols, h.data(), cols, 0.f, dh.data(), cols);
    for (int64_t i = 0; i < nr * cols; ++i) sum += double(d[i]) * double(dh[i]);
  }
  return 0.5 * sum;
}

QuantizedMatrix compress_codes(const float* w, int64_t rows, int64_t cols, const CompressSpec& spec,
                               const CalibStats* calib, CompressReport* rep) {
  spec.validate("compress_linear");
  if (rows <= 0 || cols <= 0) fail("[compress] weight shape {}x{} is empty", rows, cols);
  if (calib && calib->in() != cols)
    fail("[compress] calibration width {} for a weight with {} inputs", calib->in(), cols);
  if (spec.needs_hessian() && !(calib && calib->has_hessian()))
    fail("[compress] {} + {} needs calibration inputs (a Hessian)", quantizer_name(spec.quantizer),
         pruner_name(spec.pruner));
  if (spec.pruner == Pruner::Wanda && !calib)
    fail("[compress] wanda needs calibration column norms");
  const WeightFormat fmt = spec.format();
  const bool prune = spec.pruner != Pruner::None && spec.sparsity.any();

  QuantizedMatrix q;
  std::vector<uint8_t> kept;
  if (prune && spec.pruner != Pruner::SparseGpt) {
    const auto score = spec.pruner == Pruner::Magnitude
                           ? magnitude_scores(w, rows, cols)
                           : wanda_scores(w, rows, cols, calib->col_norms());
    kept = mask_from_scores(score, rows, cols, spec.sparsity);
  }
  ObsOptions o;
  o.percdamp = spec.percdamp;
  o.block = spec.block;
  o.act_order = spec.act_order;
  // The O(cols³) factor, shared by every linear and candidate on these inputs; taken only on
  // the paths that run the solver (GPTQ at 16 bits without SparseGPT is plain rounding). With
  // the factor given, obs_compress reads no Hessian.
  auto factor = [&] { return &calib->obs_factor(spec.act_order, spec.percdamp); };
  const std::vector<double> no_hessian;
  auto solve = [&](const std::vector<uint8_t>* given_mask) {
    o.kept = given_mask;
    o.factor = factor();
    ObsResult r = obs_compress(w, rows, cols, no_hessian, o);
    if (rep) rep->damp = r.damp, rep->dead_cols = r.dead_cols;
    return std::move(r.q);
  };
  if (spec.pruner == Pruner::SparseGpt && prune) {
    o.sparsity = spec.sparsity;
    if (spec.quantizer == Quantizer::Gptq || !fmt.quantized()) {
      // Joint pruning and quantization; at 16 bits SparseGPT's own fp16 rounding is the result.
      o.fmt = fmt;
      q = solve(nullptr);
    } else {  // SparseGPT's pruning + update, then RTN of what it kept
      o.fmt = WeightFormat{};
      o.fmt.bits = 16;
      o.fmt.group = 0;
      const QuantizedMatrix pruned = solve(nullptr);
      const std::vector<float> w_pruned = pruned.dequantize();
      q = quantize_rtn(w_pruned.data(), rows, cols, fmt, &pruned.kept);
    }
  } else if (spec.quantizer == Quantizer::Gptq && fmt.quantized()) {
    o.fmt = fmt;
    q = solve(kept.empty() ? nullptr : &kept);
  } else {
    q = quantize_rtn(w, rows, cols, fmt, kept.empty() ? nullptr : &kept);
  }
  q.fmt = fmt;
  return q;
}

CompressedLinear compress_linear(const float* w, int64_t rows, int64_t cols,
                                 const CompressSpec& spec, const CalibStats* calib) {
  CompressedLinear out;
  out.q = compress_codes(w, rows, cols, spec, calib, &out.report);
  out.packed = pack(out.q);

  CompressReport& rep = out.report;
  rep.stored = out.packed.fmt;
  rep.nnz = out.q.nnz();
  rep.bytes = out.packed.bytes();
  rep.bits_per_weight = rep.bytes.bits_per_weight(rows, cols);
  const std::vector<float> w_hat = out.q.dequantize();
  double se = 0;
  for (size_t i = 0; i < w_hat.size(); ++i)
    se += (double(w[i]) - w_hat[i]) * (double(w[i]) - w_hat[i]);
  rep.weight_mse = se / double(rows * cols);
  rep.output_mse = calib && calib->has_hessian()
                       ? output_mse(w, w_hat.data(), rows, cols, calib->hessian())
                       : std::numeric_limits<double>::quiet_NaN();
  return out;
}

}  // namespace edgellm
