// Malformed inputs: every one must throw edgellm::Error naming the file, the field and the value
// (never crash, never read out of bounds; this suite also runs under ASan/UBSan).
#include <filesystem>

#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "io/safetensors.h"
#include "io_test_util.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

// A safetensors file from a header JSON string and `data_bytes` zero bytes of data.
std::string make_st(const std::string& dir, const std::string& header, size_t data_bytes,
                    const std::string& name = "model.safetensors") {
  std::vector<uint8_t> b(8);
  put<uint64_t>(b, 0, header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  const std::string p = dir + "/" + name;
  write_bytes(p, b);
  return p;
}

TEST(BadInput, SafetensorsHeaders) {
  const std::string d = temp_dir("bad_st");
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  EXPECT_EQ(read_safetensors(make_st(d, ok, 16)).size(), 1u);
  // Header length past EOF.
  {
    std::vector<uint8_t> b(8);
    put<uint64_t>(b, 0, 1000);
    write_bytes(d + "/len.safetensors", b);
    expect_error([&] { read_safetensors(d + "/len.safetensors"); },
                 {"len.safetensors", "header length 1000"});
  }
  // Truncated before the length field.
  write_bytes(d + "/short.safetensors", {1, 2, 3});
  expect_error([&] { read_safetensors(d + "/short.safetensors"); },
               {"short.safetensors", "truncated", "header length"});
  expect_error([&] { read_safetensors(make_st(d, "{not json", 0)); },
               {"model.safetensors", "not valid JSON"});
  expect_error([&] { read_safetensors(make_st(d, "[1,2]", 0)); }, {"not a JSON object"});
  // Offsets outside the file.
  expect_error(
      [&] {
        read_safetensors(
            make_st(d, R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 8));
      },
      {"model.safetensors", "tensor 'a'", "data_offsets", "[0, 16]", "past the end"});
  // Size disagreeing with shape.
  expect_error(
      [&] {
        read_safetensors(
            make_st(d, R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", 16));
      },
      {"tensor 'a'", "needs 24"});
  // Overlap.
  expect_error(
      [&] {
        read_safetensors(make_st(d,
                                 R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                 16));
      },
      {"overlap", "'a'", "'b'"});
  // Unknown dtype.
  expect_error(
      [&] {
        read_safetensors(
            make_st(d, R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 16));
      },
      {"tensor 'a'", "dtype", "'F64'"});
  expect_error(
      [&] {
        read_safetensors(
            make_st(d, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8));
      },
      {"tensor 'a'", "invalid dimension", "[-2]"});
  expect_error(
      [&] {
        read_safetensors(make_st(d, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", 8));
      },
      {"tensor 'a'", "data_offsets"});
  fs::remove_all(d);
}

TEST(BadInput, HfDirectory) {
  const std::string d = temp_dir("bad_hf");
  ModelConfig c = tiny_config(Arch::Llama);
  write_hf_dir(c, random_source(1), d + "/m", DType::F32);
  validate_tensors(load_hf_dir(d + "/m"));
  // Invalid config.json.
  write_file_atomic(d + "/m/config.json", "{\"hidden_size\": 64,");
  expect_error([&] { load_hf_dir(d + "/m"); }, {"config.json", "not valid JSON"});
  // Config disagreeing with the tensors: intermediate_size 100 instead of 96.
  nlohmann::json cfg = c.to_hf_json();
  cfg["intermediate_size"] = 100;
  write_file_atomic(d + "/m/config.json", cfg.dump());
  expect_error([&] { load_hf_dir(d + "/m"); }, {d + "/m", "model.layers.0.mlp.gate_proj.weight",
                                                "expected shape [100, 64]", "found [96, 64]"});
  // Missing tensor: untied config but no lm_head in the file.
  cfg = c.to_hf_json();
  write_file_atomic(d + "/m/config.json", cfg.dump());
  auto st = read_bytes(d + "/m/model.safetensors");
  const size_t at = find_bytes(st, "lm_head.weight");
  ASSERT_NE(at, std::string::npos);
  st[at] = 'X';  // rename the tensor
  write_bytes(d + "/m/model.safetensors", st);
  expect_error([&] { load_hf_dir(d + "/m"); },
               {d + "/m", "missing tensor 'lm_head.weight'", "[40, 64]"});
  // No weights at all / no config.
  fs::remove(d + "/m/model.safetensors");
  expect_error([&] { load_hf_dir(d + "/m"); }, {"no model.safetensors"});
  fs::remove(d + "/m/config.json");
  expect_error([&] { load_checkpoint(d + "/m"); }, {"missing config.json"});
  // Shard index naming a file outside the directory, and invalid index JSON.
  write_file_atomic(d + "/m/config.json", cfg.dump());
  write_file_atomic(d + "/m/model.safetensors.index.json",
                    R"({"weight_map":{"a":"../../etc/passwd"}})");
  expect_error([&] { load_hf_dir(d + "/m"); }, {"index.json", "outside the directory"});
  write_file_atomic(d + "/m/model.safetensors.index.json", "{");
  expect_error([&] { load_hf_dir(d + "/m"); }, {"index.json", "not valid JSON"});
  fs::remove_all(d);
}

class BadGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir("bad_gguf");
    good = dir + "/good.gguf";
    write_gguf(tiny_config(Arch::Llama), random_source(2), good, DType::F32, nullptr);
    bytes = read_bytes(good);
    bad = dir + "/bad.gguf";
  }
  void TearDown() override { fs::remove_all(dir); }
  // Offset of the type field of tensor `name`'s info (name string, n_dims, 2 dims, type).
  size_t info_type_offset(const std::string& name) {
    const size_t at = find_bytes(bytes, "blk.0." + name);
    EXPECT_NE(at, std::string::npos);
    return at + ("blk.0." + name).size() + 4 + 16;
  }
  void expect(const std::vector<uint8_t>& b, std::vector<std::string> needles) {
    write_bytes(bad, b);
    needles.push_back(bad);
    expect_error([&] { load_checkpoint(bad); }, needles);
  }
  std::string dir, good, bad;
  std::vector<uint8_t> bytes;
};

TEST_F(BadGguf, GoodFileLoads) { validate_tensors(load_gguf(good)); }

TEST_F(BadGguf, BadMagicAndVersion) {
  auto b = bytes;
  b[3] = 'X';  // "GGUX" is not GGUF: falls to the llama2.c reader, whose size check fails.
  write_bytes(bad, b);
  expect_error([&] { load_gguf(bad); }, {bad, "bad magic", "47 47 55 58"});
  b = bytes;
  put<uint32_t>(b, 4, 1);
  expect(b, {"version 1"});
}

TEST_F(BadGguf, AbsurdCounts) {
  auto b = bytes;
  put<uint64_t>(b, 8, uint64_t{1} << 60);
  expect(b, {"n_tensors 1152921504606846976"});
  b = bytes;
  put<uint64_t>(b, 16, uint64_t{1} << 60);
  expect(b, {"n_kv 1152921504606846976"});
  // First key's string length (at offset 24) past EOF.
  b = bytes;
  put<uint64_t>(b, 24, uint64_t{1} << 40);
  expect(b, {"metadata key", "string length 1099511627776"});
}

TEST_F(BadGguf, UnknownTypes) {
  auto b = bytes;
  put<uint32_t>(b, info_type_offset("attn_q.weight"), 41);
  expect(b, {"tensor 'blk.0.attn_q.weight'", "ggml type 41"});
  // Metadata value type: the one after "general.architecture".
  b = bytes;
  const size_t k = find_bytes(b, "general.architecture");
  put<uint32_t>(b, k + 20, 99);
  expect(b, {"key 'general.architecture'", "value type 99"});
}

TEST_F(BadGguf, TensorDataOutOfRange) {
  auto b = bytes;
  const size_t off = info_type_offset("attn_k.weight") + 4;
  put<uint64_t>(b, off, uint64_t{1} << 40);
  expect(b, {"tensor 'blk.0.attn_k.weight'", "past the end"});
  b = bytes;
  uint64_t o;
  std::memcpy(&o, b.data() + off, 8);
  put<uint64_t>(b, off, o + 1);
  expect(b, {"tensor 'blk.0.attn_k.weight'", "not a multiple of the alignment 32"});
  // Truncated file: half of it.
  b.assign(bytes.begin(), bytes.begin() + bytes.size() / 2);
  expect(b, {"past the end"});
  b.assign(bytes.begin(), bytes.begin() + 40);
  expect(b, {"n_tensors 21 exceeds what the file can hold"});
}

TEST_F(BadGguf, ShapesAndArchitecture) {
  // Claim 3 layers: blk.2.* are missing.
  auto b = bytes;
  const size_t k = find_bytes(b, "llama.block_count");
  put<uint32_t>(b, k + 17 + 4, 3);
  expect(b, {"missing tensor 'model.layers.2.input_layernorm.weight'"});
  // Wrong dimension of a tensor (ne[0] of attn_q 64 -> 32: size shrinks, shape disagrees).
  b = bytes;
  put<uint64_t>(b, info_type_offset("attn_q.weight") - 16, 32);
  expect(b,
         {"model.layers.0.self_attn.q_proj.weight", "expected shape [64, 64]", "found [64, 32]"});
  // Unknown architecture (same length to keep the layout).
  b = bytes;
  const size_t a = find_bytes(b, "llama");
  std::memcpy(b.data() + a, "gpt2x", 5);
  expect(b, {"general.architecture 'gpt2x'"});
}

}  // namespace
}  // namespace edgellm
