// The one layer forward (model/layer.h) and its taps: taps observe without changing anything,
// each tap holds the input of its linears (checked against scalar double references computed from
// the neighbouring taps and the weights), layer ranges and the exit head compose to the full
// forward, candidate weights replace one layer exactly, and the training engine runs the same
// function (same hidden states as inference).
#include "model/layer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "io/tensor_walk.h"
#include "kernels/ref/reference.h"
#include "kernels/threads.h"
#include "model/forward.h"
#include "test_util.h"
#include "train/engine.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

using VD = std::vector<double>;

ModelConfig layer_test_config() {
  ModelConfig c;
  c.dim = 24;
  c.hidden_dim = 37;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 6;
  c.vocab_size = 29;
  c.max_seq_len = 16;
  c.norm_eps = 1e-5f;
  c.qkv_bias = true;
  c.layers.resize(c.n_layers);
  return c;
}

// Random f32 model; each tensor is drawn from its own stream, seeded by `seed_of(name)`, so two
// models can share some tensors exactly and differ in others.
std::unique_ptr<Model> random_model(const ModelConfig& c,
                                    const std::function<uint64_t(const std::string&)>& seed_of) {
  Checkpoint ck;
  ck.config = c;
  ck.path = "tiny-random";
  for (const TensorSpec& s : model_tensor_specs(c)) {
    Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
    auto* p = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
    Rng r(seed_of(s.name) * 1000003 + std::hash<std::string>{}(s.name));
    const bool norm = s.role == TensorRole::Norm;
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = static_cast<float>(norm ? 1.0 + 0.2 * r.normal() : 0.3 * r.normal());
    ck.tensors.add(std::move(t));
  }
  return std::make_unique<Model>(std::move(ck));
}
std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed) {
  return random_model(c, [seed](const std::string&) { return seed; });
}

LoraAdapters random_lora(const ModelConfig& c) {
  LoraConfig lc;
  lc.rank = 3;
  lc.alpha = 5;
  LoraAdapters a(c, lc);
  a.init_peft(7);
  Rng r(8);  // a non-zero B so the adapters change the output
  for (int l = 0; l < c.n_layers; ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      for (int64_t i = 0; i < a.at(l, tt).out * 3; ++i)
        a.B(l, tt)[i] = static_cast<float>(0.3 * r.normal());
    }
  return a;
}

// Records every tap call: key (point, layer) -> values of the last call.
struct Recorder : LayerTaps {
  std::map<std::pair<int, int>, std::vector<float>> seen;
  int calls = 0;
  void on(TapPoint p, int layer, const float* x, int64_t T, int64_t width) override {
    seen[{static_cast<int>(p), layer}].assign(x, x + T * width);
    ++calls;
  }
  const std::vector<float>& at(TapPoint p, int l) const {
    return seen.at({static_cast<int>(p), l});
  }
};

VD to_d(const std::vector<float>& v) { return VD(v.begin(), v.end()); }
VD to_d(const float* p, int64_t n) { return VD(p, p + n); }
VD weight_d(const WeightView& w) {
  EXPECT_EQ(w.dtype, DType::F32);
  return to_d(reinterpret_cast<const float*>(w.data), w.rows * w.cols);
}
VD linear_d(const VD& x, const WeightView& w, int64_t T) {
  VD y(T * w.rows);
  ref::matmul(x.data(), weight_d(w).data(), y.data(), T, w.rows, w.cols);
  return y;
}
VD rmsnorm_d(const VD& x, const float* g, int64_t T, int64_t C, double eps) {
  VD out(T * C);
  ref::rmsnorm(x.data(), to_d(g, C).data(), out.data(), T, C, eps);
  return out;
}
// max |a − b| / (max |b| + 1e-6)
double rel(const std::vector<float>& a, const VD& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0, s = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    m = std::max(m, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return m / (s + 1e-6);
}

// Prefill of `prompt`, then `decode` one token at a time; every logit of every step.
std::vector<float> run_logits(InferenceState& st, const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& decode) {
  const int64_t V = st.model().config().vocab_size, T = static_cast<int64_t>(prompt.size());
  st.reset();
  std::vector<float> out(T * V);
  st.logits(st.forward(prompt.data(), T), T, out.data());
  for (int32_t tok : decode) {
    const float* l = st.forward_last_logits(&tok, 1);
    out.insert(out.end(), l, l + V);
  }
  return out;
}

class LayerForward : public ::testing::Test {
 protected:
  void SetUp() override { set_num_threads(1); }
  void TearDown() override { set_num_threads(0); }
  ModelConfig c = layer_test_config();
  std::vector<int32_t> prompt{1, 5, 28, 3, 17, 5, 9}, decode{4, 11, 2};
};

TEST_F(LayerForward, TapsDoNotChangeLogits) {
  auto m = random_model(c, 42);
  LoraAdapters lora = random_lora(c);
  InferenceState st(*m);
  st.set_adapter(&lora);
  const auto plain = run_logits(st, prompt, decode);
  Recorder rec;
  st.set_taps(&rec);
  const auto tapped = run_logits(st, prompt, decode);
  ASSERT_EQ(plain.size(), tapped.size());
  EXPECT_EQ(std::memcmp(plain.data(), tapped.data(), plain.size() * sizeof(float)), 0);
  // 6 points x 3 layers x (1 prefill + 3 decode steps)
  EXPECT_EQ(rec.calls, kTapPoints * c.n_layers * 4);
}

TEST_F(LayerForward, TapsDoNotChangeStories260KLogits) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  auto m = Model::load(testing::stories260k_path());
  InferenceState st(*m);
  const std::vector<int32_t> p{1, 403, 407, 261, 378, 432, 383, 286}, d{261, 376, 298};
  const auto plain = run_logits(st, p, d);
  Recorder rec;
  st.set_taps(&rec);
  const auto tapped = run_logits(st, p, d);
  ASSERT_EQ(plain.size(), tapped.size());
  EXPECT_EQ(std::memcmp(plain.data(), tapped.data(), plain.size() * sizeof(float)), 0);
}

// Each tap against a double reference built from the weights and the tap before it, so every
// tap is pinned to its place in the layer; layer 0's input is the embedding itself.
TEST_F(LayerForward, TapsHoldTheInputsOfEachLinear) {
  auto m = random_model(c, 43);
  const int64_t C = c.dim, FF = c.hidden_dim;
  InferenceState st(*m);
  Recorder rec;
  st.set_taps(&rec);
  for (const int64_t T : {int64_t(7), int64_t(1)}) {  // prefill, then one decode step
    const int32_t* toks = T == 7 ? prompt.data() : decode.data();
    st.forward(toks, T);
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& w = m->layer(l);
      SCOPED_TRACE(::testing::Message() << "T " << T << " layer " << l);
      const VD x = to_d(rec.at(TapPoint::LayerInput, l));
      if (l == 0) {
        std::vector<float> e(T * C);
        st.embed(toks, T, e.data());
        EXPECT_EQ(rec.at(TapPoint::LayerInput, 0), e);
      } else {
        EXPECT_EQ(rec.at(TapPoint::LayerInput, l), rec.at(TapPoint::LayerOutput, l - 1));
      }
      // input of q/k/v = RMSNorm of the layer input
      EXPECT_LT(rel(rec.at(TapPoint::AttnNorm, l), rmsnorm_d(x, w.attn_norm, T, C, c.norm_eps)),
                1e-6);
      // input of gate/up = RMSNorm of x + Wo·(input of o)
      VD h = linear_d(to_d(rec.at(TapPoint::AttnOut, l)), w.wo, T);
      for (int64_t i = 0; i < T * C; ++i) h[i] += x[i];
      const VD n2 = rmsnorm_d(h, w.ffn_norm, T, C, c.norm_eps);
      EXPECT_LT(rel(rec.at(TapPoint::FfnNorm, l), n2), 1e-5);
      // input of down = silu(Wgate·n2) ⊙ Wup·n2, from the tapped n2
      const VD n2t = to_d(rec.at(TapPoint::FfnNorm, l));
      const VD g = linear_d(n2t, w.w_gate, T), u = linear_d(n2t, w.w_up, T);
      VD act(T * FF);
      ref::swiglu(g.data(), u.data(), act.data(), T * FF);
      EXPECT_LT(rel(rec.at(TapPoint::SwiGLU, l), act), 1e-5);
      // layer output = h + Wdown·(input of down)
      VD out = linear_d(to_d(rec.at(TapPoint::SwiGLU, l)), w.w_down, T);
      for (int64_t i = 0; i < T * C; ++i) out[i] += h[i];
      EXPECT_LT(rel(rec.at(TapPoint::LayerOutput, l), out), 1e-5);
    }
  }
}

TEST_F(LayerForward, LayerRangesAndExitHeadComposeToTheForward) {
  auto m = random_model(c, 44);
  const int64_t C = c.dim, V = c.vocab_size, T = 7;
  InferenceState full(*m), split(*m);
  std::vector<float> ref_logits(T * V), logits(T * V);
  full.logits(full.forward(prompt.data(), T), T, ref_logits.data());

  Recorder rec;
  split.set_taps(&rec);
  std::vector<float> x(T * C);
  split.embed(prompt.data(), T, x.data());
  split.forward_layers(x.data(), T, 0, 0, 1);
  EXPECT_EQ(x, rec.at(TapPoint::LayerOutput, 0));  // hidden state after layer 0
  // Early exit after layer 0: final norm + head on that hidden state (double reference).
  split.head_logits(x.data(), T, logits.data());
  const VD xn = rmsnorm_d(to_d(x), m->final_norm(), T, C, c.norm_eps);
  EXPECT_LT(rel(logits, linear_d(xn, m->lm_head(), T)), 1e-5);
  split.forward_layers(x.data(), T, 0, 1, c.n_layers);
  split.head_logits(x.data(), T, logits.data());
  EXPECT_EQ(logits, ref_logits);  // [0,1) then [1,L) then the head = forward(), bit for bit
  EXPECT_THROW(split.forward_layers(x.data(), T, 0, 2, 1), Error);
  EXPECT_THROW(split.forward_layers(x.data(), T, 12, 0, 1), Error);  // past max_seq 16
}

TEST_F(LayerForward, CandidateWeightsReplaceOneLayerExactly) {
  auto a = random_model(c, 45), b = random_model(c, 46);
  // mixed: a's tensors except layer 1, which is b's.
  auto mixed = random_model(c, [](const std::string& n) {
    return n.rfind("model.layers.1.", 0) == 0 ? uint64_t(46) : uint64_t(45);
  });
  const int64_t C = c.dim, T = 7;
  InferenceState sm(*mixed), sa(*a);
  const float* hm = sm.forward(prompt.data(), T);
  std::vector<float> want(hm, hm + T * C), x(T * C), got(T * C);
  sa.embed(prompt.data(), T, x.data());
  for (int l = 0; l < c.n_layers; ++l)
    sa.layer_forward(l, x.data(), T, 0, l == 1 ? &b->layer(1) : nullptr);
  sa.final_norm(x.data(), got.data(), T);
  EXPECT_EQ(got, want);
}

// The engine's forward is the same function: its layer inputs equal inference's bit for bit,
// its loss is the NLL of inference's logits, and taps leave loss and gradients unchanged.
TEST_F(LayerForward, TrainingEngineRunsTheSameLayer) {
  auto m = random_model(c, 47);
  LoraAdapters lora = random_lora(c);
  const int64_t T = 7, V = c.vocab_size;
  const std::vector<int32_t> targets{5, 28, 3, 17, 5, 9, 4};

  InferenceState st(*m);
  st.set_adapter(&lora);
  Recorder inf;
  st.set_taps(&inf);
  std::vector<float> logits(T * V);
  st.logits(st.forward(prompt.data(), T), T, logits.data());
  double nll = 0;
  for (int64_t t = 0; t < T; ++t) {
    double l;
    VD lt = to_d(logits.data() + t * V, V);
    ref::cross_entropy(lt.data(), &targets[t], &l, 1, V);
    nll += l;
  }

  EngineOptions o;
  o.max_T = T;
  TrainEngine e(*m, &lora, nullptr, o);
  e.allocate();
  e.zero_grad();
  const StepResult plain = e.run(prompt.data(), targets.data(), T, true, 1.f, 0);
  const std::vector<float> g0(e.lora_grad(), e.lora_grad() + e.lora_size());
  Recorder tr;
  e.set_taps(&tr);
  e.zero_grad();
  const StepResult tapped = e.run(prompt.data(), targets.data(), T, true, 1.f, 0);
  const std::vector<float> g1(e.lora_grad(), e.lora_grad() + e.lora_size());
  EXPECT_EQ(plain.loss_sum, tapped.loss_sum);
  EXPECT_EQ(g0, g1);
  EXPECT_NEAR(plain.loss_sum, nll, 1e-5 * nll);
  for (int l = 0; l < c.n_layers; ++l)
    for (int p = 0; p < kTapPoints; ++p)
      EXPECT_EQ(tr.at(TapPoint(p), l), inf.at(TapPoint(p), l))
          << tap_name(TapPoint(p)) << " layer " << l;
}

TEST(TapPoints, LinearInputs) {
  EXPECT_EQ(tap_of_linear(LinearId::K), TapPoint::AttnNorm);
  EXPECT_EQ(tap_of_linear(LinearId::O), TapPoint::AttnOut);
  EXPECT_EQ(tap_of_linear(LinearId::Up), TapPoint::FfnNorm);
  EXPECT_EQ(tap_of_linear(LinearId::Down), TapPoint::SwiGLU);
  EXPECT_STREQ(tap_name(TapPoint::LayerOutput), "layer_out");
}

}  // namespace
}  // namespace edgellm
