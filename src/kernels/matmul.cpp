#include "kernels/matmul.h"

#include <dnnl.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/packed_matmul.h"
#include "kernels/threads.h"
#include "simd/simd.h"
#include "util/error.h"

namespace edgellm {

WeightView WeightView::f32(const float* w, int64_t rows, int64_t cols) {
  WeightView v;
  v.dtype = DType::F32;
  v.data = reinterpret_cast<const uint8_t*>(w);
  v.rows = rows;
  v.cols = cols;
  v.row_bytes = static_cast<size_t>(cols) * sizeof(float);
  return v;
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                ldb, beta, C, ldc);
  if (st != dnnl_success)
    fail("[sgemm] oneDNN failed (status {}) for M={} N={} K={}", int(st), M, N, K);
}

namespace {
std::atomic<int> g_math{static_cast<int>(MatmulMath::Fp32)};
}  // namespace

MatmulMath f32_matmul_math() { return static_cast<MatmulMath>(g_math.load()); }
void set_f32_matmul_math(MatmulMath m) { g_math.store(static_cast<int>(m)); }

MatmulMath matmul_math_from_name(const std::string& name) {
  if (name == "fp32") return MatmulMath::Fp32;
  if (name == "bf16") return MatmulMath::Bf16;
  fail("[train] --precision '{}' unknown (fp32, bf16)", name);
}

const char* matmul_math_name(MatmulMath m) { return m == MatmulMath::Bf16 ? "bf16" : "fp32"; }

bool bf16_math_on(const WeightView& w) {
  return f32_matmul_math() == MatmulMath::Bf16 && w.dtype == DType::F32 &&
         w.row_bytes == static_cast<size_t>(w.cols) * sizeof(float);
}

namespace {

// Below this many weights a GEMV is done by one thread: waking the pool costs more than it saves.
constexpr int64_t kParallelMinWeights = 1 << 16;

void gemv(const float* x, const WeightView& w, float* y, bool accumulate) {
  const int64_t N = w.rows, K = w.cols;
  const bool par = N * K >= kParallelMinWeights;
  if (w.dtype == DType::F32) {
    const simd::Dot4Fn dot4 = simd::dot4_f32_kernel();  // dispatch hoisted out of the row loop
    const simd::DotF32Fn dot1 = simd::dot_f32_kernel();
    parallel_ranges_if(par, (N + 3) / 4, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t r = b * 4;
        float out[4];
        if (r + 4 <= N) {
          dot4(reinterpret_cast<const float*>(w.row(r)),
               reinterpret_cast<const float*>(w.row(r + 1)),
               reinterpret_cast<const float*>(w.row(r + 2)),
               reinterpret_cast<const float*>(w.row(r + 3)), x, K, out);
        } else {
          for (int64_t j = 0; j < N - r; ++j)
            out[j] = dot1(reinterpret_cast<const float*>(w.row(r + j)), x, K);
        }
        for (int64_t j = 0; j < std::min<int64_t>(4, N - r); ++j)
          y[r + j] = accumulate ? y[r + j] + out[j] : out[j];
      }
    });
    return;
  }
  const DotRowFn dot = dot_row_kernel(w.dtype);
  if (dot) {
    const int64_t bs = dtype_block_size(w.dtype);
    EDGELLM_CHECK(K % bs == 0, "gemv {}: K={} not a multiple of {}", dtype_name(w.dtype), K, bs);
  }
  // x quantized once, every row an integer dot (tensor/dtype.h QuantizedActivations), unless x
  // holds a NaN/Inf. The buffers live per thread: GEMVs run one after another on the caller.
  thread_local QuantizedActivations qx;
  const simd::QdotFn qdot = dot_qx_kernel(w.dtype);
  if (qdot && qx.quantize(x, K)) {
    const simd::QuantX xv = qx.view();
    parallel_ranges_if(par, N, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float v = qdot(w.row(r), xv, K);
        y[r] = accumulate ? y[r] + v : v;
      }
    });
    return;
  }
  parallel_ranges_if(par, N, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float v = dot ? dot(w.row(r), x, K) : dot_row(w.dtype, w.row(r), x, K);
      y[r] = accumulate ? y[r] + v : v;
    }
  });
}

// Rows decoded per tile for the T > 1 path of non-F32 weights (a multiple of every GEMM
// micro-kernel width). 256 rows gave a 13% faster TinyLlama Q4_0 prefill than 64 (pp128, 1
// thread, A/B): the sgemm is ~2/3 of that prefill and runs better on wider N; 256 × K fp32 is
// 2-5.6 MiB of scratch for K = 2048-5632.
constexpr int64_t kTileRows = 256;

}  // namespace

GemmWorkspace matmul_workspace(const WeightView& w, int64_t T) {
  GemmWorkspace ws;
  if (w.dtype == DType::Packed) {
    if (T > 1) {
      ws = gemm_bf16_decoded_workspace(T, w.rows, w.cols);  // the forward, on the Dnnl path
      ws.transient = std::max(ws.transient, packed_matmul_tile_bytes(w.packed, T));
    }
    return ws;
  }
  if (T > 1 && bf16_math_on(w)) return sgemm_bf16_workspace(false, true, T, w.rows, w.cols, false);
  if (T == 1 || w.dtype == DType::F32) return ws;  // GEMV / sgemm on the stored rows
  if (w.dtype == DType::BF16) return gemm_bf16_workspace(T, w.rows, w.cols, true, false);
  ws = gemm_bf16_decoded_workspace(T, w.rows, w.cols);  // decoded tiles, on the Dnnl path
  if (bf16_gemm_path() == Bf16GemmPath::Fp32)
    ws.transient = static_cast<size_t>(kTileRows * w.cols) * sizeof(float);  // the tile below
  return ws;
}

void matmul(const float* x, const WeightView& w, float* y, int64_t T, bool accumulate) {
  if (w.dtype == DType::Packed) {
    packed_matmul(x, w.packed, y, T, accumulate);
    return;
  }
  EDGELLM_CHECK(w.data != nullptr && w.rows > 0 && w.cols > 0, "empty weight {}x{}", w.rows,
                w.cols);
  if (T == 1) {
    gemv(x, w, y, accumulate);
    return;
  }
  const int64_t N = w.rows, K = w.cols;
  const float beta = accumulate ? 1.f : 0.f;
  if (bf16_math_on(w)) {
    sgemm_bf16(false, true, T, N, K, x, reinterpret_cast<const float*>(w.data), y, accumulate);
    return;
  }
  if (w.dtype == DType::F32) {
    sgemm(false, true, T, N, K, 1.f, x, K, reinterpret_cast<const float*>(w.data),
          static_cast<int64_t>(w.row_bytes / sizeof(float)), beta, y, N);
    return;
  }
  if (w.dtype == DType::BF16) {  // bf16 × bf16 → fp32 on the stored weights, no decode
    gemm_bf16(x, reinterpret_cast<const uint16_t*>(w.data), y, T, N, K, /*trans_w=*/true,
              accumulate);
    return;
  }
  auto decode = [&](int64_t r0, int64_t nr, float* tile) {
#pragma omp parallel for schedule(static) if (nr * K >= kParallelMinWeights)
    for (int64_t r = 0; r < nr; ++r) decode_row(w.dtype, w.row(r0 + r), tile + r * K, K);
  };
  gemm_decoded(x, T, N, K, decode, y, accumulate, kTileRows);
}

}  // namespace edgellm
