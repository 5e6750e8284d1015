// Per-target pieces that every Highway kernel source of src/simd shares: the vector types, the
// fp16 scale conversion and the horizontal sum. A Highway "-inl" header: included after
// hwy/highway.h by each *_kernels.cpp, once per target that foreach_target.h compiles (the guard
// below flips with HWY_TARGET_TOGGLE so that each target pass sees it again).
#if defined(EDGELLM_SIMD_HWY_COMMON_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_SIMD_HWY_COMMON_INL_H_
#undef EDGELLM_SIMD_HWY_COMMON_INL_H_
#else
#define EDGELLM_SIMD_HWY_COMMON_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "simd/half.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 fp32 lanes: a 64-byte block of a quantized row maps to one vector on AVX-512 and to
// a few on narrower targets, the same code for all.
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;

// Hardware fp16 -> fp32 (F16C on x86, FCVTL on aarch64); other targets convert in software.
#undef EDGELLM_HW_F16
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || HWY_ARCH_ARM
#define EDGELLM_HW_F16 1
#else
#define EDGELLM_HW_F16 0
#endif

// One fp16 scale at p (any alignment): one conversion instruction where the target has one (the
// software conversion's branches cost ~15% of a Q8_0 GEMV).
inline float half_at(const void* p) {
#if EDGELLM_HW_F16
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh, static_cast<const hwy::float16_t*>(p))));
#else
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
#endif
}

inline float sum(DF d, VF v) { return hn::GetLane(hn::SumOfLanes(d, v)); }

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
