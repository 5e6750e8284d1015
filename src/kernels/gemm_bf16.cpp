#include "kernels/gemm_bf16.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "kernels/matmul.h"
#include "simd/simd.h"
#include "simd/target.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

// On every thread: sgemm_bf16 rounds a whole weight matrix per call (the 32000 × 768 head: 24.6 M
// values, eight times per 134M training step), which on one thread left the other idle for ~3 %
// of the step.
void f32_to_bf16_n(const float* x, uint16_t* y, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t nc = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (nc > 1)
  for (int64_t c = 0; c < nc; ++c)
    simd::f32_to_bf16_n(x + c * kChunk, y + c * kChunk, std::min(kChunk, n - c * kChunk));
}

namespace {

// M, N, K, trans_a, trans_b, accumulate: C[M, N] (+)= op(A)[M, K] · op(B)[K, N], every operand
// at its natural leading dimension (op(A) = Aᵀ of a row-major [K, M] when trans_a, op(B) = Bᵀ of
// a row-major [N, K] when trans_b).
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, bool>;

// Shapes whose primitive stays cached. Each primitive holds JIT-compiled code (tens to hundreds
// of KB); the row count M is the token count of the call, so evaluating or generating over many
// different sequence lengths would otherwise grow memory without bound. A training run uses a
// handful of shapes; 64 covers them with room to spare, and a miss costs one JIT (~1 ms).
constexpr size_t kMaxCachedShapes = 64;

dnnl::memory::dims a_strides(int64_t M, int64_t K, bool trans);
dnnl::memory::dims b_strides(int64_t K, int64_t N, bool trans);

struct Bf16Gemm {
  struct Entry {
    dnnl::matmul prim;
    size_t scratch_bytes;
    uint64_t last_use;
  };
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  std::map<Key, Entry> cache;  // creation JITs code: once per shape while it stays cached
  uint64_t tick = 0;
  std::vector<uint16_t> a16;  // activation operand rounded to bf16
  std::vector<uint16_t> b16;  // sgemm_bf16's second operand rounded to bf16
  // gemm_decoded's tile (fp32 and bf16) and the tile's output block, held between calls. One
  // buffer carved in three (decoded_parts), so it is reserved and counted as one.
  std::vector<uint8_t> dec;
  // One scratchpad shared by every primitive (they run one at a time). With oneDNN's default
  // per-primitive scratchpads each cached shape kept its own reordered copy of its operand,
  // ~200 MB of RSS for the 134M training step.
  std::vector<uint8_t> scratch;
  std::mutex mu;

  // oneDNN keeps its own process-wide cache of primitives (1024 by default) behind ours; with
  // only this code creating primitives, it need not hold more than ours does.
  Bf16Gemm() { dnnl::set_primitive_cache_capacity(static_cast<int>(kMaxCachedShapes)); }

  // Scratchpad sizes of shapes planned but maybe never run (gemm_bf16_workspace): a descriptor
  // costs far less than a primitive, but planning tries many configurations of the same shapes.
  std::map<Key, size_t> scratch_sizes;

  Entry& get(const Key& k) {
    auto it = cache.find(k);
    if (it != cache.end()) {
      it->second.last_use = ++tick;
      return it->second;
    }
    if (cache.size() >= kMaxCachedShapes) {  // evict the least recently used shape
      auto lru = cache.begin();
      for (auto e = cache.begin(); e != cache.end(); ++e)
        if (e->second.last_use < lru->second.last_use) lru = e;
      cache.erase(lru);
    }
    dnnl::matmul::primitive_desc pd = desc(k);
    return cache.emplace(k, Entry{dnnl::matmul(pd), pd.scratchpad_desc().get_size(), ++tick})
        .first->second;
  }

  size_t scratch_size(const Key& k) {
    if (auto it = cache.find(k); it != cache.end()) return it->second.scratch_bytes;
    if (auto it = scratch_sizes.find(k); it != scratch_sizes.end()) return it->second;
    if (scratch_sizes.size() >= 4 * kMaxCachedShapes) scratch_sizes.clear();  // bounded
    const size_t n = desc(k).scratchpad_desc().get_size();
    scratch_sizes.emplace(k, n);
    return n;
  }

  // The one primitive descriptor of a shape: what runs and what is planned cannot differ.
  dnnl::matmul::primitive_desc desc(const Key& k) {
    const auto [M, N, K, trans_a, trans_b, acc] = k;
    using md = dnnl::memory::desc;
    using dt = dnnl::memory::data_type;
    md a({M, K}, dt::bf16, a_strides(M, K, trans_a));
    // The weights operand is [K, N]: Wᵀ of a row-major [N, K] matrix (strides {1, K}) or a
    // row-major [K, N] matrix itself (strides {N, 1}).
    md b({K, N}, dt::bf16, b_strides(K, N, trans_b));
    md c({M, N}, dt::f32, dnnl::memory::dims{N, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (acc) {
      dnnl::post_ops po;
      po.append_sum(1.f);
      attr.set_post_ops(po);
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, eng);
  }
};

dnnl::memory::dims a_strides(int64_t M, int64_t K, bool trans) {
  return trans ? dnnl::memory::dims{1, M} : dnnl::memory::dims{K, 1};
}
dnnl::memory::dims b_strides(int64_t K, int64_t N, bool trans) {
  return trans ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1};
}

Bf16Gemm& state() {
  static Bf16Gemm s;
  return s;
}

// Runs the cached primitive of shape k on bf16 operands a and b into fp32 c (caller holds s.mu).
void dnnl_run(Bf16Gemm& s, const Key& k, const uint16_t* a, const uint16_t* b, float* c) {
  const auto [M, N, K, trans_a, trans_b, acc] = k;
  try {
    Bf16Gemm::Entry& e = s.get(k);
    if (s.scratch.size() < e.scratch_bytes) s.scratch.resize(e.scratch_bytes);
    using dt = dnnl::memory::data_type;
    dnnl::memory am({{M, K}, dt::bf16, a_strides(M, K, trans_a)}, s.eng, const_cast<uint16_t*>(a));
    dnnl::memory bm({{K, N}, dt::bf16, b_strides(K, N, trans_b)}, s.eng, const_cast<uint16_t*>(b));
    dnnl::memory cm({{M, N}, dt::f32, dnnl::memory::dims{N, 1}}, s.eng, c);
    dnnl::memory sm({{static_cast<int64_t>(s.scratch.size())}, dt::u8, dnnl::memory::dims{1}},
                    s.eng, s.scratch.data());
    e.prim.execute(s.stream, {{DNNL_ARG_SRC, am},
                              {DNNL_ARG_WEIGHTS, bm},
                              {DNNL_ARG_DST, cm},
                              {DNNL_ARG_SCRATCHPAD, sm}});
    s.stream.wait();
  } catch (const dnnl::error& e) {
    fail("[gemm_bf16] oneDNN matmul failed for M={} N={} K={}: {}", M, N, K, e.what());
  }
}

size_t dnnl_scratch_bytes(const Key& k) {
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  try {
    return s.scratch_size(k);
  } catch (const dnnl::error& e) {
    fail("[gemm_bf16] oneDNN matmul descriptor failed for M={} N={} K={}: {}", std::get<0>(k),
         std::get<1>(k), std::get<2>(k), e.what());
  }
}

Bf16GemmPath choose_path() {
  if (const char* e = std::getenv("EDGELLM_BF16_GEMM")) {
    if (std::strcmp(e, "fp32") == 0) return Bf16GemmPath::Fp32;
    if (std::strcmp(e, "dnnl") != 0 && *e)
      fail("[gemm_bf16] EDGELLM_BF16_GEMM='{}': expected 'fp32' or 'dnnl'", e);
  }
  if (!simd::cpu_has_bf16_dot()) return Bf16GemmPath::Fp32;
  const std::string t = simd::active_target();
  if (t.rfind("avx512", 0) != 0) return Bf16GemmPath::Fp32;  // forced below AVX-512
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16 ? Bf16GemmPath::Dnnl : Bf16GemmPath::Fp32;
}

std::atomic<int> g_path{-1};

// y = fp32(bf16(x)), through a small bf16 buffer.
void round_bf16(const float* x, float* y, int64_t n) {
  constexpr int64_t kChunk = 4096;
  uint16_t h[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    simd::f32_to_bf16_n(x + i, h, m);
    simd::bf16_to_f32_n(h, y + i, m);
  }
}

// Rows of W widened per sgemm call: 64 rows of K fp32 stay in L2 for K up to ~2k.
constexpr int64_t kWidenTileRows = 64;

void gemm_bf16_fp32(const float* a, const uint16_t* w, float* c, int64_t M, int64_t N, int64_t K,
                    bool trans_w, bool accumulate) {
  // bf16(a): the same operand the bf16 path multiplies.
  std::vector<float> ar(static_cast<size_t>(M * K));
  round_bf16(a, ar.data(), M * K);
  const float beta = accumulate ? 1.f : 0.f;
  if (trans_w) {  // W [N, K]: a tile of output columns at a time
    std::vector<float> tile(static_cast<size_t>(std::min(kWidenTileRows, N) * K));
    for (int64_t r0 = 0; r0 < N; r0 += kWidenTileRows) {
      const int64_t nr = std::min(kWidenTileRows, N - r0);
      simd::bf16_to_f32_n(w + r0 * K, tile.data(), nr * K);
      sgemm(false, true, M, nr, K, 1.f, ar.data(), K, tile.data(), K, beta, c + r0, N);
    }
    return;
  }
  // W [K, N]: a tile of the reduction dimension at a time, accumulating into c.
  std::vector<float> tile(static_cast<size_t>(std::min(kWidenTileRows, K) * N));
  for (int64_t k0 = 0; k0 < K; k0 += kWidenTileRows) {
    const int64_t kr = std::min(kWidenTileRows, K - k0);
    simd::bf16_to_f32_n(w + k0 * N, tile.data(), kr * N);
    sgemm(false, false, M, N, kr, 1.f, ar.data() + k0, K, tile.data(), N, k0 == 0 ? beta : 1.f, c,
          N);
  }
}

}  // namespace

Bf16GemmPath bf16_gemm_path() {
  int p = g_path.load(std::memory_order_acquire);
  if (p < 0) {
    p = static_cast<int>(choose_path());
    g_path.store(p, std::memory_order_release);
  }
  return static_cast<Bf16GemmPath>(p);
}

void set_bf16_gemm_path(Bf16GemmPath p) {
  g_path.store(static_cast<int>(p), std::memory_order_release);
}

size_t bf16_gemm_cached_shapes() {
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.cache.size();
}

size_t bf16_gemm_max_cached_shapes() { return kMaxCachedShapes; }

const char* bf16_gemm_path_name(Bf16GemmPath p) {
  return p == Bf16GemmPath::Dnnl ? "oneDNN bf16 matmul (AVX512_BF16)"
                                 : "fp32 sgemm on bf16-rounded operands";
}

std::string dnnl_isa_name() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41:
      return "sse41";
    case isa::avx:
      return "avx";
    case isa::avx2:
      return "avx2";
    case isa::avx512_core:
      return "avx512_core";
    case isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case isa::avx512_core_amx:
      return "avx512_core_amx";
    case isa::avx2_vnni:
      return "avx2_vnni";
    default:
      return fmt::format("0x{:x}", static_cast<unsigned>(dnnl::get_effective_cpu_isa()));
  }
}

void GemmWorkspace::merge(const GemmWorkspace& o) {
  operand = std::max(operand, o.operand);
  operand_b = std::max(operand_b, o.operand_b);
  scratchpad = std::max(scratchpad, o.scratchpad);
  transient = std::max(transient, o.transient);
  decoded = std::max(decoded, o.decoded);
}

GemmWorkspace gemm_bf16_workspace(int64_t M, int64_t N, int64_t K, bool trans_w, bool accumulate) {
  GemmWorkspace w;
  if (M == 0 || N == 0) return w;
  const size_t mk = static_cast<size_t>(M * K);
  if (bf16_gemm_path() == Bf16GemmPath::Fp32) {
    // gemm_bf16_fp32: the rounded activations, and one tile of widened weights.
    const int64_t tile =
        trans_w ? std::min(kWidenTileRows, N) * K : std::min(kWidenTileRows, K) * N;
    w.transient = mk * sizeof(float) + static_cast<size_t>(tile) * 4;
    return w;
  }
  w.operand = mk * sizeof(uint16_t);
  w.scratchpad = dnnl_scratch_bytes({M, N, K, false, trans_w, accumulate});
  return w;
}

GemmWorkspace sgemm_bf16_workspace(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                   bool accumulate) {
  GemmWorkspace w;
  if (M == 0 || N == 0) return w;
  const size_t mk = static_cast<size_t>(M * K), kn = static_cast<size_t>(K * N);
  if (bf16_gemm_path() == Bf16GemmPath::Fp32) {  // both operands rounded, in place of a copy
    w.transient = (mk + kn) * sizeof(float);
    return w;
  }
  w.operand = mk * sizeof(uint16_t);
  w.operand_b = kn * sizeof(uint16_t);
  w.scratchpad = dnnl_scratch_bytes({M, N, K, trans_a, trans_b, accumulate});
  return w;
}

void gemm_bf16_reserve(const GemmWorkspace& w) {
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.a16.reserve(w.operand / sizeof(uint16_t));
  s.b16.reserve(w.operand_b / sizeof(uint16_t));
  s.scratch.reserve(w.scratchpad);
  s.dec.reserve(w.decoded);
}

size_t gemm_bf16_held_bytes() {
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return (s.a16.capacity() + s.b16.capacity()) * sizeof(uint16_t) + s.scratch.capacity() +
         s.dec.capacity();
}

void gemm_bf16_release_held() {
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<uint16_t>().swap(s.a16);
  std::vector<uint16_t>().swap(s.b16);
  std::vector<uint8_t>().swap(s.scratch);
  std::vector<uint8_t>().swap(s.dec);
}

void gemm_bf16(const float* a, const uint16_t* w, float* c, int64_t M, int64_t N, int64_t K,
               bool trans_w, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (bf16_gemm_path() == Bf16GemmPath::Fp32) {
    gemm_bf16_fp32(a, w, c, M, N, K, trans_w, accumulate);
    return;
  }
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.a16.resize(static_cast<size_t>(M * K));
  f32_to_bf16_n(a, s.a16.data(), M * K);
  dnnl_run(s, {M, N, K, false, trans_w, accumulate}, s.a16.data(), w, c);
}

namespace {
// gemm_decoded's buffer for tiles of tr rows: the fp32 tile [tr, K] at 0, its bf16 copy at
// tile16 and the tile's output block [M, tr] at out (64-byte aligned parts).
struct DecodedParts {
  size_t tile16, out, total;
};
DecodedParts decoded_parts(int64_t M, int64_t tr, int64_t K) {
  auto up = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t tk = static_cast<size_t>(tr * K);
  const size_t tile16 = up(tk * sizeof(float)), out = tile16 + up(tk * sizeof(uint16_t));
  return {tile16, out, out + static_cast<size_t>(M * tr) * sizeof(float)};
}
}  // namespace

GemmWorkspace gemm_bf16_decoded_workspace(int64_t M, int64_t N, int64_t K) {
  GemmWorkspace w;
  if (M == 0 || N == 0 || bf16_gemm_path() == Bf16GemmPath::Fp32) return w;
  const int64_t nr = std::min(kDecodedTileRows, N);
  w.operand = static_cast<size_t>(M * K) * sizeof(uint16_t);
  w.scratchpad = dnnl_scratch_bytes({M, nr, K, false, true, false});
  if (N % kDecodedTileRows != 0 && N > kDecodedTileRows)  // the last, narrower tile's primitive
    w.scratchpad = std::max(w.scratchpad,
                            dnnl_scratch_bytes({M, N % kDecodedTileRows, K, false, true, false}));
  w.decoded = decoded_parts(M, nr, K).total;
  return w;
}

void gemm_decoded(const float* x, int64_t M, int64_t N, int64_t K, const DecodeRows& decode,
                  float* y, bool accumulate, int64_t fp32_tile_rows) {
  if (M == 0 || N == 0) return;
  if (bf16_gemm_path() == Bf16GemmPath::Fp32) {
    thread_local std::vector<float> tile;  // held per thread (see the header)
    const int64_t tr = std::min(fp32_tile_rows, N);
    tile.resize(std::max(tile.size(), static_cast<size_t>(tr * K)));
    for (int64_t r0 = 0; r0 < N; r0 += tr) {
      const int64_t nr = std::min(tr, N - r0);
      decode(r0, nr, tile.data());
      sgemm(false, true, M, nr, K, 1.f, x, K, tile.data(), K, accumulate ? 1.f : 0.f, y + r0, N);
    }
    return;
  }
  const int64_t tr = std::min(kDecodedTileRows, N);
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  const DecodedParts d = decoded_parts(M, tr, K);
  if (s.dec.size() < d.total) s.dec.resize(d.total);
  auto* tile = reinterpret_cast<float*>(s.dec.data());
  auto* tile16 = reinterpret_cast<uint16_t*>(s.dec.data() + d.tile16);
  auto* out = reinterpret_cast<float*>(s.dec.data() + d.out);
  s.a16.resize(static_cast<size_t>(M * K));
  f32_to_bf16_n(x, s.a16.data(), M * K);
  for (int64_t r0 = 0; r0 < N; r0 += tr) {
    const int64_t nr = std::min(tr, N - r0);
    decode(r0, nr, tile);
    f32_to_bf16_n(tile, tile16, nr * K);
    dnnl_run(s, {M, nr, K, false, true, false}, s.a16.data(), tile16, out);
    // The tile's output columns [r0, r0 + nr) of y.
    for (int64_t m = 0; m < M; ++m) {
      float* yr = y + m * N + r0;
      const float* o = out + m * nr;
      if (accumulate)
        for (int64_t j = 0; j < nr; ++j) yr[j] += o[j];
      else
        std::memcpy(yr, o, static_cast<size_t>(nr) * sizeof(float));
    }
  }
}

void sgemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                const float* B, float* C, bool accumulate) {
  if (M == 0 || N == 0) return;
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  if (bf16_gemm_path() == Bf16GemmPath::Fp32) {
    // The same contract in fp32: both operands rounded to bf16, products summed in fp32.
    std::vector<float> ar(static_cast<size_t>(M * K)), br(static_cast<size_t>(K * N));
    round_bf16(A, ar.data(), M * K);
    round_bf16(B, br.data(), K * N);
    sgemm(trans_a, trans_b, M, N, K, 1.f, ar.data(), lda, br.data(), ldb, accumulate ? 1.f : 0.f, C,
          N);
    return;
  }
  Bf16Gemm& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.a16.resize(static_cast<size_t>(M * K));
  s.b16.resize(static_cast<size_t>(K * N));
  f32_to_bf16_n(A, s.a16.data(), M * K);
  f32_to_bf16_n(B, s.b16.data(), K * N);
  dnnl_run(s, {M, N, K, trans_a, trans_b, accumulate}, s.a16.data(), s.b16.data(), C);
}

}  // namespace edgellm
