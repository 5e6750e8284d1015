// RMSNorm (Zhang & Sennrich 2019): out = x / sqrt(mean(x²) + eps) · w, per row of C values.
#pragma once

#include <cstdint>

namespace edgellm {

// out[T, C] = rmsnorm(x[T, C]) * w[C]. If inv_rms is given, stores 1/sqrt(mean(x²)+eps) per row
// ([T]) for the backward pass. out may alias x.
void rmsnorm_forward(float* out, float* inv_rms, const float* x, const float* w, int64_t T,
                     int64_t C, float eps);

// Backward of rmsnorm_forward with r = inv_rms[t] saved by the forward:
//   dx[t, i] += r·w[i]·dout[t, i] − r³/C · x[t, i] · Σ_j w[j]·dout[t, j]·x[t, j]
//   dw[i]    += Σ_t dout[t, i]·x[t, i]·r           (dw == nullptr: frozen gain)
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* inv_rms, int64_t T, int64_t C);

}  // namespace edgellm
