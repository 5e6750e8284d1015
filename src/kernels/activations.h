// Element-wise and row-wise kernels of the LLaMA block and its loss.
#pragma once

#include <cstdint>

namespace edgellm {

// out[n] = silu(gate) * up, silu(z) = z·sigmoid(z)  (SwiGLU, Shazeer 2020). out may alias gate.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);

// x[n] += y[n]
void add_inplace(float* x, const float* y, int64_t n);

// y[T, n] += b[n] on every row (no-op for b == nullptr: Qwen2's q/k/v biases are optional), and
// its backward db[n] += Σ_t dy[t, n].
void bias_forward(float* y, const float* b, int64_t T, int64_t n);
void bias_backward(float* db, const float* dy, int64_t T, int64_t n);

// loss[t] = logsumexp(logits[t, :]) - logits[t, target[t]]  (natural log), T rows of V logits.
// Rows with target < 0 get loss 0 (masked).
void cross_entropy_forward(float* loss, const float* logits, const int32_t* target, int64_t T,
                           int64_t V);

// In-place softmax of n values with temperature (temperature > 0).
void softmax_inplace(float* x, int64_t n, float temperature = 1.f);

// Backward of swiglu_forward: with s = sigmoid(gate),
//   dgate += dout·up·s·(1 + gate·(1 − s)),  dup += dout·gate·s.   (out must not alias inputs.)
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// Backward of cross_entropy_forward: dlogits[t, :] += dloss[t]·(softmax(logits[t]) − onehot).
// Masked rows (target < 0) get no gradient.
void cross_entropy_backward(float* dlogits, const float* dloss, const float* logits,
                            const int32_t* target, int64_t T, int64_t V);

// Backward of the embedding lookup x[t] = E[tokens[t]] (InferenceState::embed):
// dE[tokens[t], :] += dx[t, :], E [V, C]. Sequential: repeated tokens add into the same row.
void embedding_backward(float* dE, const float* dx, const int32_t* tokens, int64_t T, int64_t C);

}  // namespace edgellm
