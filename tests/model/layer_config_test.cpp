// LayerConfig, the one per-layer record: its config.json form round-trips and is validated,
// loading fills it from the stored weight types (whatever the format and re-encoding), and
// saving writes it so a reload sees the same record.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/model_writer.h"
#include "model/model.h"
#include "test_util.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

// All widths multiples of 32 so every block type fits every linear.
ModelConfig small_config() {
  ModelConfig c;
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 64;
  c.max_seq_len = 32;
  c.layers.resize(c.n_layers);
  return c;
}

LinearFormat fmt4(float sp) {
  LinearFormat f;
  f.bits = 4;
  f.group = 128;
  f.scheme = QuantScheme::Asym;
  f.sparsity = sp;
  return f;
}

TEST(LayerConfig, DefaultConfigWritesNoRecord) {
  EXPECT_FALSE(small_config().to_hf_json().contains("edgellm"));
  EXPECT_TRUE(small_config().layers_json().is_null());
}

TEST(LayerConfig, JsonRoundTrip) {
  ModelConfig c = small_config();
  c.layers[0].set_all(fmt4(0.3f));
  c.layers[1].at(LinearId::Down).bits = 8;
  c.layers[1].at(LinearId::Down).scheme = QuantScheme::Sym;
  c.layers[1].at(LinearId::Gate).sparsity = 0.5f;
  c.layers[1].at(LinearId::Gate).nm_n = 2;
  c.layers[1].at(LinearId::Gate).nm_m = 4;
  c.layers[1].has_exit = true;
  c.layers[1].lora_rank = 8;
  const nlohmann::json j = c.to_hf_json();
  ASSERT_TRUE(j.contains("edgellm"));
  // Hand-checked shape of the record: defaults left out.
  const auto& l1 = j["edgellm"]["layers"][1];
  EXPECT_EQ(l1["down_proj"], nlohmann::json({{"bits", 8}, {"scheme", "sym"}}));
  EXPECT_EQ(l1["gate_proj"]["nm"], "2:4");
  EXPECT_FALSE(l1.contains("q_proj"));
  EXPECT_EQ(j["edgellm"]["layers"][0]["up_proj"]["group"], 128);
  const ModelConfig back = ModelConfig::from_hf_json(nlohmann::json::parse(j.dump()), "rt");
  EXPECT_EQ(back.layers, c.layers);
  EXPECT_NEAR(back.mean_bits(0), 4.0, 1e-12);
  EXPECT_NEAR(back.mean_sparsity(0), 0.3, 1e-6);
  // Layer 1: only down_proj's 96·64 weights have 8-bit values; float linears count as 16.
  const double n_down = 96.0 * 64, n_all = 64.0 * 64 + 2 * 64.0 * 32 + 64.0 * 64 + 3 * 64.0 * 96;
  EXPECT_NEAR(back.mean_bits(1, 16), (8 * n_down + 16 * (n_all - n_down)) / n_all, 1e-9);
}

TEST(LayerConfig, BadRecordsFailNamingTheField) {
  auto parse = [](const nlohmann::json& layer) {
    nlohmann::json j = small_config().to_hf_json();
    j["edgellm"] = {{"format", 1}, {"layers", {layer, nlohmann::json::object()}}};
    return ModelConfig::from_hf_json(j, "cfg.json");
  };
  auto expect_fail = [&](const nlohmann::json& layer, const std::string& needle) {
    try {
      parse(layer);
      ADD_FAILURE() << "accepted " << layer.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_fail({{"q_proj", {{"bits", 17}, {"scheme", "sym"}}}}, "bits 17");
  expect_fail({{"q_proj", {{"bits", 4}}}}, "scheme 'none' does not fit bits 4");
  expect_fail({{"q_proj", {{"bits", 4}, {"scheme", "odd"}}}}, "scheme 'odd' unknown");
  expect_fail({{"k_proj", {{"sparsity", 1.0}}}}, "sparsity 1");
  expect_fail({{"k_proj", {{"nm", "4:2"}}}}, "4:2");
  expect_fail({{"x_proj", {{"bits", 4}}}}, "edgellm.layers[0].x_proj");
  nlohmann::json j = small_config().to_hf_json();
  j["edgellm"] = {{"layers", nlohmann::json::array({nlohmann::json::object()})}};
  EXPECT_THROW(ModelConfig::from_hf_json(j, "cfg.json"), Error);  // 1 entry for 2 layers
  EXPECT_NO_THROW(parse(nlohmann::json::object()));
}

TEST(LayerConfig, LoadingFillsFormatsFromStoredTypes) {
  const std::string d = testing::temp_dir("layercfg");
  ModelConfig c = small_config();
  write_gguf(c, random_source(3), d + "/q4k.gguf", DType::Q4_K, nullptr);
  write_gguf(c, random_source(3), d + "/q8.gguf", DType::Q8_0, nullptr);
  write_hf_dir(c, random_source(3), d + "/f32", DType::F32);
  // Q4_K needs rows of 256: these fall back to Q4_0 (gguf_matrix_type) — 4-bit sym, groups of 32.
  const Checkpoint q4 = load_checkpoint(d + "/q4k.gguf");
  for (const LayerConfig& lc : q4.config.layers)
    for (const LinearFormat& f : lc.linear) {
      EXPECT_EQ(f.bits, 4);
      EXPECT_EQ(f.group, 32);
      EXPECT_EQ(f.scheme, QuantScheme::Sym);
    }
  EXPECT_EQ(load_checkpoint(d + "/q8.gguf").config.layers[1].at(LinearId::Down).bits, 8);
  EXPECT_TRUE(load_checkpoint(d + "/f32").config.layers[0].is_default());
  // Re-encoding at load puts the values on the new grid.
  LoadOptions o;
  o.matrix_dtype = DType::Q8_0;
  const Model m(load_checkpoint(d + "/f32"), o);
  EXPECT_EQ(m.config().layers[0].at(LinearId::Q), stored_linear_format(DType::Q8_0));
  EXPECT_EQ(stored_linear_format(DType::Q4_K).scheme, QuantScheme::Asym);
  EXPECT_EQ(stored_linear_format(DType::Q6_K).group, 16);
  EXPECT_TRUE(stored_linear_format(DType::BF16).is_default());

  // Saving writes the record (bits from the Q8_0 storage, sparsity from the config) into
  // config.json; the f32 reload keeps it, since float storage implies nothing.
  Checkpoint ck = load_checkpoint(d + "/q8.gguf");
  ck.config.layers[0].at(LinearId::V).sparsity = 0.25f;
  ck.config.layers[1].has_exit = true;
  save_hf_dir(ck, d + "/saved", DType::F32);
  const auto j = nlohmann::json::parse(read_file(d + "/saved/config.json"));
  EXPECT_EQ(j["edgellm"]["layers"][0]["v_proj"]["bits"], 8);
  const Checkpoint back = load_checkpoint(d + "/saved");
  EXPECT_EQ(back.config.layers, ck.config.layers);
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace edgellm
