// The training forward and the hand-written backward of a whole LLaMA model. The forward is the
// one layer function inference runs too (model/layer.h), told to keep its intermediates in a
// slot of saved activations; the backward is written by hand against exactly those values.
//
// One sequence of T tokens at a time (a batch is a sequence of such micro-batches whose
// gradients add up). The forward runs layers [0, l1) and saves what the backward needs for the
// window [l0, l1) only; the loss is next-token cross-entropy at layer l1's output through the
// final norm and head; the backward runs from there down to layer l0's input. l0 = 0, l1 = L is
// ordinary training; l0 > 0 or l1 < L is adaptive layer tuning's window (PAPER.md §2).
// Layers below the window run inference-style (the same layer function, nothing saved), in place
// through one scratch slot; LoRA dropout still applies there in a training step, as in a framework
// whose frozen modules stay in train mode, so the window's gradients are exactly those of a full
// backward. Only the window's max_window (EngineOptions) layers have saved-activation slots.
//
// Per layer l the saved values (LayerActs) are the ones llm.c keeps: the norm inputs' inverse
// RMS, the normed inputs, q/k (after RoPE) and v, the attention output, the residual h, the
// pre-activation gate/up and each adapter's A·x. The SwiGLU output is recomputed in the backward
// (it is elementwise and [T, FF] is large), and so are the attention probabilities ([NH, T, T]
// per layer would be the largest saved tensor at T = 512: one head's [T, T] serves every head of
// every layer). With activation checkpointing only the layer inputs x_in[l] are kept; each layer
// but the top one is re-run just before its backward into the top layer's slot, so
// saved-activation memory is one layer's instead of L's. Partial checkpointing
// (EngineOptions::recompute_layers) does that for the window's lowest K layers only.
//
// Trainable: LoRA adapters (lora != nullptr) and/or every weight (full != nullptr, full
// fine-tuning; then the model read is full->model()). Gradients live in one arena parallel to the
// parameter arrays; a windowed engine's adapter gradients cover the window's layers only
// (lora_grads()), so its gradient arena does not grow with the depth either.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "kernels/attention.h"
#include "kernels/gemm_bf16.h"
#include "kernels/rope.h"
#include "model/layer.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/full_params.h"
#include "train/memory.h"

namespace edgellm {

struct EngineOptions {
  int64_t max_T = 0;                    // longest sequence (tokens per micro-batch)
  bool checkpoint_activations = false;  // keep only layer inputs; recompute layers in backward
  int64_t head_rows = 128;              // logits are computed this many rows at a time
  // Partial checkpointing: the lowest recompute_layers layers of each window keep only their
  // inputs and are recomputed in the backward; the others keep their saved values. Recomputed
  // layers run after the kept ones' backwards are done, so they reuse a kept layer's slot:
  // saved-activation memory is m - K layers' instead of m's, for K more layer forwards per step.
  // At most m - 1 (the top layer's backward comes first; recomputing it would save nothing), which
  // is what checkpoint_activations means.
  int recompute_layers = 0;
  // Most layers a backward may span (l1 - l0 of run()); 0 = all L. Saved activations and layer
  // inputs are carved for this many layers only, so an adaptive-layer-tuning window of m
  // layers costs m layers' activations whatever the depth of the model.
  int max_window = 0;
};

struct StepResult {
  double loss_sum = 0;  // Σ NLL over unmasked targets
  int64_t tokens = 0;   // unmasked targets
};

class TrainEngine {
 public:
  // Measures the buffers (plan()) without allocating; call allocate() before the first step.
  TrainEngine(const Model& m, LoraAdapters* lora, FullParams* full, const EngineOptions& o);

  // Gradients, activations, scratch and workspace of this engine (weights/adapters/optimizer
  // are the trainer's): exact sizes of what allocate() will reserve, and of the kernels'
  // workspace its steps need (Workspace: the GEMM workspace, reserved by allocate(), plus the
  // RoPE table).
  MemoryPlan plan() const;
  // The GEMM workspace part of Workspace (kernels/gemm_bf16.h).
  const GemmWorkspace& gemm_workspace() const { return gemm_ws_; }
  void allocate();
  // What is allocated now, measured on the buffers themselves (arenas, attention buffers by
  // capacity; Workspace: the GEMM buffers gemm_bf16 holds plus the RoPE table; transient kernel
  // buffers exist only inside calls): the check that planned = allocated.
  MemoryPlan allocated() const;

  // Forward (+ backward) of one sequence. targets[t] is the id to predict after tokens[t]
  // (< 0: masked). Each unmasked token's loss gradient is scaled by loss_scale (1 / tokens in
  // the optimizer step gives the mean). dropout_seed makes LoRA dropout masks reproducible.
  // x0 (optional, [T, C]) replaces the input of layer x0_depth (<= l0): the token embeddings
  // when 0, or a cached frozen prefix's hidden state (ALT's branch mode), and the layers below
  // x0_depth are not run.
  StepResult run(const int32_t* tokens, const int32_t* targets, int64_t T, bool backward,
                 float loss_scale, uint64_t dropout_seed, int l0 = 0, int l1 = -1,
                 const float* x0 = nullptr, int x0_depth = 0);

  // Clears the gradients. A windowed engine's adapter gradients then cover whichever window the
  // next backward runs; every backward until the next zero_grad must run that same window.
  void zero_grad();
  // The adapter gradients: parameters [lo, hi) of lora->params(), gradient of parameter i at
  // g[i - lo]. An engine whose window spans every layer holds all of them ([0, size)); a
  // windowed one (max_window < L, adaptive layer tuning) holds the adapters of the window its
  // last backward ran only, so its gradient arena, like its activations, is sized for m layers.
  struct GradRange {
    size_t lo = 0, hi = 0;
    float* g = nullptr;
  };
  GradRange lora_grads() { return {grad_lo_, grad_hi_, lora_grad_}; }
  float* lora_grad() { return lora_grad_; }  // lora_grads().g
  // Parameters [lo, hi) of lora->params() that the adapters of layers [l0, l1) occupy ([0, 0)
  // when they have none).
  std::pair<size_t, size_t> lora_span(int l0, int l1) const;
  // Gradient of adapter parameter i (0 outside the range held).
  float lora_grad_at(size_t i) const {
    return i >= grad_lo_ && i < grad_hi_ ? lora_grad_[i - grad_lo_] : 0.f;
  }
  float* full_grad() { return full_grad_; }  // parallel to full->params()
  size_t lora_size() const;
  size_t full_size() const;
  // dLoss/d(layer l0 input) [T, C] of the last backward run.
  const float* input_grad() const { return dx_; }
  const Model& model() const { return *m_; }
  // Layers the window may span (EngineOptions::max_window, or L).
  int window() const { return window_; }
  // The input of layer l0 [T, C] of the last run() (valid until the next): what a prefix cache
  // keeps of the frozen layers below the window.
  const float* window_input() const { return x_in_[0]; }
  // The same buffer, writable: a cached prefix decoded here is passed to run() as x0 in place.
  float* window_input_buffer() { return x_in_[0]; }
  // Applied to the window's input [T, C] in place after run() computed frozen layers below the
  // window (not when x0 was given at l0): ALT's branch mode rounds it as its prefix cache stores
  // it (train/prefix_cache.h), so cached and computed inputs are the same values.
  void set_window_input_transform(std::function<void(float*, int64_t)> f) {
    window_transform_ = std::move(f);
  }
  // Whether the layers below the window apply the adapters (default) or run the frozen base
  // (ALT's branch mode: each exit is its own branch, base up to its window).
  void set_lora_below_window(bool on) { lora_below_ = on; }
  // Layer forwards the last run() executed, recomputes excluded (= l1: the exit's depth, less
  // x0_depth when a prefix was given).
  int64_t layer_forwards() const { return layer_forwards_; }
  // The window's lowest layers each backward recomputes (EngineOptions::recompute_layers, or
  // m - 1 with checkpoint_activations; never the top one).
  int recompute_layers() const { return recompute_; }
  // Observer of the forward of every later run() (model/layer.h taps); null removes it. A
  // checkpointing recompute does not call it again.
  void set_taps(LayerTaps* t) { taps_ = t; }
  // The head of the following runs (an early exit's): its norm gain and LM head replace the
  // model's; norm_grad [C] / head_grad [V, C] (fp32 lm_head only), when non-null, accumulate
  // their gradients (zero_grad does not clear them: they belong to the caller). Null hw: the
  // model's own head again.
  void set_exit_head(const HeadWeights* hw, float* norm_grad, float* head_grad) {
    exit_hw_ = hw ? *hw : HeadWeights{};
    has_exit_ = hw != nullptr;
    exit_norm_grad_ = norm_grad;
    exit_head_grad_ = head_grad;
  }

 private:
  struct LayerActs {
    float *rms1, *xn1, *q, *k, *v, *att, *h, *rms2, *xn2, *gate, *up;  // see engine.h header
    std::array<float*, kLoraTargets> u;                                // [T, r] each: A·x
  };
  struct LayerGrads {
    float *wq, *wk, *wv, *wo, *wg, *wu, *wd, *n1, *n2, *bq, *bk, *bv;
  };

  void carve();
  void plan_workspace();
  // The shared layer forward (model/layer.h) writing into slot a.
  void layer_forward(int l, const float* x, float* out, LayerActs& a, int64_t T, bool train,
                     LayerTaps* taps);
  // Layer l below the window in place on x, nothing saved.
  void layer_forward_frozen(int l, float* x, int64_t T, bool train);
  void layer_backward(int l, float* dx, const float* x, LayerActs& a, int64_t T, bool need_dx);
  double head(const float* x, const int32_t* targets, int64_t T, bool backward, float scale,
              int64_t* count);
  void lora_backward(int l, LoraTarget t, float* dx, const float* dy, const float* x,
                     const float* u, int64_t T);
  const float* dropout_input(int l, LoraTarget t, const float* x, int64_t n);
  // Points the adapter gradients at window [l0, l1) for a backward (windowed engines).
  void bind_grad_window(int l0, int l1);

  const Model* m_;
  LoraAdapters* lora_;
  FullParams* full_;
  EngineOptions o_;
  ModelConfig c_;
  RopeTable rope_;
  AttentionScratch attn_;  // one head's probabilities [T, T]: forward, then backward recompute
  Arena grads_, acts_, scratch_;
  GemmWorkspace gemm_ws_;
  uint64_t dseed_ = 0;
  LayerTaps* taps_ = nullptr;
  HeadWeights exit_hw_;
  bool has_exit_ = false;
  bool lora_below_ = true;
  float *exit_norm_grad_ = nullptr, *exit_head_grad_ = nullptr;

  std::function<void(float*, int64_t)> window_transform_;
  int window_ = 0;     // max layers per window (EngineOptions::max_window or L)
  int recompute_ = 0;  // the window's lowest layers recomputed in the backward (< window_)
  int64_t layer_forwards_ = 0;
  // [window+1] × [T, C]: x_in_[i] = input of layer l0+i; x_in_[l1-l0] = the exit's hidden state.
  // x_in_[0] is also where the layers below the window run in place.
  std::vector<float*> x_in_;
  std::vector<LayerActs>
      slots_;  // slots_[i] for layer l0+i (window slots), or 1 with checkpointing
  // scratch
  float *act_, *dact_, *dgate_, *dup_, *dn_, *dq_, *dk_, *dv_, *datt_, *dp_, *xd_, *du_, *dx_,
      *tmp_out_;  // [T,FF]x4 [T,C] [T,Q] [T,KV]x2 [T,Q] [T,T] [T,maxin] [T,r] [T,C] [T,C]
  float *rmsf_, *xnf_, *dxnf_, *logits_, *dlogits_, *dloss_, *loss_;  // [T] [T,C]x2 [R,V]x2 [R]x2
  // gradients
  float* lora_grad_ = nullptr;  // adapter parameters [grad_lo_, grad_hi_)
  size_t grad_lo_ = 0, grad_hi_ = 0;
  size_t n_lora_grad_ = 0;       // floats of the adapter-gradient buffer
  bool grads_windowed_ = false;  // window_ < L with adapters and no full fine-tuning
  bool grad_bound_ = false;      // a backward ran since zero_grad (windowed engines)
  float* full_grad_ = nullptr;
  std::vector<LayerGrads> lg_;
  float *g_embed_ = nullptr, *g_head_ = nullptr, *g_norm_ = nullptr;
};

}  // namespace edgellm
