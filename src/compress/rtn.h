// Round-to-nearest quantization onto the grids of weight_format.h.
//   sym  (LLM-QAT, per output channel by default): s = max|w| / (2^(b−1)−1), c = round(w/s) +
//   2^(b−1)−1 asym (GPTQ's min-max grid, per group):         s = (max(w,0) − min(w,0)) / (2^b−1),
//                                                  z = round(−min(w,0)/s), c = round(w/s) + z
// s is rounded UP to the next fp16 value, so the grid covers every value of its group and
// |w − ŵ| <= s/2 for each value (no clamping ever bites).
#pragma once

#include <cstdint>
#include <vector>

#include "packed/packed_weight.h"
#include "packed/weight_format.h"

namespace edgellm {

struct QuantGrid {
  float scale = 0;   // fp16-exact; 0 for an all-zero group (every code decodes to 0)
  uint8_t zero = 0;  // asym zero point
};

// Grid of the n values v[0], v[stride], ... (f.bits < 16).
QuantGrid fit_grid(const WeightFormat& f, const float* v, int64_t n, int64_t stride = 1);
// Nearest code of v on grid g (bits 16: the fp16 bit pattern of v).
uint16_t quantize_value(const WeightFormat& f, const QuantGrid& g, float v);
// ŵ of a code: s·(c − offset), computed exactly as every decoder computes it.
float dequantize_code(const WeightFormat& f, const QuantGrid& g, uint16_t code);

// RTN of W[rows, cols] in format f (f.sparse is the storage the packer may use). kept
// ([rows, cols], optional) marks pruned weights: they get the zero code and do not widen grids.
QuantizedMatrix quantize_rtn(const float* w, int64_t rows, int64_t cols, const WeightFormat& f,
                             const std::vector<uint8_t>* kept = nullptr);

// Rounds x >= 0 up to the nearest fp16 value; throws if it overflows fp16.
float f16_round_up(float x);

}  // namespace edgellm
