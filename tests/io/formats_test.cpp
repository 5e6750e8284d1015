// Round trips between the three formats, layouts on disk, quantized GGUF, random models.
#include <filesystem>

#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "io/safetensors.h"
#include "io/tensor_walk.h"
#include "io_test_util.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

TEST(Formats, Stories260KRoundTripIsBitExact) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  const std::string d = temp_dir("rt");
  Checkpoint bin = load_checkpoint(testing::stories260k_path());
  save_hf_dir(bin, d + "/hf");
  Checkpoint hf = load_checkpoint(d + "/hf");
  EXPECT_EQ(hf.format, CheckpointFormat::HfSafetensors);
  expect_same_tensors(bin, hf);
  EXPECT_EQ(hf.config.to_hf_json(), bin.config.to_hf_json());
  save_gguf(hf, d + "/m.gguf");
  Checkpoint gg = load_checkpoint(d + "/m.gguf");
  EXPECT_EQ(gg.format, CheckpointFormat::Gguf);
  expect_same_tensors(bin, gg);
  EXPECT_EQ(gg.config.to_hf_json(), bin.config.to_hf_json());
  save_hf_dir(gg, d + "/hf2");
  Checkpoint hf2 = load_checkpoint(d + "/hf2/model.safetensors");
  expect_same_tensors(bin, hf2);
  // The safetensors on disk hold q rows in HF's rotate-halves order: within head 0 (head_dim 8),
  // HF row 1 (first half, i=1) is interleaved row 2, HF row 4 (second half, i=0) is row 1.
  auto raw = read_safetensors(d + "/hf/model.safetensors");
  const Tensor* q = nullptr;
  for (const auto& t : raw)
    if (t.name == "model.layers.0.self_attn.q_proj.weight") q = &t;
  ASSERT_NE(q, nullptr);
  const Tensor& qi = bin.tensors.get("model.layers.0.self_attn.q_proj.weight", "t");
  const size_t rb = 64 * 4;
  EXPECT_EQ(std::memcmp(q->data + 1 * rb, qi.data + 2 * rb, rb), 0);
  EXPECT_EQ(std::memcmp(q->data + 4 * rb, qi.data + 1 * rb, rb), 0);
  EXPECT_EQ(std::memcmp(q->data + 8 * rb, qi.data + 8 * rb, rb), 0);  // head 1 starts in place
  fs::remove_all(d);
}

TEST(Formats, PermutationIsAnInvolutionPair) {
  Tensor t = make_owned_tensor("w", DType::F32, {16, 3});
  auto* f = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
  for (int i = 0; i < 48; ++i) f[i] = static_cast<float>(i);
  Tensor h = permute_interleaved_to_hf(t, 2);
  Tensor back = permute_hf_to_interleaved(h, 2);
  EXPECT_EQ(std::memcmp(back.data, t.data, t.nbytes), 0);
  // head_dim 8: HF row 4 (second half, i=0) holds interleaved row 1.
  EXPECT_EQ(reinterpret_cast<const float*>(h.data)[4 * 3], 3.f);
  // 1-D (bias) permutation.
  Tensor b = make_owned_tensor("b", DType::F32, {8});
  auto* bf = reinterpret_cast<float*>(const_cast<uint8_t*>(b.data));
  for (int i = 0; i < 8; ++i) bf[i] = static_cast<float>(i);
  Tensor bh = permute_interleaved_to_hf(b, 1);
  const float want[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(reinterpret_cast<const float*>(bh.data)[i], want[i]);
  expect_error([&] { permute_interleaved_to_hf(t, 3); }, {"'w'", "16 rows", "3 heads"});
}

TEST(Formats, Qwen2BiasesAndLayoutsRoundTrip) {
  const std::string d = temp_dir("qwen");
  ModelConfig c = tiny_config(Arch::Qwen2);
  write_hf_dir(c, random_source(7), d + "/hf", DType::F32);
  Checkpoint hf = load_checkpoint(d + "/hf");
  EXPECT_TRUE(hf.config.qkv_bias);
  EXPECT_EQ(hf.config.arch, Arch::Qwen2);
  save_gguf(hf, d + "/q.gguf");
  Checkpoint gg = load_gguf(d + "/q.gguf");
  EXPECT_EQ(gg.config.arch, Arch::Qwen2);
  EXPECT_FLOAT_EQ(gg.config.rope_theta, 1e6f);
  expect_same_tensors(hf, gg);
  // The same model written directly as GGUF from the generator is the same model.
  write_gguf(c, random_source(7), d + "/direct.gguf", DType::F32, nullptr);
  expect_same_tensors(hf, load_gguf(d + "/direct.gguf"));
  // In the GGUF file q rows are in the HF order, identical to the safetensors bytes.
  auto st = read_safetensors(d + "/hf/model.safetensors");
  auto gbytes = read_bytes(d + "/q.gguf");
  for (const auto& t : st)
    if (t.name == "model.layers.1.self_attn.q_proj.weight" ||
        t.name == "model.layers.1.self_attn.k_proj.bias") {
      const std::string needle(reinterpret_cast<const char*>(t.data), t.nbytes);
      EXPECT_NE(find_bytes(gbytes, needle), std::string::npos) << t.name;
    }
  fs::remove_all(d);
}

TEST(Formats, QuantizedGgufDecodesCloseAndPassesThroughBitExact) {
  const std::string d = temp_dir("quant");
  ModelConfig c = tiny_config(Arch::Llama, 256, 512);
  write_hf_dir(c, random_source(3), d + "/hf", DType::F32);
  Checkpoint hf = load_checkpoint(d + "/hf");
  struct Case {
    DType t;
    double rel_rmse;
  } cases[] = {{DType::F16, 1e-3},  {DType::BF16, 5e-3}, {DType::Q8_0, 1e-2},
               {DType::Q4_0, 0.12}, {DType::Q4_K, 0.1},  {DType::Q6_K, 0.03}};
  for (const auto& cs : cases) {
    const std::string p = d + "/m_" + dtype_name(cs.t) + ".gguf";
    save_gguf(hf, p, cs.t);
    Checkpoint q = load_gguf(p);
    const Tensor& w = q.tensors.get("model.layers.0.mlp.down_proj.weight", "t");
    EXPECT_EQ(w.dtype, cs.t);
    EXPECT_EQ(q.tensors.get("model.norm.weight", "t").dtype, DType::F32);
    Tensor a = to_f32(w), b = to_f32(hf.tensors.get("model.layers.0.mlp.down_proj.weight", "t"));
    double se = 0, ss = 0;
    const float* pa = reinterpret_cast<const float*>(a.data);
    const float* pb = reinterpret_cast<const float*>(b.data);
    for (int64_t i = 0; i < a.numel(); ++i)
      se += (pa[i] - pb[i]) * double(pa[i] - pb[i]), ss += pb[i] * double(pb[i]);
    EXPECT_LT(std::sqrt(se / ss), cs.rel_rmse) << dtype_name(cs.t);
    // Re-saving a quantized checkpoint in its own type copies blocks unchanged.
    save_gguf(q, p + "2", cs.t);
    expect_same_tensors(q, load_gguf(p + "2"));
  }
  fs::remove_all(d);
}

TEST(Formats, GgufFallsBackWhenRowsDoNotFitBlocks) {
  EXPECT_EQ(gguf_matrix_type(DType::Q4_K, 64), DType::Q4_0);
  EXPECT_EQ(gguf_matrix_type(DType::Q6_K, 64), DType::Q8_0);
  EXPECT_EQ(gguf_matrix_type(DType::Q8_0, 172), DType::F16);
  EXPECT_EQ(gguf_matrix_type(DType::Q4_K, 512), DType::Q4_K);
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  const std::string d = temp_dir("fallback");
  Checkpoint bin = load_checkpoint(testing::stories260k_path());
  save_gguf(bin, d + "/s.gguf", DType::Q8_0);
  Checkpoint q = load_gguf(d + "/s.gguf");
  EXPECT_EQ(q.tensors.get("model.layers.0.mlp.up_proj.weight", "t").dtype, DType::Q8_0);
  EXPECT_EQ(q.tensors.get("model.layers.0.mlp.down_proj.weight", "t").dtype, DType::F16);  // 172
  fs::remove_all(d);
}

TEST(Formats, TokenizerMetadataRoundTrips) {
  const std::string d = temp_dir("tok");
  ModelConfig c = tiny_config(Arch::Llama);
  nlohmann::json tok = {{"tokenizer.ggml.model", "llama"},
                        {"tokenizer.ggml.tokens",
                         {"<unk>", "<s>", "</s>", "a",
                          "\xe2\x96\x81"
                          "b"}},
                        {"tokenizer.ggml.scores", {0.0, 0.0, 0.0, -1.5, -2.25}},
                        {"tokenizer.ggml.token_type", {2, 3, 3, 1, 1}},
                        {"tokenizer.ggml.merges", nlohmann::json::array()},
                        {"tokenizer.ggml.bos_token_id", 1},
                        {"tokenizer.ggml.eos_token_id", 2},
                        {"tokenizer.ggml.add_bos_token", true}};
  write_gguf(c, random_source(1), d + "/t.gguf", DType::F16, tok);
  Checkpoint g = load_gguf(d + "/t.gguf");
  EXPECT_EQ(g.gguf_tokenizer, tok);
  EXPECT_EQ(g.tensors.get("model.layers.0.mlp.up_proj.weight", "t").dtype, DType::F16);
  // Llama-3 rope scaling survives through rope_freqs.weight + metadata.
  c.rope_scaling.enabled = true;
  c.rope_scaling.factor = 32;
  c.rope_theta = 500000.f;
  write_gguf(c, random_source(1), d + "/r.gguf", DType::F32, nullptr);
  Checkpoint r = load_gguf(d + "/r.gguf");
  EXPECT_TRUE(r.config.rope_scaling.enabled);
  EXPECT_FLOAT_EQ(r.config.rope_scaling.factor, 32.f);
  EXPECT_FALSE(r.tensors.has("rope_freqs.weight"));
  fs::remove_all(d);
}

TEST(Formats, RandomModelIsDeterministicAndShaped) {
  const std::string d = temp_dir("rand");
  ModelConfig c = ModelConfig::preset("stories260K");
  write_hf_dir(c, random_source(11), d + "/a", DType::F32);
  write_hf_dir(c, random_source(11), d + "/b", DType::F32);
  write_hf_dir(c, random_source(12), d + "/c", DType::BF16);
  EXPECT_EQ(read_bytes(d + "/a/model.safetensors"), read_bytes(d + "/b/model.safetensors"));
  Checkpoint a = load_checkpoint(d + "/a");
  Checkpoint cc = load_checkpoint(d + "/c");
  validate_tensors(a);
  const Tensor& n = a.tensors.get("model.norm.weight", "t");
  EXPECT_EQ(reinterpret_cast<const float*>(n.data)[5], 1.f);
  Tensor e = to_f32(a.tensors.get("model.embed_tokens.weight", "t"));
  double s = 0, ss = 0;
  const float* p = reinterpret_cast<const float*>(e.data);
  for (int64_t i = 0; i < e.numel(); ++i) s += p[i], ss += p[i] * double(p[i]);
  EXPECT_NEAR(s / e.numel(), 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(ss / e.numel()), 0.02, 1e-3);
  EXPECT_EQ(cc.tensors.get("model.embed_tokens.weight", "t").dtype, DType::BF16);
  fs::remove_all(d);
}

TEST(Formats, TensorWalkNames) {
  EXPECT_EQ(hf_to_gguf_name("model.layers.12.self_attn.o_proj.weight"),
            "blk.12.attn_output.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.3.ffn_gate.weight"), "model.layers.3.mlp.gate_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.x.ffn_gate.weight"), "");
  EXPECT_EQ(hf_to_gguf_name("model.rotary_emb.inv_freq"), "");
  const auto specs = model_tensor_specs(tiny_config(Arch::Qwen2));
  EXPECT_EQ(specs.size(), 1u + 2u * 12u + 1u + 1u);
}

}  // namespace
}  // namespace edgellm
