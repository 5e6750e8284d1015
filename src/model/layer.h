// The one decoder-layer forward (Touvron et al. 2023), shared by inference (batched prefill and
// KV-cached decode), the training engine, calibration statistics and early exits:
//   h   = x + Wo · attn(rope(Wq·n1), rope(Wk·n1), Wv·n1),  n1 = rmsnorm(x)·g1
//   out = h + Wdown · (silu(Wgate·n2) ⊙ Wup·n2),          n2 = rmsnorm(h)·g2
// over T tokens at positions pos0..pos0+T-1, each linear optionally followed by its unmerged LoRA
// adapter (y += scale·B·A·x). Where the intermediates go is the caller's choice (LayerBuffers):
// inference points them at shared scratch and runs in place; training points them at a slot of
// saved activations, so the hand-written backward (train/engine.cpp) finds exactly what it needs.
//
// Named taps (STYLE.md §11, llama.cpp's cb(cur, "attn_norm", il)) expose the input of every
// linear and the residual stream around the layer to an observer — calibration, sensitivity,
// GPTQ/SparseGPT Hessians, Wanda norms — without a second copy of the forward. With no observer
// installed a tap is one null-pointer test.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/rope.h"
#include "model/lora.h"
#include "model/model.h"

namespace edgellm {

enum class TapPoint : uint8_t {
  LayerInput,   // x    [T, C]: the residual stream entering the layer
  AttnNorm,     // n1   [T, C]: rmsnorm(x)·g1, the input of q_proj, k_proj, v_proj
  AttnOut,      // att  [T, NH*HD]: attention output, the input of o_proj
  FfnNorm,      // n2   [T, C]: rmsnorm(h)·g2, the input of gate_proj, up_proj
  SwiGLU,       // act  [T, FF]: silu(gate) ⊙ up, the input of down_proj
  LayerOutput,  // out  [T, C]: the residual stream leaving the layer
};
constexpr int kTapPoints = 6;
const char* tap_name(TapPoint p);  // "layer_in", "attn_norm", "attn_out", "ffn_norm", ...
// The tap whose values are the input of linear t.
TapPoint tap_of_linear(LinearId t);

// Observer of a forward. x[T, width] (row-major) is valid during the call only; the forward
// does not wait for anything the observer does, and the values are never changed by it.
class LayerTaps {
 public:
  virtual ~LayerTaps() = default;
  virtual void on(TapPoint p, int layer, const float* x, int64_t T, int64_t width) = 0;
};

// What one call reads besides the layer's weights.
struct LayerContext {
  const ModelConfig* config = nullptr;
  const RopeTable* rope = nullptr;     // must cover positions [0, pos0 + T)
  const LoraAdapters* lora = nullptr;  // unmerged adapters, or null
  LayerTaps* taps = nullptr;           // observer, or null
  // Training only: inverted LoRA dropout of probability dropout_p on each adapter's input
  // (lora.h lora_dropout), written to dropout_scratch [T, max(C, NH*HD, FF)]. Null: no dropout.
  float* dropout_scratch = nullptr;
  float dropout_p = 0.f;
  uint64_t dropout_seed = 0;
};

// Where one call writes. Shapes for T tokens; S = pos0 + T.
struct LayerBuffers {
  float* rms1 = nullptr;  // [T] 1/rms of x for the backward, or null (not kept)
  float* xn1 = nullptr;   // [T, C] n1
  float* q = nullptr;     // [T, NH*HD] queries after bias and RoPE
  float* k = nullptr;     // [S, KV*HD] keys of positions 0..S-1 (after RoPE); rows pos0.. written
  float* v = nullptr;     // [S, KV*HD] values, likewise
  float* att = nullptr;   // [T, NH*HD] attention output
  float* h = nullptr;     // [T, C] x + attention; may be x itself (in place)
  float* rms2 = nullptr;  // [T] 1/rms of h, or null
  float* xn2 = nullptr;   // [T, C] n2; may alias xn1
  float* gate = nullptr;  // [T, FF] Wgate·n2 (+ LoRA), before the activation
  float* up = nullptr;    // [T, FF] Wup·n2 (+ LoRA)
  float* act = nullptr;   // [T, FF] SwiGLU output; may alias gate
  std::array<float*, kLinears> lora_u{};  // [T, r] each: A·dropout(x); may all alias one buffer
  AttentionScratch* attn = nullptr;       // probabilities [NH, T, S] stay here
};

// Runs layer l (weights w: the model's, or a candidate such as a compressed copy) on x[T, C]
// into out[T, C]. out may be x (and b.h may be x): inference updates the residual stream in
// place; training keeps x and h for the backward.
void layer_forward(const LayerContext& ctx, int l, const LayerWeights& w, const float* x,
                   float* out, int64_t T, int64_t pos0, LayerBuffers& b);

// The exit head, the same for the last layer and any early exit, in training and inference:
//   xn[T, C] = rmsnorm(x)·g (inv_rms [T] kept for the backward when non-null),
//   logits[n, V] = xn · lm_headᵀ.
void head_norm(const ModelConfig& c, const HeadWeights& hw, const float* x, float* xn,
               float* inv_rms, int64_t T);
void head_logits(const HeadWeights& hw, const float* xn, float* logits, int64_t n);

}  // namespace edgellm
