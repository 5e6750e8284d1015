// One threading model for the whole engine: OpenMP (oneDNN's GEMM runs on the same pool).
// Kernels take row ranges and are parallelised here, high up, never nested.
#pragma once

namespace edgellm {

void set_num_threads(int n);  // n <= 0: leave the OpenMP default (OMP_NUM_THREADS / cores)
int num_threads();

}  // namespace edgellm
