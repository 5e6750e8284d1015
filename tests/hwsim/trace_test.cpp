#include "hwsim/trace.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace edgellm::hwsim {
namespace {

// Independent analytic MAC count of one iteration (PAPER.md §2 semantics), per method.
double analytic_flops(const ModelConfig& m, const TuneConfig& t) {
  const double T = double(t.batch) * t.seq, d = m.dim, q = m.q_dim(), kv = m.kv_dim(),
               ff = m.hidden_dim, r = t.lora_rank, V = m.vocab_size;
  const double attn = double(t.batch) * m.n_heads * double(t.seq) * t.seq * m.head_dim;
  const double lin = d * q + 2 * d * kv + q * d + 3 * d * ff;  // MACs per token
  const double lora_io = (d + q) + 2 * (d + kv) + (q + d) + 2 * (d + ff) + (ff + d);  // Σ in+out
  const double qkv_in = 3 * d;  // Σ in of q, k, v
  const int e = t.exit_or_last(m), lo = t.first_trained(m), hi = t.last_trained(m);
  double macs = T * d * V;  // head forward
  for (int l = 0; l < e; ++l) {
    const bool trained = l >= lo && l < hi;
    macs += T * lin + 2 * attn + (trained ? T * r * lora_io : 0);
  }
  if (hi > lo) macs += T * V * d;  // head dX
  for (int l = lo; l < hi; ++l) {
    const bool bottom = l == lo && t.skip_bottom_dx;
    macs += T * lin - (bottom ? T * (d * q + 2 * d * kv) : 0);    // dX through frozen weights
    macs += 4 * attn;                                             // dP, dV, dQ, dK
    macs += 2 * T * r * lora_io - (bottom ? T * r * qkv_in : 0);  // dB, dh, dA, dX_lora
  }
  return 2 * macs;
}

TuneConfig tune(Method meth, int exit, int window) {
  TuneConfig t;
  t.method = meth;
  t.exit_layer = exit;
  t.window = window;
  t.seq = 64;
  t.batch = 2;
  return t;
}

TEST(Trace, FlopsMatchAnalyticCountForEveryMethod) {
  for (const char* name : {"llama-7b", "tinyllama-1.1b", "stories260K"}) {
    const ModelConfig m = ModelConfig::preset(name);
    const int L = m.n_layers;
    std::vector<TuneConfig> cases = {tune(Method::Lora, 0, 0), tune(Method::Partial, 0, 2),
                                     tune(Method::Alt, L, 2), tune(Method::Alt, 3, 3)};
    cases.push_back(cases[0]);
    cases.back().skip_bottom_dx = false;
    for (const auto& t : cases) {
      SCOPED_TRACE(fmt::format("{} {} exit {} window {}", name, method_name(t.method), t.exit_layer,
                               t.window));
      const Trace tr = build_trace(m, t);
      EXPECT_DOUBLE_EQ(tr.total_flops(), analytic_flops(m, t));
    }
  }
}

TEST(Trace, NoWeightGradientsAndForwardStopsAtTheExit) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Trace tr = build_trace(m, tune(Method::Alt, 16, 8));
  EXPECT_EQ(tr.exit_layer, 16);
  EXPECT_EQ(tr.first_trained, 8);
  for (const auto& op : tr.ops) {
    EXPECT_EQ(op.name.find("dW"), std::string::npos) << op.name;
    if (op.layer >= 0 && op.layer < m.n_layers) {
      EXPECT_LT(op.layer, 16) << op.name;
    }
    if (op.phase == Phase::Backward && op.layer < m.n_layers) {
      EXPECT_GE(op.layer, 8) << op.name;  // backward through the window only
      // Backward GEMMs with a frozen weight operand are dX GEMMs only: N = the weight's input.
      if (op.weight_operand) {
        EXPECT_NE(op.name.find(".dX"), std::string::npos) << op.name;
      }
      if (op.weight_operand) {
        EXPECT_FALSE(op.precision_scaled) << op.name;
      }
    }
    // Below the window LoRA is gated off: a plain forward that saves nothing.
    if (op.layer >= 0 && op.layer < 8) {
      EXPECT_EQ(op.name.find("lora"), std::string::npos) << op.name;
      EXPECT_EQ(op.saved_write, 0) << op.name;
    }
  }
}

TEST(Trace, SavedActivationsScaleWithTheWindow) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Trace lora = build_trace(m, tune(Method::Lora, 0, 0));
  const Trace alt = build_trace(m, tune(Method::Alt, 32, 8));
  const Trace alt8 = build_trace(m, tune(Method::Alt, 8, 8));
  EXPECT_DOUBLE_EQ(alt.saved_peak, alt8.saved_peak);  // ∝ m, not the exit depth
  const double ratio = lora.saved_peak / alt.saved_peak;
  EXPECT_GT(ratio, 3.8);
  EXPECT_LT(ratio, 4.0);  // the exit head's saved norm is common to both
  EXPECT_DOUBLE_EQ(lora.lora_params_trained / alt.lora_params_trained, 4.0);
}

TEST(Trace, BitsAndSparsityShrinkWeightBytesNotFlops) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  TuneConfig t8 = tune(Method::Lora, 0, 0);
  TuneConfig t4 = t8;
  t4.bits.assign(32, 4);
  TuneConfig t4s = t4;
  t4s.sparsity.assign(32, 0.5);
  const Trace a = build_trace(m, t8), b = build_trace(m, t4), c = build_trace(m, t4s);
  EXPECT_DOUBLE_EQ(a.total_flops(), c.total_flops());
  EXPECT_LT(b.weights_stored, 0.6 * a.weights_stored);
  EXPECT_LT(c.weights_stored, b.weights_stored);
  // Bitmap packing: 4-bit at 50% costs 3 bits per weight, dense packing would cost 4.
  EXPECT_NEAR(linear_weight_bytes(4096, 4096, 4, 0.5), 4096.0 * 4096 * 3 / 8 + 2 * 4096, 1e-6);
  // Sparse packing is never worse than dense (1 mask bit at 5% sparsity would be).
  EXPECT_NEAR(linear_weight_bytes(4096, 4096, 8, 0.05), 4096.0 * 4096 + 2 * 4096, 1e-6);
}

TEST(Trace, JsonListsEveryOp) {
  const ModelConfig m = ModelConfig::preset("stories260K");
  const Trace tr = build_trace(m, tune(Method::Alt, 5, 2));
  const auto j = tr.to_json();
  ASSERT_EQ(j["ops"].size(), tr.ops.size());
  EXPECT_DOUBLE_EQ(j["total_flops"].get<double>(), tr.total_flops());
  EXPECT_EQ(j["ops"][1]["name"], "L0.attn_norm");
  bool has_head = false;
  for (const auto& op : j["ops"]) has_head |= op["name"] == "head.lm_head";
  EXPECT_TRUE(has_head);
}

TEST(Trace, BadTuningConfigIsRejected) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  TuneConfig t = tune(Method::Alt, 40, 8);
  EXPECT_THROW(build_trace(m, t), Error);
  t = tune(Method::Alt, 16, 0);
  EXPECT_THROW(build_trace(m, t), Error);
  t = tune(Method::Lora, 0, 0);
  t.bits.assign(31, 4);
  try {
    build_trace(m, t);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bits'"), std::string::npos) << e.what();
  }
  t.bits.clear();
  t.sparsity.assign(32, 1.5);
  EXPECT_THROW(build_trace(m, t), Error);
}

// A compressed model's per-layer record (ModelConfig::layers, from its config.json) drives the
// trace when the tune gives no bits/sparsity; explicit tune values still win.
TEST(Trace, ModelLayerRecordSetsBitsAndSparsityPerLinear) {
  const ModelConfig base = ModelConfig::preset("llama-7b");
  TuneConfig explicit4 = tune(Method::Alt, 16, 4);
  explicit4.bits.assign(32, 4);
  explicit4.sparsity.assign(32, 0.5);
  ModelConfig rec = base;
  LinearFormat f;
  f.bits = 4;
  f.scheme = QuantScheme::Sym;
  f.sparsity = 0.5f;
  for (auto& lc : rec.layers) lc.set_all(f);
  // Through config.json, as `sim --model-config DIR/config.json` reads it.
  rec = ModelConfig::from_hf_json(rec.to_hf_json(), "compressed/config.json");
  const Trace a = build_trace(base, explicit4), b = build_trace(rec, tune(Method::Alt, 16, 4));
  EXPECT_DOUBLE_EQ(a.weights_stored, b.weights_stored);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < a.ops.size(); ++i) {
    EXPECT_EQ(a.ops[i].weight_bits, b.ops[i].weight_bits) << a.ops[i].name;
    EXPECT_EQ(a.ops[i].sparsity, b.ops[i].sparsity) << a.ops[i].name;
  }
  // Per linear: only layer 3's down_proj at 3 bits; everything else at the 8-bit base.
  ModelConfig one = base;
  one.layers[3].at(LinearId::Down).bits = 3;
  one.layers[3].at(LinearId::Down).scheme = QuantScheme::Sym;
  const TuneConfig lora = tune(Method::Lora, 0, 0);
  const Trace c = build_trace(one, lora), d = build_trace(base, lora);
  const int64_t in = base.hidden_dim, out = base.dim;
  EXPECT_DOUBLE_EQ(c.weights_stored - d.weights_stored,
                   linear_weight_bytes(in, out, 3, 0) - linear_weight_bytes(in, out, 8, 0));
  for (const Op& op : c.ops) {
    if (!op.weight_operand || op.layer < 0 || op.layer >= base.n_layers) continue;
    EXPECT_EQ(op.weight_bits, op.name.rfind("L3.down_proj", 0) == 0 ? 3 : 8) << op.name;
  }
  TuneConfig forced = lora;
  forced.bits.assign(32, 8);  // explicit bits override the record
  EXPECT_DOUBLE_EQ(build_trace(one, forced).weights_stored, d.weights_stored);
}

TEST(Trace, InconsistentHeadsAreAClearError) {
  nlohmann::json j = ModelConfig::preset("llama-7b").to_hf_json();
  j["num_key_value_heads"] = 5;  // 32 query heads are not a multiple of 5 kv heads
  try {
    ModelConfig::from_hf_json(j, "bad_config.json");
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad_config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;
  }
  // A config assembled in code with inconsistent heads is caught before tracing.
  ModelConfig m = ModelConfig::preset("llama-7b");
  m.n_kv_heads = 7;
  EXPECT_THROW(build_trace(m, tune(Method::Lora, 0, 0)), Error);
}

}  // namespace
}  // namespace edgellm::hwsim
