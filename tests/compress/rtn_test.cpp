// RTN quantizers: grids as specified (LLM-QAT sym per channel, min-max asym per group with a
// partial last group) and the |w − ŵ| <= s/2 bound for every format.
#include "compress/rtn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"
#include "util/rng.h"

namespace edgellm {
namespace {

// Next fp16 below a positive fp16 value (bit patterns of positive fp16 are ordered).
float f16_prev(float x) { return f16_to_f32(static_cast<uint16_t>(f32_to_f16(x) - 1)); }

TEST(Rtn, ErrorWithinHalfAStepForEveryFormat) {
  Rng rng(5);
  const int64_t rows = 7, cols = 301;  // 301 = 2·128 + 45: a partial last group
  std::vector<float> w(rows * cols);
  for (float& v : w) v = float(rng.normal() * (rng.uniform() < 0.05 ? 8 : 1));
  for (int bits = 2; bits <= 8; ++bits)
    for (int group : {0, 32, 64, 128})
      for (QuantScheme sch : {QuantScheme::Sym, QuantScheme::Asym}) {
        WeightFormat f;
        f.bits = bits;
        f.group = group;
        f.scheme = sch;
        const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, f);
        const int64_t gc = group ? group : cols, ng = (cols + gc - 1) / gc;
        ASSERT_EQ(q.n_groups(), ng);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t g = 0; g < ng; ++g) {
            const int64_t c0 = g * gc, c1 = std::min(cols, c0 + gc);
            float amax = 0, lo = 0, hi = 0;
            for (int64_t c = c0; c < c1; ++c) {
              amax = std::max(amax, std::abs(w[r * cols + c]));
              lo = std::min(lo, w[r * cols + c]);
              hi = std::max(hi, w[r * cols + c]);
            }
            const float s = q.scales[r * ng + g];
            // The scale is the smallest fp16 at or above the formula's value.
            const float want = sch == QuantScheme::Sym ? amax / float((1 << (bits - 1)) - 1)
                                                       : (hi - lo) / float((1 << bits) - 1);
            EXPECT_GE(s, want);
            EXPECT_LT(f16_prev(s), want);
            for (int64_t c = c0; c < c1; ++c) {
              const float e = std::abs(w[r * cols + c] - q.value(r, c));
              ASSERT_LE(e, 0.5f * s * (1 + 1e-6f)) << f.name() << " r" << r << " c" << c;
              if (sch == QuantScheme::Sym) {
                ASSERT_LE(q.codes[r * cols + c], (1 << bits) - 2);
              }
            }
          }
      }
}

TEST(Rtn, SymmetricLevelsAreLlmQat) {
  // One row [-1, -0.5, 0, 0.25, 1] at 3 bits: levels ±3, s = 1/3 rounded up to fp16.
  const float w[5] = {-1.f, -0.5f, 0.f, 0.25f, 1.f};
  WeightFormat f;
  f.bits = 3;
  const QuantizedMatrix q = quantize_rtn(w, 1, 5, f);
  const float s = q.scales[0];
  EXPECT_GT(s, 1.f / 3);
  EXPECT_NEAR(s, 1.0 / 3, 1e-3);
  // codes = round(w/s) + 3; s is rounded up past 1/3, so −0.5/s = −1.4998 rounds to −1.
  EXPECT_EQ(q.codes, (std::vector<uint16_t>{0, 2, 3, 4, 6}));
  EXPECT_EQ(q.value(0, 2), 0.f);
  EXPECT_FLOAT_EQ(q.value(0, 4), 3 * s);
}

TEST(Rtn, PrunedWeightsGetTheZeroCodeAndDoNotWidenTheGrid) {
  const float w[4] = {10.f, 0.5f, -0.25f, 0.125f};
  const std::vector<uint8_t> kept{0, 1, 1, 1};
  WeightFormat f;
  f.bits = 4;
  for (QuantScheme sch : {QuantScheme::Sym, QuantScheme::Asym}) {
    f.scheme = sch;
    const QuantizedMatrix q = quantize_rtn(w, 1, 4, f, &kept);
    EXPECT_EQ(q.value(0, 0), 0.f);
    EXPECT_LT(q.scales[0], 0.2f);  // fitted to 0.5, not to 10
  }
}

}  // namespace
}  // namespace edgellm
