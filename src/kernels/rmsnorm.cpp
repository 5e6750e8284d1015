#include "kernels/rmsnorm.h"

#include <cmath>

#include "simd/simd.h"

namespace edgellm {

void rmsnorm_forward(float* out, float* inv_rms, const float* x, const float* w, int64_t T,
                     int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (T * C >= (1 << 15))
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * C;
    float* o = out + t * C;
    // Accumulate in double: C can be 8k and the mean of squares is the only reduction here.
    const double ss = simd::sum_squares(xr, C);
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / double(C) + eps));
    if (inv_rms) inv_rms[t] = inv;
    simd::scale_mul(o, xr, inv, w, C);
  }
}

}  // namespace edgellm
