#include "packed/packed_kernels.h"

#include <algorithm>
#include <bit>

#include "packed/bits.h"
#include "simd/simd.h"

namespace edgellm {

namespace {

// Columns (or kept weights) unpacked per step: a tile of codes that stays in registers/L1.
constexpr int64_t kColTile = 64;

// The dispatched kernels a row needs, fetched once per GEMV (simd.h: a per-call dispatch costs
// ~5% of a decode GEMV at ~10^5 rows per token).
struct Kernels {
  simd::PackedDotQFn dot_q = simd::packed_dot_q_kernel();
  simd::DotCodesFn dot_codes = simd::dot_codes_kernel();
  simd::DotRowFn dot_f16 = simd::dot_row_kernel(simd::DotKind::F16);
};

// Dense quantized rows whose groups start on byte boundaries go to the whole-row SIMD kernel,
// which unpacks the bits itself; that covers every group size a policy writes (0, 32, 64, 128).
bool whole_row_simd(const WeightFormat& f, int64_t cols) {
  if (f.sparse != SparseFormat::None || !f.quantized()) return false;
  const int64_t gc = f.group_cols(cols);
  return gc >= cols || (gc * f.bits) % 8 == 0;
}

simd::PackedRowQ row_q(const PackedView& w, int64_t r) {
  const int64_t ng = w.fmt.n_groups(w.cols);
  const auto crb = static_cast<int64_t>(code_row_bytes(w.fmt, w.cols));
  simd::PackedRowQ q;
  q.codes = w.codes + r * crb;
  q.readable = (w.rows - r) * crb;  // this row and the ones after it
  q.scales = w.scales + r * ng;
  q.zeros = w.fmt.scheme == QuantScheme::Asym ? w.zeros + r * ng : nullptr;
  q.cols = w.cols;
  q.group = w.fmt.group_cols(w.cols);
  q.bits = w.fmt.bits;
  q.sym_off = (1 << (w.fmt.bits - 1)) - 1;
  return q;
}

// The n (<= 64) mask bits of columns c0 .. c0+n−1 of a bitmask row, bit i = column c0 + i.
uint64_t mask_bits(const uint8_t* mask, int64_t c0, int64_t n) {
  const uint8_t* q = mask + c0 / 8;
  const int sh = static_cast<int>(c0 % 8);
  const int nbytes = static_cast<int>((sh + n + 7) / 8);  // <= 9
  uint64_t m = 0;
  for (int i = 0; i < nbytes; ++i) {
    const int s = 8 * i - sh;  // < 64: a 9th byte only exists when sh > 0
    m |= s >= 0 ? uint64_t(q[i]) << s : uint64_t(q[i]) >> -s;
  }
  return n == 64 ? m : m & ((uint64_t(1) << n) - 1);
}

// Calls f(c0, n, code, off, scale) for consecutive column tiles of row r, each inside one
// quantization group: code[0..n) are the codes of columns c0..c0+n−1, pruned columns holding
// the code of 0 (off for quantized rows, the fp16 pattern 0 otherwise), so every sparse layout
// becomes a dense tile that one SIMD kernel multiplies. For quantized rows a value is
// scale·(code − off); for bits 16 the code is the fp16 value (off 0, scale 1).
template <typename F>
void code_tiles(const PackedView& w, int64_t r, F&& f) {
  const WeightFormat& fmt = w.fmt;
  const int b = fmt.bits;
  const bool q = fmt.quantized();
  const int64_t ng = fmt.n_groups(w.cols), gc = fmt.group_cols(w.cols);
  const int sym_off = q ? (1 << (b - 1)) - 1 : 0;
  uint16_t code[kColTile];
  // Scales of groups sc0 .. sc0 + kScaleBlock − 1 as fp32 (one conversion call per block, not a
  // software fp16 conversion per tile: no F16C in the portable baseline).
  constexpr int64_t kScaleBlock = 64;
  float sc[kScaleBlock];
  int64_t sc0 = -kScaleBlock;
  // Bitmask: the kept codes of a tile; N:M: its slots' codes and positions.
  uint16_t kept[2 * kColTile], pos[2 * kColTile];
  const uint8_t* mask = nullptr;
  uint64_t bit = 0;
  const uint8_t *rc = nullptr, *ri = nullptr;
  if (fmt.sparse == SparseFormat::Bitmask) {
    mask = w.index + r * index_row_bytes(fmt, w.cols);
    bit = w.row_bit[r];
  } else {
    rc = w.codes + r * code_row_bytes(fmt, w.cols);
    if (fmt.sparse == SparseFormat::NM) ri = w.index + r * index_row_bytes(fmt, w.cols);
  }
  for (int64_t c0 = 0; c0 < w.cols;) {
    const int64_t g = q ? c0 / gc : 0;
    const int64_t gend = q ? std::min(w.cols, (g + 1) * gc) : w.cols;
    const int64_t n = std::min(kColTile, gend - c0);
    const int off = !q ? 0 : fmt.scheme == QuantScheme::Sym ? sym_off : w.zeros[r * ng + g];
    if (fmt.sparse == SparseFormat::None) {
      bits::unpack(rc, uint64_t(c0) * b, b, n, code);
    } else {
      std::fill(code, code + n, static_cast<uint16_t>(off));
      if (fmt.sparse == SparseFormat::Bitmask) {
        uint64_t m = mask_bits(mask, c0, n);
        const int nk = std::popcount(m);
        bits::unpack(w.codes, bit, b, nk, kept);
        bit += uint64_t(nk) * b;
        for (int k = 0; m; m &= m - 1) code[std::countr_zero(m)] = kept[k++];
      } else {
        // The M-groups overlapping the tile (one may straddle a quantization group boundary:
        // only its slots inside [c0, c0 + n) are taken).
        const int N = fmt.nm_n, M = fmt.nm_m, ib = fmt.index_bits();
        const int64_t mg0 = c0 / M, mg1 = (c0 + n - 1) / M + 1;  // <= 64/M + 2 groups
        const int64_t ns = (mg1 - mg0) * N;                      // < 64 + 2M <= 96 slots
        bits::unpack(rc, uint64_t(mg0 * N) * b, b, ns, kept);
        bits::unpack(ri, uint64_t(mg0 * N) * ib, ib, ns, pos);
        for (int64_t mg = mg0, i = 0; mg < mg1; ++mg) {
          const int64_t len = std::min<int64_t>(M, w.cols - mg * M);
          for (int s = 0; s < N; ++s, ++i) {
            const int64_t c = mg * M + pos[i] - c0;
            // Slots past a short last group are padding (position 0, code of 0).
            if (s < len && c >= 0 && c < n) code[c] = kept[i];
          }
        }
      }
    }
    if (q && g >= sc0 + kScaleBlock) {  // the next block of the row's scales, as fp32
      sc0 = g;
      simd::f16_to_f32_n(w.scales + r * ng + g, sc, std::min(kScaleBlock, ng - g));
    }
    f(c0, n, code, off, q ? sc[g - sc0] : 1.f);
    c0 += n;
  }
}

float dot_row(const PackedView& w, int64_t r, const float* x, const Kernels& k) {
  if (whole_row_simd(w.fmt, w.cols)) return k.dot_q(row_q(w, r), x);
  if (w.fmt.sparse == SparseFormat::None && !w.fmt.quantized())  // fp16 codes, dense
    return k.dot_f16(w.codes + r * code_row_bytes(w.fmt, w.cols), x, w.cols);
  float acc = 0;
  const bool q = w.fmt.quantized();
  code_tiles(w, r, [&](int64_t c0, int64_t n, const uint16_t* code, int off, float scale) {
    acc += q ? scale * k.dot_codes(code, off, x + c0, n) : k.dot_f16(code, x + c0, n);
  });
  return acc;
}

}  // namespace

void packed_decode_row(const PackedView& w, int64_t r, float* dst) {
  if (whole_row_simd(w.fmt, w.cols)) {
    simd::packed_decode_q(row_q(w, r), dst);
    return;
  }
  const simd::DecodeCodesFn decode = simd::decode_codes_kernel();
  const bool q = w.fmt.quantized();
  code_tiles(w, r, [&](int64_t c0, int64_t n, const uint16_t* code, int off, float scale) {
    if (q)
      decode(code, off, scale, dst + c0, n);
    else
      simd::f16_to_f32_n(code, dst + c0, n);
  });
}

float packed_dot_row(const PackedView& w, int64_t r, const float* x) {
  return dot_row(w, r, x, Kernels{});
}

void packed_gemv(const PackedView& w, const float* x, float* y, bool accumulate, int64_t r0,
                 int64_t r1) {
  const Kernels k;
  for (int64_t r = r0; r < r1; ++r) {
    const float v = dot_row(w, r, x, k);
    y[r] = accumulate ? y[r] + v : v;
  }
}

PackedQxKernels packed_gemv_qx_kernels(const PackedView& w) {
  const WeightFormat& f = w.fmt;
  const int64_t gc = f.group_cols(w.cols);
  if (!f.quantized() || w.cols % 32 != 0 || (gc < w.cols && gc % 32 != 0)) return {};
  if (f.sparse == SparseFormat::None) return {simd::packed_qdot_kernel(), nullptr};
  if (f.sparse == SparseFormat::Bitmask) return {nullptr, simd::packed_mask_qdot_kernel()};
  return {};
}

void packed_gemv_qx(const PackedView& w, const PackedQxKernels& k, const simd::QuantX& x, float* y,
                    bool accumulate, int64_t r0, int64_t r1) {
  const size_t mask_bytes = index_row_bytes(w.fmt, w.cols);
  const uint8_t* codes_end =
      w.fmt.sparse == SparseFormat::Bitmask ? w.codes + (w.row_bit[w.rows] + 7) / 8 : nullptr;
  for (int64_t r = r0; r < r1; ++r) {
    float v;
    if (k.dense) {
      v = k.dense(row_q(w, r), x);
    } else {
      simd::PackedRowMaskQ m;
      m.row = row_q(w, r);
      m.codes = w.codes;
      m.codes_end = codes_end;
      m.bit = w.row_bit[r];
      m.mask = w.index + r * mask_bytes;
      v = k.mask(m, x);
    }
    y[r] = accumulate ? y[r] + v : v;
  }
}

}  // namespace edgellm
