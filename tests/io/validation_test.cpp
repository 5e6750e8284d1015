// Validation at the boundary: config.json numbers read at full width (the message shows the value
// as written), metadata that contradicts the tensors refused, NaN/Inf weights reported by tensor
// name at load.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/model_writer.h"
#include "io_test_util.h"
#include "model/model.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

class HfValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("hf_valid");
    write_hf_dir(tiny_config(Arch::Llama), random_source(1), dir_ + "/m", DType::F32);
    cfg_ = nlohmann::json::parse(read_file(dir_ + "/m/config.json"));
  }
  void TearDown() override { fs::remove_all(dir_); }
  void load_with(const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = cfg_;
    j[key] = v;
    write_file_atomic(dir_ + "/m/config.json", j.dump());
    load_hf_dir(dir_ + "/m");
  }
  std::string dir_;
  nlohmann::json cfg_;
};

TEST_F(HfValidation, IntegersAreCheckedBeforeNarrowingAndShownAsWritten) {
  load_hf_dir(dir_ + "/m");  // as written: fine
  // 2^32 + 64 narrows to 64, the real hidden size: it must not load as a valid model.
  expect_error([&] { load_with("hidden_size", 4294967360ull); },
               {"config.json", "hidden_size", "4294967360"});
  expect_error([&] { load_with("hidden_size", 64.5); },
               {"config.json", "hidden_size", "integer", "64.5"});
  expect_error([&] { load_with("hidden_size", "64"); }, {"hidden_size", "\"64\""});
  expect_error([&] { load_with("num_attention_heads", -4); }, {"num_attention_heads", "-4"});
  expect_error([&] { load_with("vocab_size", 1e300); }, {"vocab_size", "1e+300"});
  expect_error([&] { load_with("rms_norm_eps", -1); }, {"rms_norm_eps", "-1"});
  expect_error([&] { load_with("bos_token_id", 2147483648ull); }, {"bos_token_id", "2147483648"});
  expect_error([&] { load_with("tie_word_embeddings", 1); },
               {"tie_word_embeddings", "true or false"});
  // Sizes per-layer arrays before any tensor is counted: bounded (fuzzing found 17 GB asked for).
  expect_error([&] { load_with("num_hidden_layers", 2147483647); },
               {"num_hidden_layers", "2147483647", "65536"});
  // An integral float is the same number.
  load_with("hidden_size", 64.0);
}

TEST_F(HfValidation, ConfigDisagreeingWithTheTensorLayersIsRefused) {
  // Fewer layers than the file holds: used to load a silently truncated model.
  expect_error([&] { load_with("num_hidden_layers", 1); },
               {"model.layers.1.", "layer 1", "declares 1 layers"});
  // More layers than the file holds.
  expect_error([&] { load_with("num_hidden_layers", 3); }, {"missing tensor 'model.layers.2."});
}

TEST_F(HfValidation, TensorDuplicatedAcrossShardsIsRefused) {
  const std::string m = dir_ + "/m";
  fs::rename(m + "/model.safetensors", m + "/model-00001-of-00002.safetensors");
  fs::copy_file(m + "/model-00001-of-00002.safetensors", m + "/model-00002-of-00002.safetensors");
  nlohmann::json idx;
  idx["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  idx["weight_map"]["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_file_atomic(m + "/model.safetensors.index.json", idx.dump());
  expect_error([&] { load_hf_dir(m); },
               {"model-00002-of-00002.safetensors", "more than one shard"});
}

// Regression for a fuzzer finding (tools/fuzz.sh, fuzz_gguf): a block_count near 2^31 made the
// reader allocate a per-layer array of 17+ GB before looking at the tensors.
TEST(GgufValidation, HugeBlockCountIsRefusedBeforeAllocating) {
  const std::string d = temp_dir("gguf_blocks");
  write_gguf(tiny_config(Arch::Llama), random_source(1), d + "/m.gguf", DType::F32, nullptr);
  std::vector<uint8_t> b = read_bytes(d + "/m.gguf");
  const std::string key = "llama.block_count";
  const size_t at = find_bytes(b, key);
  ASSERT_NE(at, std::string::npos);
  // key bytes, then u32 value type (4 = u32), then the value.
  for (uint32_t v : {1073741824u, 2147483647u, 100u}) {
    put<uint32_t>(b, at + key.size() + 4, v);
    write_bytes(d + "/bad.gguf", b);
    expect_error([&] { load_gguf(d + "/bad.gguf"); },
                 {"bad.gguf", "block_count", std::to_string(v)});
  }
  fs::remove_all(d);
}

// Regression for a fuzzer finding (FUZZ_RUNS=1000000 tools/fuzz.sh, fuzz_gguf after 834,492
// executions): a string key stored with another type made json::value throw the library's raw
// type_error. The u32 key llama.context_length (20 characters, like general.architecture) is
// renamed to general.architecture and the real one out of the way.
TEST(GgufValidation, NonStringArchitectureIsAnErrorNamingTheKey) {
  const std::string d = temp_dir("gguf_arch");
  write_gguf(tiny_config(Arch::Llama), random_source(1), d + "/m.gguf", DType::F32, nullptr);
  std::vector<uint8_t> b = read_bytes(d + "/m.gguf");
  const std::string arch = "general.architecture", ctx = "llama.context_length";
  ASSERT_EQ(arch.size(), ctx.size());
  const size_t a = find_bytes(b, arch), c = find_bytes(b, ctx);
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  std::memcpy(&b[a], "general.architecturX", arch.size());
  std::memcpy(&b[c], arch.data(), arch.size());
  write_bytes(d + "/bad.gguf", b);
  expect_error([&] { load_gguf(d + "/bad.gguf"); },
               {"bad.gguf", "general.architecture", "not a string"});
  fs::remove_all(d);
}

// A checkpoint with one value of `name` replaced by v (as stored in `dt`).
Checkpoint poisoned(const Checkpoint& ck, const std::string& name, int64_t index, float v,
                    DType dt) {
  Checkpoint out = ck;
  Tensor& t = out.tensors.mutable_get(name);
  Tensor f = to_f32(t);
  std::vector<float> vals(static_cast<size_t>(f.numel()));
  std::memcpy(vals.data(), f.data, f.nbytes);
  vals[static_cast<size_t>(index)] = v;
  Tensor src = make_owned_tensor(name, DType::F32, t.shape);
  std::memcpy(const_cast<uint8_t*>(src.data), vals.data(), f.nbytes);
  t = dt == DType::F32 ? src : convert_tensor(src, dt);
  return out;
}

TEST(NonFiniteWeights, AreReportedWithTensorNameAndElementAtModelLoad) {
  ModelConfig c = tiny_config(Arch::Llama);
  const std::string d = temp_dir("nan_w");
  write_hf_dir(c, random_source(2), d + "/m", DType::F32);
  const Checkpoint ck = load_hf_dir(d + "/m");
  Model ok(ck);                                                 // clean weights load
  const std::string w = "model.layers.1.mlp.down_proj.weight";  // [64, 96]
  expect_error([&] { Model m(poisoned(ck, w, 96 * 3 + 5, NAN, DType::F32)); },
               {"model.layers.1.mlp.down_proj.weight", "non-finite", "nan", "row 3, column 5"});
  expect_error([&] { Model m(poisoned(ck, "model.norm.weight", 7, INFINITY, DType::F32)); },
               {"model.norm.weight", "inf", "element 7"});
  // Stored types: the f16/bf16 exponent, and a block's f16 scale (Inf encodes as an Inf scale).
  expect_error([&] { Model m(poisoned(ck, w, 100, -INFINITY, DType::F16)); },
               {"down_proj", "element 100"});
  expect_error([&] { Model m(poisoned(ck, w, 100, NAN, DType::BF16)); },
               {"down_proj", "element 100"});
  // Q8_0: an Inf scale in the first block of row 1 (row = 3 blocks of 34 bytes).
  Checkpoint q = poisoned(ck, w, 0, 0.5f, DType::Q8_0);
  Tensor& qt = q.tensors.mutable_get(w);
  const uint16_t inf16 = 0x7c00;
  std::memcpy(const_cast<uint8_t*>(qt.data) + 102, &inf16, 2);
  expect_error([&] { Model m(q); }, {"down_proj", "element 96", "row 1, column 0"});
  fs::remove_all(d);
}

}  // namespace
}  // namespace edgellm
