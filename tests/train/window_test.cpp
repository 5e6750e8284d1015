// The windowed training engine (EngineOptions::max_window): saved activations for m layers only,
// layers below the window run without saved state, and the window's gradients are exactly those
// of a full backward (adaptive layer tuning, PAPER.md §2).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "io/tensor_walk.h"
#include "kernels/threads.h"
#include "model/layer.h"
#include "model/lora.h"
#include "model/model.h"
#include "test_util.h"
#include "train/engine.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

ModelConfig config_with_layers(int L) {
  ModelConfig c;
  c.dim = 24;
  c.hidden_dim = 37;
  c.n_layers = L;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 6;
  c.vocab_size = 29;
  c.max_seq_len = 16;
  c.norm_eps = 1e-5f;
  c.layers.resize(L);
  return c;
}

std::unique_ptr<Model> random_model(uint64_t seed, const ModelConfig& c) {
  Checkpoint ck;
  ck.config = c;
  ck.path = "random";
  Rng r(seed);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
    auto* p = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
    const bool norm = s.role == TensorRole::Norm;
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = static_cast<float>(norm ? 1.0 + 0.2 * r.normal() : 0.3 * r.normal());
    ck.tensors.add(std::move(t));
  }
  return std::make_unique<Model>(std::move(ck));
}

// PEFT init with a random B (B = 0 would make every dA zero).
LoraAdapters random_lora(const ModelConfig& c, int rank, float dropout) {
  LoraConfig lc;
  lc.rank = rank;
  lc.alpha = 5;
  lc.dropout = dropout;
  LoraAdapters a(c, lc);
  a.init_peft(7);
  Rng r(8);
  for (int l = 0; l < c.n_layers; ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      const LoraLinear& s = a.at(l, tt);
      for (int64_t i = 0; i < s.out * rank; ++i)
        a.B(l, tt)[i] = static_cast<float>(0.3 * r.normal());
    }
  return a;
}

class Window : public ::testing::Test {
 protected:
  void SetUp() override { set_num_threads(1); }
  void TearDown() override { set_num_threads(0); }
};

TEST_F(Window, ActivationAndGradientArenasOfMLayersDoNotGrowWithDepth) {
  const int64_t T = 9, r = 3, m = 2;
  size_t windowed[2], all[2], grads[2];
  for (int i = 0; i < 2; ++i) {
    const ModelConfig c = config_with_layers(4 << i);  // L = 4, then 8
    auto model = random_model(1, c);
    LoraAdapters lora = random_lora(c, r, 0.f);
    EngineOptions o{T, false, 4};
    o.max_window = m;
    const MemoryPlan w = TrainEngine(*model, &lora, nullptr, o).plan();
    const MemoryPlan a = TrainEngine(*model, &lora, nullptr, EngineOptions{T, false, 4}).plan();
    windowed[i] = w[MemCategory::Activations];
    all[i] = a[MemCategory::Activations];
    // Adapter gradients: the window's m layers of adapters, or all of them.
    grads[i] = w[MemCategory::Gradients];
    const size_t per_layer = lora.params().size() / static_cast<size_t>(c.n_layers);
    EXPECT_EQ(grads[i], (m * per_layer + 15) / 16 * 16 * sizeof(float));
    EXPECT_EQ(a[MemCategory::Gradients], (lora.params().size() + 15) / 16 * 16 * sizeof(float));
  }
  EXPECT_EQ(windowed[0], windowed[1]);
  EXPECT_EQ(grads[0], grads[1]);
  // Hand count: m+1 layer inputs [T, C]; per slot rms1, rms2 [T], xn1, h, xn2 [T, C], q, att
  // [T, Q], k, v [T, KV], gate, up [T, FF], 7 adapter outputs [T, r], each rounded up to 16
  // floats (the arena's alignment). The attention probabilities are not activations: one
  // head's [T, T] in scratch, recomputed head by head in the backward.
  const int64_t C = 24, Q = 24, KV = 12, FF = 37;
  auto pad = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t slot = 2 * pad(T) + 3 * pad(T * C) + 2 * pad(T * Q) + 2 * pad(T * KV) +
                       2 * pad(T * FF) + 7 * pad(T * r);
  EXPECT_EQ(windowed[0], static_cast<size_t>(((m + 1) * pad(T * C) + m * slot) * 4));
  // Without a window the arena holds all L layers: it grows with depth.
  EXPECT_EQ(all[0], static_cast<size_t>(((4 + 1) * pad(T * C) + 4 * slot) * 4));
  EXPECT_EQ(all[1], static_cast<size_t>(((8 + 1) * pad(T * C) + 8 * slot) * 4));
}

// Partial checkpointing: recomputing the window's lowest K layers saves K slots (the recomputed
// layers reuse a kept layer's slot once its backward is done); K = m - 1 is full checkpointing
// and more is clamped to it (the top layer's backward comes first: recomputing it saves nothing).
TEST_F(Window, RecomputingKLayersSavesKSlots) {
  const int64_t T = 9, r = 3, m = 4;
  const ModelConfig c = config_with_layers(8);
  auto model = random_model(1, c);
  LoraAdapters lora = random_lora(c, r, 0.f);
  auto acts = [&](bool ckpt, int recompute) {
    EngineOptions o{T, ckpt, 4};
    o.max_window = m;
    o.recompute_layers = recompute;
    const TrainEngine e(*model, &lora, nullptr, o);
    EXPECT_EQ(e.recompute_layers(), ckpt ? m - 1 : std::min<int>(recompute, m - 1));
    return e.plan()[MemCategory::Activations];
  };
  const int64_t C = 24, Q = 24, KV = 12, FF = 37;
  auto pad = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t slot = 2 * pad(T) + 3 * pad(T * C) + 2 * pad(T * Q) + 2 * pad(T * KV) +
                       2 * pad(T * FF) + 7 * pad(T * r);
  for (int k = 0; k < m; ++k)
    EXPECT_EQ(acts(false, k), static_cast<size_t>(((m + 1) * pad(T * C) + (m - k) * slot) * 4))
        << k;
  EXPECT_EQ(acts(false, 99), acts(false, m - 1));
  EXPECT_EQ(acts(true, 0), acts(false, m - 1));
  EngineOptions bad{T, false, 4};
  bad.recompute_layers = -1;
  EXPECT_THROW(TrainEngine(*model, &lora, nullptr, bad), Error);
}

// A windowed engine holds the gradients of the window its backward ran; another window's
// backward before zero_grad is refused (its gradients would land on the same slots).
TEST_F(Window, GradientsAreHeldForTheWindowTheBackwardRan) {
  const int64_t T = 5, m = 2;
  const int L = 8;
  const std::vector<int32_t> tokens{1, 2, 3, 4, 5};
  const std::vector<int32_t> targets{2, 3, 4, 5, 6};
  const ModelConfig c = config_with_layers(L);
  auto model = random_model(1, c);
  LoraAdapters lora = random_lora(c, 3, 0.f);
  EngineOptions o{T, false, 4};
  o.max_window = m;
  TrainEngine e(*model, &lora, nullptr, o);
  e.allocate();
  e.zero_grad();
  EXPECT_EQ(e.lora_grads().hi, e.lora_grads().lo);  // nothing held before a backward
  const int l1 = L - 1;
  e.run(tokens.data(), targets.data(), T, true, 1.f, 0, l1 - m, l1);
  EXPECT_EQ(e.lora_grads().lo, lora.at(l1 - m, LoraTarget::Q).a);
  EXPECT_EQ(e.lora_grads().hi, lora.at(l1, LoraTarget::Q).a);
  // The same window again accumulates; another one must wait for zero_grad.
  e.run(tokens.data(), targets.data(), T, true, 1.f, 0, l1 - m, l1);
  EXPECT_THROW(e.run(tokens.data(), targets.data(), T, true, 1.f, 0, 0, m), Error);
  e.zero_grad();
  e.run(tokens.data(), targets.data(), T, true, 1.f, 0, 0, m);
  EXPECT_EQ(e.lora_grads().lo, 0u);
}

// Window [l1 - m, l1) of a windowed engine vs the full backward [0, l1) of an unwindowed one:
// the same loss, the window's gradients bit for bit, nothing below the window.
void expect_window_equals_full(const Model& model, LoraAdapters& lora,
                               const std::vector<int32_t>& tokens,
                               const std::vector<int32_t>& targets, int m, bool ckpt,
                               int recompute = 0) {
  const int L = model.config().n_layers;
  const auto T = static_cast<int64_t>(tokens.size());
  TrainEngine full(model, &lora, nullptr, EngineOptions{T, false, 4});
  EngineOptions o{T, ckpt, 4};
  o.max_window = m;
  o.recompute_layers = recompute;
  TrainEngine win(model, &lora, nullptr, o);
  full.allocate();
  win.allocate();
  const size_t n = lora.params().size();
  for (int l1 = m; l1 <= L; ++l1) {
    const int l0 = l1 - m;
    full.zero_grad();
    win.zero_grad();
    const StepResult a = full.run(tokens.data(), targets.data(), T, true, 0.5f, 99, 0, l1);
    const StepResult b = win.run(tokens.data(), targets.data(), T, true, 0.5f, 99, l0, l1);
    ASSERT_EQ(a.loss_sum, b.loss_sum) << "exit " << l1;
    ASSERT_EQ(a.tokens, b.tokens);
    const size_t lo = lora.at(l0, LoraTarget::Q).a;
    const size_t hi = l1 < L ? lora.at(l1, LoraTarget::Q).a : n;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; ++i) {
      const float want = i >= lo && i < hi ? full.lora_grad()[i] : 0.f;
      ASSERT_EQ(win.lora_grad_at(i), want) << "exit " << l1 << " param " << i;
      nonzero += want != 0.f;
    }
    EXPECT_GT(nonzero, (hi - lo) / 2) << "exit " << l1;  // the comparison is not vacuous
  }
  // A window wider than planned is refused.
  if (m < L) {
    EXPECT_THROW(win.run(tokens.data(), targets.data(), T, true, 1.f, 0, 0, m + 1), Error);
  }
}

TEST_F(Window, GradientsEqualFullBackwardRestrictedToTheWindowRandomModel) {
  const ModelConfig c = config_with_layers(6);
  auto model = random_model(3, c);
  LoraAdapters lora = random_lora(c, 3, /*dropout=*/0.2f);
  const std::vector<int32_t> tokens{1, 5, 28, 3, 17, 5, 9};
  const std::vector<int32_t> targets{5, -1, 3, 17, 5, 9, 2};
  expect_window_equals_full(*model, lora, tokens, targets, 2, false);
  expect_window_equals_full(*model, lora, tokens, targets, 3, true);
  // Partial checkpointing: recomputed layers give the saved values bit for bit.
  expect_window_equals_full(*model, lora, tokens, targets, 3, false, 1);
  expect_window_equals_full(*model, lora, tokens, targets, 4, false, 2);
}

// ALT's branch mode: the layers below the window run the frozen base. Truth: a full backward
// [0, l1) with a copy of the adapter whose B matrices below l0 are zero (their product adds an
// exact 0), restricted to the window. A cached prefix (the window's input, fed back through
// x0 at x0_depth = l0) gives the same loss and gradients without running the layers below.
TEST_F(Window, BranchModeEqualsBaseBelowTheWindowAndPrefixInputReplaysIt) {
  const ModelConfig c = config_with_layers(6);
  auto model = random_model(5, c);
  LoraAdapters lora = random_lora(c, 3, /*dropout=*/0.2f);
  const std::vector<int32_t> tokens{1, 5, 28, 3, 17, 5, 9};
  const std::vector<int32_t> targets{5, 2, 3, 17, 5, 9, 2};
  const int64_t T = 7;
  const int m = 2, l1 = 5, l0 = 3;
  LoraAdapters masked = lora;
  for (int l = 0; l < l0; ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      std::fill_n(masked.B(l, tt), masked.at(l, tt).out * 3, 0.f);
    }
  TrainEngine ref(*model, &masked, nullptr, EngineOptions{T, false, 4});
  EngineOptions o{T, false, 4};
  o.max_window = m;
  TrainEngine br(*model, &lora, nullptr, o);
  ref.allocate();
  br.allocate();
  br.set_lora_below_window(false);
  ref.zero_grad();
  br.zero_grad();
  const StepResult a = ref.run(tokens.data(), targets.data(), T, true, 0.5f, 42, 0, l1);
  const StepResult b = br.run(tokens.data(), targets.data(), T, true, 0.5f, 42, l0, l1);
  ASSERT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(br.layer_forwards(), l1);
  const size_t lo = lora.at(l0, LoraTarget::Q).a, hi = lora.at(l1, LoraTarget::Q).a;
  for (size_t i = lo; i < hi; ++i) ASSERT_EQ(br.lora_grad_at(i), ref.lora_grad()[i]) << i;
  // The same adapters active below the window (cumulative) give another loss.
  TrainEngine cum(*model, &lora, nullptr, o);
  cum.allocate();
  EXPECT_NE(cum.run(tokens.data(), targets.data(), T, false, 0.5f, 42, l0, l1).loss_sum,
            a.loss_sum);
  // Replay from the window's input: only the window runs, and nothing changes.
  const std::vector<float> prefix(br.window_input(), br.window_input() + T * c.dim);
  std::vector<float> g(lora.params().size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = br.lora_grad_at(i);
  br.zero_grad();
  const StepResult h =
      br.run(tokens.data(), targets.data(), T, true, 0.5f, 42, l0, l1, prefix.data(), l0);
  EXPECT_EQ(h.loss_sum, b.loss_sum);
  EXPECT_EQ(br.layer_forwards(), l1 - l0);
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(br.lora_grad_at(i), g[i]) << i;
  // A prefix must come with its input and sit at or below the window.
  EXPECT_THROW(br.run(tokens.data(), targets.data(), T, true, 0.5f, 42, l0, l1, nullptr, l0),
               Error);
  EXPECT_THROW(
      br.run(tokens.data(), targets.data(), T, true, 0.5f, 42, l0, l1, prefix.data(), l0 + 1),
      Error);
}

TEST_F(Window, GradientsEqualFullBackwardRestrictedToTheWindowStories260K) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  auto model = Model::load(testing::stories260k_path());
  LoraAdapters lora = random_lora(model->config(), 4, 0.f);
  std::vector<int32_t> tokens, targets;
  Rng r(5);
  for (int t = 0; t < 24; ++t) tokens.push_back(static_cast<int32_t>(r.next() % 512));
  for (int t = 0; t < 24; ++t) targets.push_back(t + 1 < 24 ? tokens[t + 1] : 1);
  expect_window_equals_full(*model, lora, tokens, targets, 2, false);
}

// Counts the layer forwards of a run by the layer_in tap, per layer.
struct LayerCounter : LayerTaps {
  std::vector<int> n;
  explicit LayerCounter(int L) : n(L, 0) {}
  void on(TapPoint p, int layer, const float*, int64_t, int64_t) override {
    if (p == TapPoint::LayerInput) ++n[layer];
  }
};

TEST_F(Window, LayerForwardsPerStepEqualTheExitDepth) {
  const ModelConfig c = config_with_layers(8);
  auto model = random_model(4, c);
  LoraAdapters lora = random_lora(c, 2, 0.f);
  const std::vector<int32_t> tokens{1, 2, 3, 4, 5};
  const std::vector<int32_t> targets{2, 3, 4, 5, 6};
  for (bool ckpt : {false, true}) {
    EngineOptions o{5, ckpt, 4};
    o.max_window = 2;
    TrainEngine e(*model, &lora, nullptr, o);
    e.allocate();
    for (int l1 = 2; l1 <= 8; l1 += 3) {
      LayerCounter count(8);
      e.set_taps(&count);
      e.zero_grad();
      e.run(tokens.data(), targets.data(), 5, true, 1.f, 0, l1 - 2, l1);
      for (int l = 0; l < 8; ++l) EXPECT_EQ(count.n[l], l < l1 ? 1 : 0) << l1 << " layer " << l;
      EXPECT_EQ(e.layer_forwards(), l1);
      e.set_taps(nullptr);
    }
  }
}

// An exit head after layer 2 of 4 (window 2): the gradients of its own RMSNorm gain (the shared
// mode's trainable part) and of a cloned fp32 LM head against central finite differences of the
// engine's fp32 loss (h = 1e-2; fp32 noise in the loss is ~1e-6 of it).
TEST_F(Window, ExitHeadGradientsMatchFiniteDifferences) {
  const ModelConfig c = config_with_layers(4);
  auto model = random_model(6, c);
  LoraAdapters lora = random_lora(c, 2, 0.f);
  const std::vector<int32_t> tokens{1, 5, 28, 3, 17, 5, 9};
  const std::vector<int32_t> targets{5, -1, 3, 17, 5, 9, 2};
  const int64_t T = 7, C = c.dim, V = c.vocab_size;
  EngineOptions o{T, false, 4};
  o.max_window = 2;
  TrainEngine e(*model, &lora, nullptr, o);
  e.allocate();
  // Gain initialised from the final norm and perturbed (so it differs from the model's), head
  // cloned from lm_head.
  std::vector<float> gain(model->final_norm(), model->final_norm() + C);
  Rng r(3);
  for (float& g : gain) g += static_cast<float>(0.1 * r.normal());
  const float* lm = reinterpret_cast<const float*>(model->head().lm_head.data);
  std::vector<float> head(lm, lm + V * C);
  std::vector<float> ggain(C, 0.f), ghead(V * C, 0.f);
  HeadWeights hw{gain.data(), WeightView::f32(head.data(), V, C)};
  e.set_exit_head(&hw, ggain.data(), ghead.data());
  e.zero_grad();
  e.run(tokens.data(), targets.data(), T, true, 1.f, 0, 0, 2);
  auto loss = [&] { return e.run(tokens.data(), targets.data(), T, false, 1.f, 0, 0, 2).loss_sum; };
  // The exit's head is used: the model's own head gives another loss.
  const double with_exit = loss();
  e.set_exit_head(nullptr, nullptr, nullptr);
  EXPECT_NE(loss(), with_exit);
  e.set_exit_head(&hw, nullptr, nullptr);
  const float h = 1e-2f;
  auto check = [&](std::vector<float>& p, const std::vector<float>& g, size_t stride) {
    double maxg = 0, maxerr = 0;
    for (size_t i = 0; i < p.size(); i += stride) {
      const float v = p[i];
      p[i] = v + h;
      const double lp = loss();
      p[i] = v - h;
      const double lm2 = loss();
      p[i] = v;
      const double fd = (lp - lm2) / (2 * h);
      maxg = std::max(maxg, std::abs(fd));
      maxerr = std::max(maxerr, std::abs(fd - g[i]));
    }
    EXPECT_GT(maxg, 1e-2);
    EXPECT_LT(maxerr / maxg, 1e-2);
  };
  check(gain, ggain, 1);
  check(head, ghead, 7);
}

}  // namespace
}  // namespace edgellm
