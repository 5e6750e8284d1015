// llama2.c legacy checkpoints: the real stories260K file, and malformed headers / sizes.
#include <cstring>
#include <fstream>

#include "io/checkpoint.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm {
namespace {

using ::edgellm::testing::data_path;
using ::edgellm::testing::temp_dir;

TEST(Llama2c, LoadsStories260K) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  Checkpoint ck = load_llama2c(testing::stories260k_path());
  const ModelConfig& c = ck.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.f);
  EXPECT_EQ(ck.format, CheckpointFormat::Llama2c);
  EXPECT_FALSE(ck.tensors.has("lm_head.weight"));
  // 2 + 9 per layer tensors.
  EXPECT_EQ(ck.tensors.size(), 2u + 9u * 5u);
  const Tensor& wk = ck.tensors.get("model.layers.4.self_attn.k_proj.weight", "test");
  EXPECT_EQ(wk.shape, (std::vector<int64_t>{32, 64}));
  // Offsets: token_embedding starts right after the 28-byte header; layer 0's rms_att right after
  // the 512x64 embedding.
  std::ifstream f(testing::stories260k_path(), std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), {});
  float e0, n0;
  std::memcpy(&e0, raw.data() + 28, 4);
  std::memcpy(&n0, raw.data() + 28 + 512 * 64 * 4, 4);
  float got_e0, got_n0;
  std::memcpy(&got_e0, ck.tensors.get("model.embed_tokens.weight", "t").data, 4);
  std::memcpy(&got_n0, ck.tensors.get("model.layers.0.input_layernorm.weight", "t").data, 4);
  EXPECT_EQ(got_e0, e0);
  EXPECT_EQ(got_n0, n0);
  // The final norm is the last array before the freq_cis tables (2 * 512 * 4 floats).
  float last_norm;
  std::memcpy(&last_norm, raw.data() + raw.size() - 2 * 512 * 4 * 4 - 4, 4);
  float got_last;
  std::memcpy(&got_last, ck.tensors.get("model.norm.weight", "t").data + 63 * 4, 4);
  EXPECT_EQ(got_last, last_norm);
}

// Writes a llama2.c file: header + `floats` zero floats.
std::string write_bin(const std::string& dir, const std::vector<int32_t>& h, size_t floats,
                      size_t extra_bytes = 0) {
  std::string p = dir + "/m.bin";
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(h.data()), h.size() * 4);
  std::vector<char> z(floats * 4 + extra_bytes, 0);
  f.write(z.data(), z.size());
  return p;
}

void expect_error(const std::string& path, std::vector<std::string> needles) {
  try {
    load_llama2c(path);
    FAIL() << "expected an error for " << path;
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}

// dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 5, seq 4 -> counts:
// emb 40 + att 8 + wq 64 + wk 32 + wv 32 + wo 64 + ffn 8 + 3*128 + final 8 + freq 2*4*2.
constexpr size_t kTinyFloats = 40 + 8 + 64 + 32 + 32 + 64 + 8 + 384 + 8 + 16;

TEST(Llama2c, TinyUntiedHead) {
  auto d = temp_dir("l2c");
  auto p = write_bin(d, {8, 16, 1, 2, 1, -5, 4}, kTinyFloats + 40);
  Checkpoint ck = load_llama2c(p);
  EXPECT_FALSE(ck.config.tied_embeddings);
  EXPECT_EQ(ck.config.vocab_size, 5);
  EXPECT_EQ(ck.tensors.get("lm_head.weight", "t").shape, (std::vector<int64_t>{5, 8}));
}

TEST(Llama2c, RejectsBadFiles) {
  auto d = temp_dir("l2c_bad");
  // Truncated header.
  {
    std::string p = d + "/short.bin";
    std::ofstream(p, std::ios::binary).write("\x08\0\0\0", 4);
    expect_error(p, {p, "truncated", "hidden_dim"});
  }
  expect_error(write_bin(d, {8, 16, 1, 2, 1, 5, 4}, kTinyFloats - 1),
               {"m.bin", "file size", "dim=8", "vocab_size=5"});
  expect_error(write_bin(d, {8, 16, 1, 2, 1, 5, 4}, kTinyFloats, 3), {"file size"});
  expect_error(write_bin(d, {8, 16, 0, 2, 1, 5, 4}, kTinyFloats), {"n_layers", "= 0"});
  expect_error(write_bin(d, {8, 16, 1, 3, 1, 5, 4}, kTinyFloats), {"dim 8", "n_heads 3"});
  expect_error(write_bin(d, {8, 16, 1, 2, 1, 5, 1 << 30}, kTinyFloats), {"seq_len", "1073741824"});
  // Huge-but-capped fields must not overflow the size computation.
  expect_error(write_bin(d, {1 << 24, 1 << 24, 4096, 1, 1, 5, 4}, 0), {"file size"});
}

}  // namespace
}  // namespace edgellm
