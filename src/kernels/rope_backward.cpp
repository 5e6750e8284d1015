// Backward of RoPE (rope.h): the transpose of a rotation by a is the rotation by −a.
#include "kernels/rope.h"

namespace edgellm {

void rope_backward(float* d, const RopeTable& table, int64_t T, int64_t H, int64_t pos0) {
  const int64_t HD = table.head_dim(), half = HD / 2;
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    const float* c = table.cos_at(pos0 + t);
    const float* s = table.sin_at(pos0 + t);
    for (int64_t h = 0; h < H; ++h) {
      float* p = d + (t * H + h) * HD;
      for (int64_t i = 0; i < half; ++i) {
        const float d0 = p[2 * i], d1 = p[2 * i + 1];
        p[2 * i] = d0 * c[i] + d1 * s[i];
        p[2 * i + 1] = -d0 * s[i] + d1 * c[i];
      }
    }
  }
}

}  // namespace edgellm
