#include "kernels/gemm_bf16.h"

#include <immintrin.h>

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

void f32_to_bf16_n(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), reinterpret_cast<__m256i&>(h));
  }
#endif
  for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

namespace {

using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool>;  // M, N, K, trans_w, accumulate

struct Bf16Gemm {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  std::map<Key, std::pair<dnnl::matmul, size_t>> cache;  // primitive + its scratchpad bytes;
                                                         // creation JITs code: once per shape
  std::vector<uint16_t> a16;                             // activation operand rounded to bf16
  // One scratchpad shared by every primitive (they run one at a time). With oneDNN's default
  // per-primitive scratchpads each cached shape kept its own reordered copy of its operand,
  // ~200 MB of RSS for the 134M training step.
  std::vector<uint8_t> scratch;
  std::mutex mu;

  std::pair<dnnl::matmul, size_t>& get(const Key& k) {
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    const auto [M, N, K, trans_w, acc] = k;
    using md = dnnl::memory::desc;
    using dt = dnnl::memory::data_type;
    md a({M, K}, dt::bf16, dnnl::memory::dims{K, 1});
    // Weights operand is [K, N]: Wᵀ of a row-major [N, K] matrix (strides {1, K}) or a row-major
    // [K, N] matrix itself (strides {N, 1}).
    md b({K, N}, dt::bf16, trans_w ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1});
    md c({M, N}, dt::f32, dnnl::memory::dims{N, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (acc) {
      dnnl::post_ops po;
      po.append_sum(1.f);
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, eng);
    return cache.emplace(k, std::make_pair(dnnl::matmul(pd), pd.scratchpad_desc().get_size()))
        .first->second;
  }
};

Bf16Gemm& state() {
  static Bf16Gemm s;
  return s;
}

}  // namespace

void gemm_bf16(const float* a, const uint16_t* w, float* c, int64_t M, int64_t N, int64_t K,
               bool trans_w, bool accumulate) {
  if (M == 0 || N == 0) return;
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  try {
    auto& [prim, scratch_bytes] = s.get({M, N, K, trans_w, accumulate});
    if (s.scratch.size() < scratch_bytes) s.scratch.resize(scratch_bytes);
    s.a16.resize(static_cast<size_t>(M * K));
    f32_to_bf16_n(a, s.a16.data(), M * K);
    using dt = dnnl::memory::data_type;
    dnnl::memory am({{M, K}, dt::bf16, dnnl::memory::dims{K, 1}}, s.eng, s.a16.data());
    dnnl::memory bm(
        {{K, N}, dt::bf16, trans_w ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1}}, s.eng,
        const_cast<uint16_t*>(w));
    dnnl::memory cm({{M, N}, dt::f32, dnnl::memory::dims{N, 1}}, s.eng, c);
    dnnl::memory sm({{static_cast<int64_t>(s.scratch.size())},
                     dnnl::memory::data_type::u8,
                     dnnl::memory::dims{1}},
                    s.eng, s.scratch.data());
    prim.execute(s.stream, {{DNNL_ARG_SRC, am},
                            {DNNL_ARG_WEIGHTS, bm},
                            {DNNL_ARG_DST, cm},
                            {DNNL_ARG_SCRATCHPAD, sm}});
    s.stream.wait();
  } catch (const dnnl::error& e) {
    fail("[gemm_bf16] oneDNN matmul failed for M={} N={} K={}: {}", M, N, K, e.what());
  }
}

}  // namespace edgellm
