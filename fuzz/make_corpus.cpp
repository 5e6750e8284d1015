// Seed corpora for the fuzz harnesses, written by edgellm's own writers (and, for the two
// formats edgellm only reads, llama2.c .bin and tokenizer.bin, and for tokenizer.json, by the
// byte layouts documented in docs/formats.md and docs/tokenizers.md): no third-party files.
//
//   make_corpus OUT_DIR     -> OUT_DIR/{gguf,safetensors,llama2c,tokenizer_bin,tokenizer_json,
//                                        config_json,adapter_config}/seed-*
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "compress/compress_model.h"
#include "hwsim/device.h"
#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "seed_formats.h"
#include "tokenizer/tokenizer.h"
#include "util/mapped_file.h"

namespace fs = std::filesystem;
using namespace edgellm;

namespace {

using fuzz::append;
using fuzz::tokenizer_bin;

ModelConfig tiny(Arch arch, int dim, int ff, int vocab) {
  ModelConfig c;
  c.arch = arch;
  c.dim = dim, c.hidden_dim = ff, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1;
  c.head_dim = dim / 2, c.vocab_size = vocab, c.max_seq_len = 16;
  c.qkv_bias = arch == Arch::Qwen2;
  c.bos_id = 1, c.eos_id = 2;
  c.layers.assign(1, {});
  return c;
}

void put_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
// A byte-level BPE tokenizer.json (the Llama-3 / GPT-2 layout): 256 byte symbols, a few merges,
// one special token.
std::string tokenizer_json() {
  // GPT-2's byte-to-unicode map: printable bytes map to themselves, the rest to U+0100 + n.
  std::vector<std::string> sym(256);
  int n = 0;
  auto utf8 = [](int cp) {
    std::string o;
    if (cp < 0x80) {
      o += static_cast<char>(cp);
    } else {
      o += static_cast<char>(0xC0 | (cp >> 6));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return o;
  };
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    sym[b] = utf8(keep ? b : 256 + n++);
  }
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[sym[b]] = b;
  const std::string sp = sym[' '];
  const std::vector<std::pair<std::string, std::string>> merges = {
      {sp, "t"}, {"h", "e"}, {sp + "t", "he"}, {sp, "a"}, {"a", "n"}};
  nlohmann::json m = nlohmann::json::array();
  for (const auto& [a, b] : merges) {
    vocab[a + b] = static_cast<int>(vocab.size());
    m.push_back(a + " " + b);
  }
  const int special = static_cast<int>(vocab.size());
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", special},
         {"content", "<|endoftext|>"},
         {"special", true},
         {"single_word", false},
         {"lstrip", false},
         {"rstrip", false},
         {"normalized", false}}}},
      {"normalizer", nullptr},
      // GPT-2's pre-tokenizer: ByteLevel with its built-in regex (tokenizer.ggml.pre "gpt-2").
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", m}}}};
  return j.dump();
}

// llama2.c legacy .bin: 7 i32 (dim, hidden, layers, heads, kv heads, vocab (< 0: untied),
// seq_len), then the f32 arrays in run.c's order (docs/formats.md).
std::string llama2c_bin(bool tied) {
  const int C = 8, FF = 16, L = 1, NH = 2, KV = 2, V = 8, S = 4, HD = C / NH;
  std::string s;
  for (int v : {C, FF, L, NH, KV, tied ? V : -V, S}) append<int32_t>(s, v);
  const int64_t n = int64_t{V} * C + L * C + L * C * C + 2 * L * KV * HD * C + L * C * C + L * C +
                    3 * L * FF * C + C + 2 * S * (HD / 2) + (tied ? 0 : V * C);
  for (int64_t i = 0; i < n; ++i) append<float>(s, 0.01f * static_cast<float>(i % 97) - 0.4f);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"gguf", "safetensors", "llama2c", "tokenizer_bin", "tokenizer_json",
                        "config_json", "adapter_config", "alpaca", "mmlu_csv", "device_preset",
                        "pipeline_config", "compressed_model"})
    fs::create_directories(out / d);
  const fs::path tmp = out / "tmp";
  fs::create_directories(tmp);

  put_bytes((out / "tokenizer_bin/seed-0").string(), tokenizer_bin());
  put_bytes((tmp / "tokenizer.bin").string(), tokenizer_bin());
  put_bytes((out / "tokenizer_json/seed-0").string(), tokenizer_json());
  put_bytes((tmp / "tokenizer.json").string(), tokenizer_json());
  put_bytes((out / "llama2c/seed-tied").string(), llama2c_bin(true));
  put_bytes((out / "llama2c/seed-untied").string(), llama2c_bin(false));

  // GGUF: both architectures, scalar and block types, both tokenizer kinds.
  const nlohmann::json spm = tokenizer_to_gguf(*load_tokenizer((tmp / "tokenizer.bin").string()));
  const nlohmann::json bpe = tokenizer_to_gguf(*load_tokenizer((tmp / "tokenizer.json").string()));
  int k = 0;
  for (auto [arch, dt, meta] :
       {std::tuple{Arch::Llama, DType::F32, &spm}, std::tuple{Arch::Qwen2, DType::F16, &bpe},
        std::tuple{Arch::Llama, DType::Q8_0, &spm}, std::tuple{Arch::Llama, DType::Q4_K, &spm},
        std::tuple{Arch::Qwen2, DType::Q6_K, &bpe}}) {
    const int dim = dtype_block_size(dt) > 32 ? 256 : 32;
    const ModelConfig c =
        tiny(arch, dim, dim, static_cast<int>((*meta)["tokenizer.ggml.tokens"].size()));
    write_gguf(c, random_source(1), (out / ("gguf/seed-" + std::to_string(k++))).string(), dt,
               *meta);
  }
  ModelConfig scaled = tiny(Arch::Llama, 32, 32, 270);
  scaled.rope_scaling.enabled = true;
  scaled.rope_scaling.factor = 8;
  scaled.rope_scaling.original_max_position_embeddings = 8;
  write_gguf(scaled, random_source(2), (out / "gguf/seed-rope").string(), DType::BF16, spm);

  // safetensors: a model file in each dtype, an adapter, a trainer-checkpoint-like file.
  k = 0;
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const fs::path d = tmp / ("hf" + std::to_string(k));
    write_hf_dir(tiny(k == 1 ? Arch::Qwen2 : Arch::Llama, 16, 16, 8), random_source(3), d.string(),
                 dt);
    fs::copy_file(d / "model.safetensors", out / ("safetensors/seed-model-" + std::to_string(k)));
    fs::copy_file(d / "config.json", out / ("config_json/seed-" + std::to_string(k)));
    ++k;
  }
  for (const std::string& name : ModelConfig::preset_names())
    put_bytes((out / ("config_json/seed-" + name)).string(),
              ModelConfig::preset(name).to_hf_json().dump(2));
  const ModelConfig ac = [] {
    ModelConfig c = tiny(Arch::Llama, 64, 96, 40);
    c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.max_seq_len = 128;
    c.layers.assign(2, {});
    return c;
  }();
  LoraConfig lc;
  lc.rank = 2;
  LoraAdapters ad(ac, lc);
  ad.init_peft(4);
  ad.save((tmp / "adapter").string(), "tiny");
  fs::copy_file(tmp / "adapter/adapter_model.safetensors", out / "safetensors/seed-adapter");
  fs::copy_file(tmp / "adapter/adapter_config.json", out / "adapter_config/seed-0");
  lc.layers = {1};
  lc.targets = lora_targets_from_list("q,v", "seed");
  LoraAdapters ad2(ac, lc);
  ad2.save((tmp / "adapter2").string(), "tiny");
  fs::copy_file(tmp / "adapter2/adapter_config.json", out / "adapter_config/seed-1");
  write_safetensors_f32(
      (out / "safetensors/seed-state").string(),
      {{"params", {6}, {1, 2, 3, 4, 5, 6}}, {"adam", {12}, std::vector<float>(12)}});
  // Alpaca: the first byte picks the layout (even: .json array, odd: .jsonl).
  const std::string rec1 = R"({"instruction": "Name a color.", "input": "", "output": "Blue."})";
  const std::string rec2 =
      R"({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"})";
  put_bytes((out / "alpaca/seed-json").string(), "\x00[" + rec1 + ",\n" + rec2 + "]");
  put_bytes((out / "alpaca/seed-jsonl").string(), "\x01" + rec1 + "\n" + rec2 + "\n");
  // MMLU: ../shared/data/mmlu's layout (header, answer index) and hendrycks' (no header, letter).
  put_bytes((out / "mmlu_csv/seed-header").string(),
            "question,A,B,C,D,answer\n\"What is 2+2, in words?\",three,four,five,\"six, or "
            "\"\"6\"\"\"\n,a,b,c,d,1\r\nWhich?,x,y,z,w,3\n");
  put_bytes((out / "mmlu_csv/seed-letters").string(),
            "What is 2+2?,3,4,5,6,B\nPick one.,\"a\nb\",c,d,e,D\n");
  // Device presets: every embedded one, exactly as `sim` reads presets/devices/*.json.
  for (const std::string& name : hwsim::Device::preset_names())
    put_bytes((out / ("device_preset/seed-" + name)).string(), hwsim::Device::preset_json(name));
  // Pipeline configs: the first byte picks the syntax (even: JSON, odd: TOML).
  put_bytes((out / "pipeline_config/seed-empty-json").string(), std::string(1, '\0') + "{}");
  put_bytes(
      (out / "pipeline_config/seed-json").string(),
      std::string(1, '\0') +
          R"({"name": "s", "model": {"path": "m"}, "task": {"kind": "synthetic", "n_train": 10},
"compress": {"policy": "uniform", "bits": 4, "sparsity": 0.5}, "tune": {"steps": 3, "exits": [1, 2]}})");
  put_bytes((out / "pipeline_config/seed-toml").string(),
            "\x01name = \"s\"\n[model]\npath = \"m\"\n[compress]\nbits = 4\nsparsity = 0.5\n"
            "[tune]\nsteps = 3\nexits = [1, 2]\n");
  // Compressed models: one random layer in several packed formats (dense, bitmask, N:M).
  const fs::path dense = tmp / "compress-src";
  write_hf_dir(fuzz::compressed_seed_config(), random_source(4), dense.string(), DType::F32);
  const Checkpoint src = load_hf_dir(dense.string());
  k = 0;
  for (auto [bits, group, scheme, pruner, p, n, m] :
       {std::tuple{4, 0, QuantScheme::Sym, Pruner::None, 0.0, 0, 0},
        std::tuple{3, 32, QuantScheme::Asym, Pruner::Magnitude, 0.5, 0, 0},
        std::tuple{8, 64, QuantScheme::Sym, Pruner::Magnitude, 0.0, 2, 4},
        std::tuple{16, 0, QuantScheme::Sym, Pruner::Magnitude, 0.7, 0, 0}}) {
    CompressSpec spec;
    spec.bits = bits, spec.group = group, spec.scheme = scheme, spec.pruner = pruner;
    spec.sparsity.p = p, spec.sparsity.n = n, spec.sparsity.m = m;
    const fs::path d = tmp / ("compressed" + std::to_string(k));
    write_compressed_model(src, uniform_plan(spec), d.string());
    fs::copy_file(d / "model.safetensors", out / ("compressed_model/seed-" + std::to_string(k++)));
  }
  fs::remove_all(tmp);
  return 0;
}
