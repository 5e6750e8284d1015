#include "train/prefix_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

PrefixCacheDType prefix_cache_dtype_from_name(const std::string& s) {
  if (s == "f32") return PrefixCacheDType::F32;
  if (s == "bf16") return PrefixCacheDType::BF16;
  if (s == "int8") return PrefixCacheDType::Int8;
  fail("[train] --prefix-cache-dtype '{}': expected f32, bf16 or int8", s);
}

const char* prefix_cache_dtype_name(PrefixCacheDType t) {
  switch (t) {
    case PrefixCacheDType::F32:
      return "f32";
    case PrefixCacheDType::BF16:
      return "bf16";
    case PrefixCacheDType::Int8:
      return "int8";
  }
  return "?";
}

size_t prefix_cache_entry_bytes(PrefixCacheDType t, int64_t T, int64_t C) {
  const auto n = static_cast<size_t>(T * C);
  switch (t) {
    case PrefixCacheDType::F32:
      return n * 4;
    case PrefixCacheDType::BF16:
      return n * 2;
    case PrefixCacheDType::Int8:
      return n + static_cast<size_t>(T) * sizeof(float);
  }
  return 0;
}

namespace {

// x [T, C] → d (prefix_cache_entry_bytes): f32 as is, bf16 rounded, int8 per row its scale
// absmax/127 then its C codes.
void encode(PrefixCacheDType t, const float* x, int64_t T, int64_t C, uint8_t* d) {
  switch (t) {
    case PrefixCacheDType::F32:
      std::memcpy(d, x, static_cast<size_t>(T * C) * sizeof(float));
      return;
    case PrefixCacheDType::BF16:
      for (int64_t i = 0; i < T * C; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      return;
    case PrefixCacheDType::Int8:
      for (int64_t t = 0; t < T; ++t, d += sizeof(float) + static_cast<size_t>(C)) {
        const float* r = x + t * C;
        float amax = 0;
        for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(r[c]));
        const float scale = amax / 127.f, inv = amax > 0 ? 127.f / amax : 0.f;
        std::memcpy(d, &scale, sizeof(float));
        auto* q = reinterpret_cast<int8_t*>(d + sizeof(float));
        for (int64_t c = 0; c < C; ++c) q[c] = static_cast<int8_t>(std::lrint(r[c] * inv));
      }
      return;
  }
}

// d → out [T, C], the inverse of encode up to its rounding.
void decode(PrefixCacheDType t, const uint8_t* d, int64_t T, int64_t C, float* out) {
  switch (t) {
    case PrefixCacheDType::F32:
      std::memcpy(out, d, static_cast<size_t>(T * C) * sizeof(float));
      return;
    case PrefixCacheDType::BF16:
      for (int64_t i = 0; i < T * C; ++i) {
        uint16_t h;
        std::memcpy(&h, d + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case PrefixCacheDType::Int8:
      for (int64_t t = 0; t < T; ++t, d += sizeof(float) + static_cast<size_t>(C)) {
        float scale;
        std::memcpy(&scale, d, sizeof(float));
        const auto* q = reinterpret_cast<const int8_t*>(d + sizeof(float));
        for (int64_t c = 0; c < C; ++c) out[t * C + c] = scale * static_cast<float>(q[c]);
      }
      return;
  }
}

}  // namespace

void PrefixCache::round_trip(float* x, int64_t T, int64_t C) const {
  if (t_ == PrefixCacheDType::F32) return;
  stage_.resize(prefix_cache_entry_bytes(t_, T, C));  // reused: once per miss, no new buffer
  encode(t_, x, T, C, stage_.data());
  decode(t_, stage_.data(), T, C, x);
}

PrefixCache::PrefixCache(PrefixCacheDType t, size_t cap_bytes, const std::string& dir)
    : t_(t),
      cap_(cap_bytes),
      file_(std::make_unique<ScratchFile>(dir, "prefix-cache", "[train] --prefix-cache-dir")) {}

PrefixCache::~PrefixCache() = default;

bool PrefixCache::put(uint64_t key, const float* x, int64_t T, int64_t C) {
  const size_t n = prefix_cache_entry_bytes(t_, T, C);
  if (bytes_ + n > cap_ || map_.count(key)) return false;
  Entry e{T, C, {}, bytes_};
  if (!file_) {
    e.data.resize(n);
    encode(t_, x, T, C, e.data.data());
  } else {
    stage_.resize(n);
    encode(t_, x, T, C, stage_.data());
    // A full disk only ends the caching: the entry is not kept and training goes on.
    if (!file_->try_write(stage_.data(), n, e.offset)) {
      cap_ = bytes_;  // no further puts
      return false;
    }
  }
  bytes_ += n;
  map_.emplace(key, std::move(e));
  return true;
}

bool PrefixCache::get(uint64_t key, float* out, int64_t T, int64_t C) const {
  const auto it = map_.find(key);
  if (it == map_.end()) return false;
  const Entry& e = it->second;
  EDGELLM_CHECK(e.T == T && e.C == C, "prefix cache entry [{}, {}] read as [{}, {}]", e.T, e.C, T,
                C);
  if (!file_) {
    decode(t_, e.data.data(), T, C, out);
    return true;
  }
  const size_t n = prefix_cache_entry_bytes(t_, T, C);
  // f32 entries are the values themselves: read straight into out.
  uint8_t* d = t_ == PrefixCacheDType::F32 ? reinterpret_cast<uint8_t*>(out)
                                           : (stage_.resize(n), stage_.data());
  file_->read(d, n, e.offset);
  if (t_ != PrefixCacheDType::F32) decode(t_, d, T, C, out);
  return true;
}

}  // namespace edgellm
