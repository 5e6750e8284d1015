// Our GGUF output read by parsers other than our own reader, key by key: llama.cpp refuses a file
// whose keys have other types than the ones it expects ("key tokenizer.ggml.bos_token_id has
// wrong type i32 but expected type u32"), and our round-trip tests could not see that because
// our reader accepts any integer type. The expected types below are written from the GGUF spec
// (ggml docs/gguf.md) and llama.cpp's loader, independently of src/io/gguf.cpp's table.
//
// Two independent readers: a minimal one in this file (always runs) and @huggingface/gguf
// (tests/conformance, pinned in package-lock.json; skipped when node or the package is absent:
// run bash tests/conformance/setup.sh).
#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "eval/model_files.h"
#include "io/io_test_util.h"
#include "io/model_writer.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

// GGUF value types (spec): the numbers are the file format's.
enum : int { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

struct Want {
  int type, elem = -1;
};

// The spec's (and llama.cpp's) type for every key we may write. Counts: the spec says uint64
// but recommends readers accept uint32 too; llama.cpp accepts only uint32 (its hparams are
// uint32_t and its loader checks the type exactly), and its own converter writes uint32.
std::map<std::string, Want> expected_types(const std::string& arch) {
  std::map<std::string, Want> w = {
      {"general.architecture", {STRING}},
      {"general.name", {STRING}},
      {"general.alignment", {U32}},
      {"general.file_type", {U32}},
      {"general.quantization_version", {U32}},
      {"tokenizer.ggml.model", {STRING}},
      {"tokenizer.ggml.pre", {STRING}},
      {"tokenizer.ggml.tokens", {ARRAY, STRING}},
      {"tokenizer.ggml.scores", {ARRAY, F32}},
      {"tokenizer.ggml.token_type", {ARRAY, I32}},
      {"tokenizer.ggml.merges", {ARRAY, STRING}},
      {"tokenizer.ggml.bos_token_id", {U32}},
      {"tokenizer.ggml.eos_token_id", {U32}},
      {"tokenizer.ggml.unknown_token_id", {U32}},
      {"tokenizer.ggml.separator_token_id", {U32}},
      {"tokenizer.ggml.padding_token_id", {U32}},
      {"tokenizer.ggml.add_bos_token", {BOOL}},
      {"tokenizer.ggml.add_eos_token", {BOOL}},
      {"tokenizer.ggml.add_space_prefix", {BOOL}},
      {"tokenizer.ggml.remove_extra_whitespaces", {BOOL}},
  };
  for (const char* k :
       {"context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
        "attention.head_count", "attention.head_count_kv", "attention.key_length",
        "attention.value_length", "rope.dimension_count", "rope.scaling.original_context_length"})
    w[arch + "." + k] = {U32};
  for (const char* k : {"attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.scaling.factor",
                        "rope.scaling.low_freq_factor", "rope.scaling.high_freq_factor"})
    w[arch + "." + k] = {F32};
  w[arch + ".rope.scaling.type"] = {STRING};
  return w;
}

// Minimal GGUF metadata walker, written from the spec for this test: key -> (type, elem type,
// scalar integer value if any). Skips values by their sizes; throws on anything unexpected.
struct Kv {
  int type = -1, elem = -1;
  int64_t ivalue = 0;
};
std::map<std::string, Kv> read_kv_types(const std::string& path) {
  const std::vector<uint8_t> b = read_bytes(path);
  size_t p = 0;
  auto need = [&](size_t n) {
    if (b.size() - p < n) throw std::runtime_error("truncated at " + std::to_string(p));
  };
  auto u32 = [&] {
    need(4);
    uint32_t v;
    std::memcpy(&v, &b[p], 4);
    p += 4;
    return v;
  };
  auto u64 = [&] {
    need(8);
    uint64_t v;
    std::memcpy(&v, &b[p], 8);
    p += 8;
    return v;
  };
  auto str = [&] {
    const uint64_t n = u64();
    need(n);
    std::string s(reinterpret_cast<const char*>(&b[p]), n);
    p += n;
    return s;
  };
  const std::array<int, 13> size = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  need(4);
  if (std::memcmp(b.data(), "GGUF", 4) != 0) throw std::runtime_error("magic");
  p = 4;
  if (u32() != 3) throw std::runtime_error("version");
  u64();  // tensors
  const uint64_t n_kv = u64();
  std::map<std::string, Kv> out;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = str();
    Kv kv;
    kv.type = static_cast<int>(u32());
    if (out.count(key)) throw std::runtime_error("duplicate key " + key);
    if (kv.type == STRING) {
      str();
    } else if (kv.type == ARRAY) {
      kv.elem = static_cast<int>(u32());
      const uint64_t n = u64();
      for (uint64_t k = 0; k < n; ++k) {
        if (kv.elem == STRING) {
          str();
        } else if (kv.elem >= 0 && kv.elem < 13 && size[kv.elem] > 0) {
          need(size[kv.elem]);
          p += size[kv.elem];
        } else {
          throw std::runtime_error("array of type " + std::to_string(kv.elem));
        }
      }
    } else if (kv.type >= 0 && kv.type < 13 && size[kv.type] > 0) {
      need(size[kv.type]);
      if (kv.type == U32) std::memcpy(&kv.ivalue, &b[p], 4);  // little-endian host
      p += size[kv.type];
    } else {
      throw std::runtime_error("type " + std::to_string(kv.type));
    }
    out[key] = kv;
  }
  return out;
}

void expect_spec_types(const std::map<std::string, Kv>& got, const std::string& arch,
                       const std::string& who) {
  const auto want = expected_types(arch);
  for (const auto& [key, kv] : got) {
    auto it = want.find(key);
    if (it == want.end()) {
      ADD_FAILURE() << who << ": key '" << key << "' has no expected type in this test";
      continue;
    }
    EXPECT_EQ(kv.type, it->second.type) << who << ": " << key;
    if (it->second.type == ARRAY) {
      EXPECT_EQ(kv.elem, it->second.elem) << who << ": " << key;
    }
  }
}

std::string conformance_dir() { return std::string(EDGELLM_SOURCE_DIR) + "/tests/conformance"; }

// @huggingface/gguf's view of the file, or a reason to skip.
std::string node_dump(const std::string& gguf, nlohmann::json* out) {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node not found";
  if (!fs::exists(conformance_dir() + "/node_modules/@huggingface/gguf/package.json"))
    return "@huggingface/gguf missing: run bash tests/conformance/setup.sh";
  const std::string cmd = "node '" + conformance_dir() + "/gguf_dump.mjs' '" + gguf + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  std::string s;
  std::array<char, 65536> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) s.append(buf.data(), n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  *out = nlohmann::json::parse(s);
  return "";
}

class GgufTypes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::stories260k_path())) GTEST_SKIP() << "stories260K missing";
    dir_ = temp_dir("gguf_types");
    ck_ = load_checkpoint(testing::stories260k_path());
    // The llama2.c vocabulary's GGUF metadata has every kind of key: ids, bools, three arrays.
    tok_meta_ = tokenizer_to_gguf(*load_tokenizer(data_path("models/stories260K/tok512.bin")));
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string dir_;
  Checkpoint ck_;
  nlohmann::json tok_meta_;
};

TEST_F(GgufTypes, EveryKeyHasTheSpecTypeForOurReaderAndAnIndependentOne) {
  const std::string f32 = dir_ + "/m-f32.gguf", q8 = dir_ + "/m-q8.gguf";
  // Token ids built as signed JSON ints (what the tokenizer produces) must still be written u32;
  // a negative id means "none" and is left out.
  nlohmann::json meta = tok_meta_;
  meta["tokenizer.ggml.padding_token_id"] = int{0};
  meta["tokenizer.ggml.separator_token_id"] = int{-1};
  save_gguf(ck_, f32, DType::F32, meta);
  // Quantized output (stories260K's 172-wide FFN does not split into 32-blocks: a tiny shape).
  ModelConfig qc = tiny_config(Arch::Llama);
  qc.vocab_size = ck_.config.vocab_size;
  write_gguf(qc, random_source(1), q8, DType::Q8_0, tok_meta_);
  const std::map<std::string, const ModelConfig*> cfg = {{f32, &ck_.config}, {q8, &qc}};
  for (const std::string& f : {f32, q8}) {
    const auto kv = read_kv_types(f);
    expect_spec_types(kv, "llama", "minimal reader, " + f);
    ASSERT_TRUE(kv.count("tokenizer.ggml.bos_token_id"));
    EXPECT_EQ(kv.at("tokenizer.ggml.bos_token_id").ivalue, 1);  // tok512.bin: <s> = 1
    EXPECT_EQ(kv.at("llama.block_count").ivalue, cfg.at(f)->n_layers);
    EXPECT_EQ(kv.count("tokenizer.ggml.separator_token_id"), 0u) << "negative id must be omitted";
  }
  EXPECT_EQ(read_kv_types(f32).count("general.quantization_version"), 0u);
  EXPECT_EQ(read_kv_types(q8).at("general.quantization_version").ivalue, 2);
  EXPECT_EQ(read_kv_types(f32).at("tokenizer.ggml.padding_token_id").type, U32);

  // The same files through @huggingface/gguf.
  for (const std::string& f : {f32, q8}) {
    nlohmann::json j;
    const std::string why = node_dump(f, &j);
    if (!why.empty()) GTEST_SKIP() << "independent reader: " << why;
    std::map<std::string, Kv> kv;
    for (auto it = j["kv"].begin(); it != j["kv"].end(); ++it) {
      // The package reports the header fields as pseudo-keys; they are not metadata.
      if (it.key() == "version" || it.key() == "tensor_count" || it.key() == "kv_count") continue;
      Kv k;
      k.type = it.value()["type"].get<int>();
      k.elem = it.value().value("subType", -1);
      kv[it.key()] = k;
    }
    EXPECT_EQ(kv.size(), read_kv_types(f).size()) << f;
    expect_spec_types(kv, "llama", "@huggingface/gguf, " + f);
    const ModelConfig& c = *cfg.at(f);
    EXPECT_EQ(j["kv"]["llama.embedding_length"]["value"].get<int>(), c.dim);
    EXPECT_EQ(j["kv"]["tokenizer.ggml.tokens"]["length"].get<int>(), c.vocab_size);
    // Tensor infos: token_embd is [V, C] in our shape convention, ne = [C, V] in GGUF's.
    const Checkpoint back = load_gguf(f);
    EXPECT_EQ(j["tensors"].size(), back.tensors.size()) << f;
    bool seen = false;
    for (const auto& t : j["tensors"])
      if (t["name"] == "token_embd.weight") {
        seen = true;
        // gguf_dump.mjs prints the package's BigInt dimensions as decimal strings.
        EXPECT_EQ(t["ne"], nlohmann::json({std::to_string(c.dim), std::to_string(c.vocab_size)}));
        EXPECT_EQ(t["dtype"].get<int>(), f == q8 ? 8 : 0);  // GGML_TYPE_Q8_0 = 8, F32 = 0
      }
    EXPECT_TRUE(seen);
  }
}

TEST_F(GgufTypes, MetadataThatCannotHaveTheSpecTypeIsRefused) {
  nlohmann::json meta = tok_meta_;
  meta["tokenizer.ggml.bos_token_id"] = 4294967296ull;  // does not fit u32
  expect_error([&] { save_gguf(ck_, dir_ + "/x.gguf", DType::F32, meta); },
               {"tokenizer.ggml.bos_token_id", "4294967296"});
  meta = tok_meta_;
  meta["tokenizer.ggml.add_bos_token"] = 1;
  expect_error([&] { save_gguf(ck_, dir_ + "/x.gguf", DType::F32, meta); },
               {"tokenizer.ggml.add_bos_token", "not a boolean"});
  EXPECT_FALSE(fs::exists(dir_ + "/x.gguf"));
}

}  // namespace
}  // namespace edgellm
