// Causal multi-head attention with grouped-query heads (GQA: NH query heads share KV key/value
// heads, NH % KV == 0) over a key/value cache. One kernel serves batched prefill (T > 1) and
// KV-cached decode (T == 1).
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

struct AttentionScratch {
  std::vector<float> scores;  // [NH, T, S] attention probabilities of the last call
};

// out[T, NH*HD] = softmax(q kᵀ / sqrt(HD) + causal mask) v, per head.
//   q: [T, NH*HD], queries at positions pos0..pos0+T-1 (RoPE already applied)
//   k, v: [S, KV*HD] with S = pos0 + T, keys/values of positions 0..S-1
// After the call scratch.scores holds the probabilities (row t sees s <= pos0 + t), which the
// backward pass reuses. out == nullptr computes the probabilities only (the training backward's
// recompute: half the work, no P·V).
void attention_forward(float* out, AttentionScratch& scratch, const float* q, const float* k,
                       const float* v, int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

// Backward of attention_forward (accumulates into dq [T, NH*HD], dk, dv [S, KV*HD]):
//   dP = dout·vᵀ, dv += Pᵀ·dout, dZ = P ⊙ (dP − rowsum(dP ⊙ P)), dq += dZ·k/√HD, dk += dZᵀ·q/√HD
// `probs` [NH, T, S] are the probabilities the forward left in AttentionScratch::scores;
// `dp` is caller-provided scratch of T*S floats.
void attention_backward(float* dq, float* dk, float* dv, float* dp, const float* dout,
                        const float* q, const float* k, const float* v, const float* probs,
                        int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

}  // namespace edgellm
