// Causal multi-head attention with grouped-query heads (GQA: NH query heads share KV key/value
// heads, NH % KV == 0) over a key/value cache. One kernel serves batched prefill (T > 1) and
// KV-cached decode (T == 1).
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

struct AttentionScratch {
  // Prefill keeps one head's probabilities at a time ([T, S], reused head after head) unless a
  // caller asks for every head's ([NH, T, S]): at T = S = 2048 with 32 heads that is 16 MiB
  // against 512 MiB. Decode (T == 1) always keeps [NH, S].
  bool keep_all_heads = false;
  std::vector<float> scores;  // attention probabilities of the last call
};

// out[T, NH*HD] = softmax(q kᵀ / sqrt(HD) + causal mask) v, per head.
//   q: [T, NH*HD], queries at positions pos0..pos0+T-1 (RoPE already applied)
//   k, v: [S, KV*HD] with S = pos0 + T, keys/values of positions 0..S-1
// With scratch.keep_all_heads the call leaves every head's probabilities in scratch.scores
// [NH, T, S] (row t sees s <= pos0 + t), which attention_backward can take; out == nullptr then
// computes the probabilities only (half the work, no P·V).
void attention_forward(float* out, AttentionScratch& scratch, const float* q, const float* k,
                       const float* v, int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

// Backward of attention_forward (accumulates into dq [T, NH*HD], dk, dv [S, KV*HD]):
//   dP = dout·vᵀ, dv += Pᵀ·dout, dZ = P ⊙ (dP − rowsum(dP ⊙ P)), dq += dZ·k/√HD, dk += dZᵀ·q/√HD
// `probs` [NH, T, S] are the probabilities the forward left in AttentionScratch::scores (with
// keep_all_heads); `dp` is caller-provided scratch of T*S floats.
void attention_backward(float* dq, float* dk, float* dv, float* dp, const float* dout,
                        const float* q, const float* k, const float* v, const float* probs,
                        int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

// attention_backward without the forward's probabilities: each head's [T, S] are recomputed
// (q_h·k_gᵀ and softmax, as attention_forward) into `p` right before that head's backward, so
// the memory is two [T, S] buffers (p and dp, caller-provided, T*S floats each) instead of
// [NH, T, S], for one more Q·Kᵀ and softmax per head.
void attention_backward_recompute(float* dq, float* dk, float* dv, float* p, float* dp,
                                  const float* dout, const float* q, const float* k, const float* v,
                                  int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

// Head h's causal probabilities into P [T, S] (the prefill forward's per-head step).
void attention_probs_head(float* P, const float* q, const float* k, int64_t h, int64_t T,
                          int64_t NH, int64_t KV, int64_t HD, int64_t pos0);

}  // namespace edgellm
