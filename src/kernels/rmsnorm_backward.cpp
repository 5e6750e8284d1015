// Backward of RMSNorm (rmsnorm.h). With r = (mean(x²) + eps)^(-1/2) and y = x·r·w:
//   ∂r/∂x_j = −r³·x_j / C, hence dx_i = r·w_i·dy_i − (r³/C)·x_i·Σ_j w_j·dy_j·x_j.
#include <vector>

#include "kernels/rmsnorm.h"

namespace edgellm {

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* inv_rms, int64_t T, int64_t C) {
  if (dx) {
#pragma omp parallel for schedule(static) if (T > 1)
    for (int64_t t = 0; t < T; ++t) {
      const float* xr = x + t * C;
      const float* dy = dout + t * C;
      float* dxr = dx + t * C;
      const float r = inv_rms[t];
      double dot = 0;  // Σ_j w_j·dy_j·x_j, in double like the forward's mean of squares
      for (int64_t i = 0; i < C; ++i) dot += double(w[i]) * dy[i] * xr[i];
      const float c = static_cast<float>(dot * double(r) * r * r / double(C));
      for (int64_t i = 0; i < C; ++i) dxr[i] += r * w[i] * dy[i] - c * xr[i];
    }
  }
  if (dw) {
    // Column sums over T: parallel over columns so no two threads write the same dw[i].
#pragma omp parallel for schedule(static) if (C * T > 65536)
    for (int64_t i = 0; i < C; ++i) {
      float acc = 0;
      for (int64_t t = 0; t < T; ++t) acc += dout[t * C + i] * x[t * C + i] * inv_rms[t];
      dw[i] += acc;
    }
  }
}

}  // namespace edgellm
