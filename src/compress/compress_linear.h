// Compress one linear layer: the entry point the `profile` and `compress` commands call once per
// linear, with that linear's calibration statistics (from the layer taps) and a spec.
//
//   quantizer rtn | gptq          (bits 16: no quantization, values kept in fp16)
//   pruner    none | magnitude | wanda | sparsegpt,  unstructured p or N:M
// Combinations:
//   sparsegpt + gptq   one SparseGPT pass that prunes and quantizes jointly (mask, then each
//                      column quantized with error feedback), as SparseGPT does;
//   sparsegpt + rtn    SparseGPT pruning (with its weight update), then RTN of the kept weights;
//   magnitude|wanda + gptq   the mask first, then GPTQ with that mask held fixed;
//   magnitude|wanda + rtn    the mask, then RTN.
// The result is packed (sparse only where smaller) and reports its exact bytes and errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/calib_stats.h"
#include "compress/prune.h"
#include "packed/packed_weight.h"

namespace edgellm {

enum class Quantizer : uint8_t { Rtn, Gptq };
enum class Pruner : uint8_t { None, Magnitude, Wanda, SparseGpt };
const char* quantizer_name(Quantizer q);
const char* pruner_name(Pruner p);
Quantizer quantizer_from_name(const std::string& s, const std::string& what);
Pruner pruner_from_name(const std::string& s, const std::string& what);

struct CompressSpec {
  int bits = 4;   // 2..8; 16 = no quantization
  int group = 0;  // 0 = per output channel; else 32/64/128... along the input
  QuantScheme scheme = QuantScheme::Sym;
  Quantizer quantizer = Quantizer::Rtn;
  Pruner pruner = Pruner::None;
  SparsitySpec sparsity;   // p, or N:M (n > 0)
  bool act_order = false;  // GPTQ only
  double percdamp = 0.01;
  int block = 128;
  bool sparse_storage = true;  // false: always store dense (zeros as codes)

  // The format compress_linear stores with (sparse = what the packer may use).
  WeightFormat format() const;
  void validate(const std::string& what) const;
  bool needs_hessian() const { return quantizer == Quantizer::Gptq || pruner == Pruner::SparseGpt; }
};

struct CompressReport {
  WeightFormat stored;  // the layout pack() chose
  int64_t nnz = 0;      // kept weights
  PackedBytes bytes;
  double bits_per_weight = 0;  // every stored byte: codes, scales, zeros, index
  double weight_mse = 0;       // mean (W − Ŵ)²
  // ‖X(W − Ŵ)ᵀ‖² / n = ½·tr(ΔHΔᵀ) with Δ = W − Ŵ: the mean squared output error per calibration
  // row, summed over outputs (NaN without a Hessian).
  double output_mse = 0;
  double damp = 0;  // GPTQ/SparseGPT dampening used
  int64_t dead_cols = 0;
};

struct CompressedLinear {
  QuantizedMatrix q;    // unpacked codes (q.dequantize() = Ŵ, e.g. for fake-quant sensitivity)
  PackedWeight packed;  // what is stored and what the kernels read
  CompressReport report;
};

// W[rows, cols] row-major (rows = outputs). calib may be null only for rtn + none/magnitude;
// wanda needs column norms, gptq/sparsegpt the Hessian. report.output_mse is NaN without a
// Hessian.
CompressedLinear compress_linear(const float* w, int64_t rows, int64_t cols,
                                 const CompressSpec& spec, const CalibStats* calib);

// compress_linear's codes alone (q.dequantize() = Ŵ), neither packed nor measured; the solver's
// damp and dead columns go to *rep when given. What the profile's candidates need: their Ŵ
// enters a layer forward and is dropped.
QuantizedMatrix compress_codes(const float* w, int64_t rows, int64_t cols, const CompressSpec& spec,
                               const CalibStats* calib, CompressReport* rep = nullptr);

// ‖X(W − Ŵ)ᵀ‖²/n = ½·Σ_r δ_rᵀ H δ_r for δ = W − Ŵ (both row-major [rows, cols]).
double output_mse(const float* w, const float* w_hat, int64_t rows, int64_t cols,
                  const std::vector<double>& H);

}  // namespace edgellm
