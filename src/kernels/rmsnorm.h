// RMSNorm (Zhang & Sennrich 2019): out = x / sqrt(mean(x²) + eps) · w, per row of C values.
#pragma once

#include <cstdint>

namespace edgellm {

// out[T, C] = rmsnorm(x[T, C]) * w[C]. If inv_rms is given, stores 1/sqrt(mean(x²)+eps) per row
// ([T]) for the backward pass. out may alias x.
void rmsnorm_forward(float* out, float* inv_rms, const float* x, const float* w, int64_t T,
                     int64_t C, float eps);

}  // namespace edgellm
