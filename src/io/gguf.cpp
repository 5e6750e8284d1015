// GGUF v2/v3 (little-endian):
//   "GGUF" u32 version u64 n_tensors u64 n_kv
//   n_kv x (string key, u32 value_type, value)            string = u64 length + bytes
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   padding to general.alignment (default 32), then tensor data at the given offsets.
// ne[0] is the contiguous (innermost) dimension, so shape = reverse(ne). Arch "llama" stores q/k in
// Meta's interleaved RoPE layout (= internal); "qwen2" stores HF's halves layout, permuted here.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "io/tensor_walk.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {

enum GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

constexpr uint32_t kDefaultAlignment = 32;

struct Reader {
  ByteReader r;
  const std::string& path;

  std::string str(const char* field) {
    const uint64_t n = r.read<uint64_t>(field);
    if (n > r.remaining())
      fail("[gguf] {}: {}: string length {} exceeds the {} bytes left in the file", path, field, n,
           r.remaining());
    return r.read_string(n, field);
  }

  nlohmann::json value(uint32_t type, const std::string& key, int depth) {
    switch (type) {
      case kU8:
        return r.read<uint8_t>(key.c_str());
      case kI8:
        return r.read<int8_t>(key.c_str());
      case kU16:
        return r.read<uint16_t>(key.c_str());
      case kI16:
        return r.read<int16_t>(key.c_str());
      case kU32:
        return r.read<uint32_t>(key.c_str());
      case kI32:
        return r.read<int32_t>(key.c_str());
      case kF32:
        return r.read<float>(key.c_str());
      case kBool:
        return r.read<uint8_t>(key.c_str()) != 0;
      case kString:
        return str(key.c_str());
      case kU64:
        return r.read<uint64_t>(key.c_str());
      case kI64:
        return r.read<int64_t>(key.c_str());
      case kF64:
        return r.read<double>(key.c_str());
      case kArray: {
        if (depth > 1) fail("[gguf] {}: key '{}': arrays nested too deeply", path, key);
        const uint32_t et = r.read<uint32_t>(key.c_str());
        const uint64_t n = r.read<uint64_t>(key.c_str());
        // Every element takes at least one byte (strings 8), so n is bounded by what is left.
        const uint64_t min_elem = et == kString ? 8 : et == kArray ? 12 : 1;
        if (n > r.remaining() / min_elem)
          fail("[gguf] {}: key '{}': array count {} exceeds what the file can hold", path, key, n);
        nlohmann::json a = nlohmann::json::array();
        a.get_ref<nlohmann::json::array_t&>().reserve(n);
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(et, key, depth + 1));
        return a;
      }
      default:
        fail("[gguf] {}: key '{}': value type {} unknown", path, key, type);
    }
  }
};

bool dtype_from_ggml(uint32_t t, DType* d) {
  switch (t) {
    case 0:
      *d = DType::F32;
      return true;
    case 1:
      *d = DType::F16;
      return true;
    case 2:
      *d = DType::Q4_0;
      return true;
    case 8:
      *d = DType::Q8_0;
      return true;
    case 12:
      *d = DType::Q4_K;
      return true;
    case 14:
      *d = DType::Q6_K;
      return true;
    case 26:
      *d = DType::I32;
      return true;
    case 30:
      *d = DType::BF16;
      return true;
    default:
      return false;
  }
}

// Llama-3 RoPE factors (what llama.cpp's converter stores in rope_freqs.weight): per frequency
// pair, the divisor applied to the base frequency.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  std::vector<float> f(c.head_dim / 2);
  const double lo_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double hi_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (int i = 0; i < c.head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / c.head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < hi_wavelen) {
      f[i] = 1.f;
    } else if (wavelen > lo_wavelen) {
      f[i] = s.factor;
    } else {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f[i] = static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return f;
}

}  // namespace

uint32_t ggml_type_of(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 8;
    case DType::Q4_K:
      return 12;
    case DType::Q6_K:
      return 14;
    case DType::I32:
      return 26;
    case DType::BF16:
      return 30;
    case DType::U8:
    case DType::Packed:
      break;
  }
  fail("[gguf] dtype {} has no ggml type (packed weights export through gguf_type_for_format)",
       dtype_name(t));
}

Checkpoint load_gguf(const std::string& path) {
  auto file = MappedFile::open(path);
  Reader rd{ByteReader(file->data(), file->size(), path), path};
  ByteReader& r = rd.r;
  const uint8_t* magic = r.take(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0)
    fail("[gguf] {}: bad magic {:02x} {:02x} {:02x} {:02x} (expected 'GGUF')", path, magic[0],
         magic[1], magic[2], magic[3]);
  const uint32_t version = r.read<uint32_t>("version");
  if (version != 2 && version != 3) fail("[gguf] {}: version {} unsupported (2, 3)", path, version);
  const uint64_t n_tensors = r.read<uint64_t>("n_tensors");
  const uint64_t n_kv = r.read<uint64_t>("n_kv");
  // A tensor info is at least 8 (name length) + 4 + 8 + 4 + 8 bytes; a key/value at least 8 + 4
  // + 1.
  if (n_tensors > r.remaining() / 32)
    fail("[gguf] {}: n_tensors {} exceeds what the file can hold", path, n_tensors);
  if (n_kv > r.remaining() / 13)
    fail("[gguf] {}: n_kv {} exceeds what the file can hold", path, n_kv);

  nlohmann::json meta = nlohmann::json::object();
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = rd.str("metadata key");
    const uint32_t type = r.read<uint32_t>("metadata value type");
    if (meta.contains(key)) fail("[gguf] {}: duplicate metadata key '{}'", path, key);
    meta[key] = rd.value(type, key, 0);
  }

  uint32_t alignment = kDefaultAlignment;
  if (meta.contains("general.alignment")) {
    const auto& a = meta["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || a.get<uint64_t>() > (1u << 20) ||
        (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) != 0)
      fail("[gguf] {}: general.alignment {} is not a power of two", path, a.dump());
    alignment = a.get<uint32_t>();
  }

  struct Info {
    std::string name;
    std::vector<int64_t> shape;
    DType dtype;
    uint64_t offset, nbytes;
  };
  std::vector<Info> infos;
  infos.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info in;
    in.name = rd.str("tensor name");
    const uint32_t n_dims = r.read<uint32_t>("tensor n_dims");
    if (n_dims == 0 || n_dims > 4)
      fail("[gguf] {}: tensor '{}': n_dims {} out of range 1..4", path, in.name, n_dims);
    std::vector<uint64_t> ne(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<uint64_t>("tensor dimension");
      if (ne[d] > (uint64_t{1} << 40) || (ne[d] != 0 && numel > (uint64_t{1} << 50) / ne[d]))
        fail("[gguf] {}: tensor '{}': dimension ne[{}] = {} is too large", path, in.name, d, ne[d]);
      numel *= ne[d];
    }
    const uint32_t gt = r.read<uint32_t>("tensor type");
    if (!dtype_from_ggml(gt, &in.dtype))
      fail(
          "[gguf] {}: tensor '{}': ggml type {} unknown or unsupported (F32=0, F16=1, Q4_0=2, "
          "Q8_0=8, Q4_K=12, Q6_K=14, I32=26, BF16=30)",
          path, in.name, gt);
    in.offset = r.read<uint64_t>("tensor offset");
    for (auto it = ne.rbegin(); it != ne.rend(); ++it)
      in.shape.push_back(static_cast<int64_t>(*it));
    if (ne[0] % dtype_block_size(in.dtype) != 0)
      fail("[gguf] {}: tensor '{}': row length {} is not a multiple of the {} block size {}", path,
           in.name, ne[0], dtype_name(in.dtype), dtype_block_size(in.dtype));
    in.nbytes = dtype_row_bytes(in.dtype, static_cast<int64_t>(ne[0])) *
                (numel / std::max<uint64_t>(ne[0], 1));
    if (ne[0] == 0) in.nbytes = 0;
    infos.push_back(std::move(in));
  }
  const uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  if (data_start > file->size())
    fail("[gguf] {}: tensor data would start at {} past the end of the file ({} bytes)", path,
         data_start, file->size());
  const uint64_t data_size = file->size() - data_start;

  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::Gguf;
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < infos.size(); ++i) {
    const Info& in = infos[i];
    if (in.offset % alignment != 0)
      fail("[gguf] {}: tensor '{}': offset {} is not a multiple of the alignment {}", path, in.name,
           in.offset, alignment);
    if (in.offset > data_size || in.nbytes > data_size - in.offset)
      fail("[gguf] {}: tensor '{}': data [{}, {}) past the end of the data section ({} bytes)",
           path, in.name, in.offset, in.offset + in.nbytes, data_size);
    order.emplace_back(in.offset, i);
  }
  std::sort(order.begin(), order.end());
  uint64_t max_end = 0;
  size_t max_i = 0;
  for (const auto& [off, i] : order) {
    if (infos[i].nbytes == 0) continue;
    if (off < max_end)
      fail("[gguf] {}: tensor '{}' data at offset {} overlaps tensor '{}'", path, infos[i].name,
           off, infos[max_i].name);
    if (off + infos[i].nbytes > max_end) max_end = off + infos[i].nbytes, max_i = i;
  }

  // ---- config from metadata ----
  // A string key, "" when absent; any other type is refused naming it (json::value would throw
  // the library's own type_error — a fuzzer finding).
  auto str_field = [&](const std::string& key) -> std::string {
    if (!meta.contains(key)) return {};
    if (!meta[key].is_string())
      fail("[gguf] {}: metadata '{}' is not a string: {}", path, key, meta[key].dump());
    return meta[key].get<std::string>();
  };
  const std::string arch = str_field("general.architecture");
  ModelConfig& c = ck.config;
  if (arch == "llama")
    c.arch = Arch::Llama;
  else if (arch == "qwen2")
    c.arch = Arch::Qwen2;
  else
    fail("[gguf] {}: general.architecture '{}' unsupported (llama, qwen2)", path, arch);
  auto num = [&](const std::string& k, bool required, double dflt) -> double {
    const std::string key = arch + "." + k;
    if (!meta.contains(key)) {
      if (required) fail("[gguf] {}: missing metadata key '{}'", path, key);
      return dflt;
    }
    if (!meta[key].is_number())
      fail("[gguf] {}: metadata '{}' is not a number: {}", path, key, meta[key].dump());
    return meta[key].get<double>();
  };
  auto int_field = [&](const std::string& k, bool required, int dflt) {
    const double v = num(k, required, dflt);
    if (!(v >= 0 && v < 2147483648.0))
      fail("[gguf] {}: metadata '{}.{}' = {} out of range", path, arch, k, v);
    return static_cast<int>(v);
  };
  c.max_seq_len = int_field("context_length", false, 2048);
  c.dim = int_field("embedding_length", true, 0);
  c.n_layers = int_field("block_count", true, 0);
  // Sizes the per-layer config below: bounded before anything is allocated from it (a fuzzed
  // block_count of 2^30 asked for 17 GB). Every layer needs tensors, so the file bounds it too.
  if (c.n_layers > kMaxLayers || static_cast<uint64_t>(c.n_layers) > n_tensors)
    fail("[gguf] {}: {}.block_count = {} exceeds the limit of {} or the file's {} tensors", path,
         arch, c.n_layers, kMaxLayers, n_tensors);
  c.hidden_dim = int_field("feed_forward_length", true, 0);
  c.n_heads = int_field("attention.head_count", true, 0);
  c.n_kv_heads = int_field("attention.head_count_kv", false, c.n_heads);
  c.norm_eps = static_cast<float>(num("attention.layer_norm_rms_epsilon", false, 1e-5));
  c.rope_theta = static_cast<float>(num("rope.freq_base", false, 10000.0));
  c.head_dim = int_field("attention.key_length", false, c.n_heads > 0 ? c.dim / c.n_heads : 0);
  if (int_field("attention.value_length", false, c.head_dim) != c.head_dim)
    fail("[gguf] {}: attention.value_length {} != key_length {} unsupported", path,
         int_field("attention.value_length", false, 0), c.head_dim);
  const int rope_dims = int_field("rope.dimension_count", false, c.head_dim);
  if (rope_dims != c.head_dim)
    fail("[gguf] {}: partial RoPE ({}.rope.dimension_count = {} of head_dim {}) unsupported", path,
         arch, rope_dims, c.head_dim);
  c.qkv_bias = c.arch == Arch::Qwen2;
  const Info* emb = nullptr;
  const Info* rope_freqs = nullptr;
  bool has_output = false;
  for (const Info& in : infos) {
    if (in.name == "token_embd.weight") emb = &in;
    if (in.name == "rope_freqs.weight") rope_freqs = &in;
    if (in.name == "output.weight") has_output = true;
  }
  if (meta.contains(arch + ".vocab_size"))
    c.vocab_size = int_field("vocab_size", true, 0);
  else if (emb && emb->shape.size() == 2)
    c.vocab_size = static_cast<int>(emb->shape[0]);
  else
    fail("[gguf] {}: no {}.vocab_size and no 2-D token_embd.weight to infer it from", path, arch);
  c.tied_embeddings = !has_output;
  for (auto [key, field] : {std::pair{"tokenizer.ggml.bos_token_id", &c.bos_id},
                            std::pair{"tokenizer.ggml.eos_token_id", &c.eos_id}}) {
    if (!meta.contains(key)) continue;
    const auto& v = meta[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail("[gguf] {}: metadata '{}' is not a token id: {}", path, key, v.dump());
    *field = v.get<int>();
  }
  // RoPE scaling: our own keys first; otherwise llama.cpp's rope_freqs.weight table, checked
  // against the Llama-3 formula with the published defaults (low 1, high 4, original 8192).
  const std::string sk = arch + ".rope.scaling.";
  const std::string stype = str_field(sk + "type");
  if (!stype.empty() && stype != "none") {
    if (stype != "llama3") fail("[gguf] {}: {}type '{}' unsupported (llama3)", path, sk, stype);
    c.rope_scaling.enabled = true;
    c.rope_scaling.factor = static_cast<float>(num("rope.scaling.factor", true, 1));
    c.rope_scaling.original_max_position_embeddings =
        int_field("rope.scaling.original_context_length", false, 8192);
    c.rope_scaling.low_freq_factor =
        static_cast<float>(num("rope.scaling.low_freq_factor", false, 1));
    c.rope_scaling.high_freq_factor =
        static_cast<float>(num("rope.scaling.high_freq_factor", false, 4));
  } else if (rope_freqs) {
    if (rope_freqs->dtype != DType::F32 || rope_freqs->shape.size() != 1 ||
        rope_freqs->shape[0] != c.head_dim / 2)
      fail("[gguf] {}: rope_freqs.weight: expected f32 [{}], found {} {}", path, c.head_dim / 2,
           dtype_name(rope_freqs->dtype), fmt::format("[{}]", fmt::join(rope_freqs->shape, ", ")));
    std::vector<float> got(c.head_dim / 2);
    std::memcpy(got.data(), file->data() + data_start + rope_freqs->offset, got.size() * 4);
    c.rope_scaling.enabled = true;
    c.rope_scaling.factor = *std::max_element(got.begin(), got.end());
    const auto want = llama3_rope_factors(c);
    for (size_t i = 0; i < got.size(); ++i)
      if (std::fabs(got[i] - want[i]) > 1e-3f * want[i])
        fail(
            "[gguf] {}: rope_freqs.weight[{}] = {} does not match Llama-3 scaling (factor {}, "
            "low 1, high 4, original 8192 gives {})",
            path, i, got[i], c.rope_scaling.factor, want[i]);
  }
  c.layers.assign(c.n_layers, LayerConfig{});
  c.validate(path);

  for (auto it = meta.begin(); it != meta.end(); ++it)
    if (it.key().rfind("tokenizer.", 0) == 0) ck.gguf_tokenizer[it.key()] = it.value();

  for (const Info& in : infos) {
    if (&in == rope_freqs) continue;
    Tensor t;
    const std::string hf = gguf_to_hf_name(in.name);
    t.name = hf.empty() ? in.name : hf;  // unknown tensors keep their GGUF name
    t.dtype = in.dtype;
    t.shape = in.shape;
    t.nbytes = in.nbytes;
    t.data = file->data() + data_start + in.offset;
    t.owner = file;
    if (ck.tensors.has(t.name)) fail("[gguf] {}: duplicate tensor '{}'", path, in.name);
    ck.tensors.add(std::move(t));
  }
  validate_tensors(ck);
  if (c.arch == Arch::Qwen2)
    for (const TensorSpec& s : model_tensor_specs(c))
      if (s.rope_heads > 0) {
        Tensor& t = ck.tensors.mutable_get(s.name);
        t = permute_hf_to_interleaved(t, s.rope_heads);
      }
  return ck;
}

// ---- writer -------------------------------------------------------------------------------------

namespace {

class GgufWriter {
 public:
  explicit GgufWriter(std::string* out) : o_(out) {}
  template <typename T>
  void raw(T v) {
    o_->append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    raw<uint64_t>(s.size());
    o_->append(s);
  }
  void kv_header(const std::string& key, uint32_t type) {
    str(key);
    raw<uint32_t>(type);
    ++n_kv;
  }
  uint64_t n_kv = 0;

 private:
  std::string* o_;
};

// The GGUF type of every key edgellm writes, from the GGUF spec (ggml docs/gguf.md) as llama.cpp
// reads it: llama.cpp's loader refuses a key whose stored type differs ("key
// tokenizer.ggml.bos_token_id has wrong type i32 but expected type u32"). Where the spec says
// uint64 for a count, llama.cpp reads and writes uint32 (the spec asks readers to accept both),
// so counts are u32. Arrays: kArray with the element type in `elem`.
struct KeyType {
  uint32_t type, elem = 0;
};

bool known_key_type(const std::string& key, const std::string& arch, KeyType* kt) {
  auto ends_with = [&](const char* s) {
    const size_t n = std::strlen(s);
    return key.size() >= n && key.compare(key.size() - n, n, s) == 0;
  };
  static const std::pair<const char*, KeyType> kFixed[] = {
      {"general.architecture", {kString}},
      {"general.name", {kString}},
      {"general.alignment", {kU32}},
      {"general.file_type", {kU32}},
      {"general.quantization_version", {kU32}},
      {"tokenizer.ggml.model", {kString}},
      {"tokenizer.ggml.pre", {kString}},
      {"tokenizer.chat_template", {kString}},
      {"tokenizer.ggml.tokens", {kArray, kString}},
      {"tokenizer.ggml.merges", {kArray, kString}},
      {"tokenizer.ggml.added_tokens", {kArray, kString}},
      {"tokenizer.ggml.scores", {kArray, kF32}},
      {"tokenizer.ggml.token_type", {kArray, kI32}},
      {"tokenizer.ggml.add_bos_token", {kBool}},
      {"tokenizer.ggml.add_eos_token", {kBool}},
      {"tokenizer.ggml.add_sep_token", {kBool}},
      {"tokenizer.ggml.add_space_prefix", {kBool}},
      {"tokenizer.ggml.remove_extra_whitespaces", {kBool}},
  };
  for (const auto& [k, t] : kFixed)
    if (key == k) return *kt = t, true;
  // bos, eos, unknown, seperator/separator, padding, cls, mask, eot, eom, fim_*: all u32.
  if (key.rfind("tokenizer.ggml.", 0) == 0 && ends_with("_token_id")) return *kt = {kU32}, true;
  if (arch.empty() || key.rfind(arch + ".", 0) != 0) return false;
  const std::string k = key.substr(arch.size() + 1);
  static const std::pair<const char*, KeyType> kArch[] = {
      {"context_length", {kU32}},
      {"embedding_length", {kU32}},
      {"block_count", {kU32}},
      {"feed_forward_length", {kU32}},
      {"vocab_size", {kU32}},
      {"attention.head_count", {kU32}},
      {"attention.head_count_kv", {kU32}},
      {"attention.key_length", {kU32}},
      {"attention.value_length", {kU32}},
      {"attention.layer_norm_rms_epsilon", {kF32}},
      {"rope.dimension_count", {kU32}},
      {"rope.freq_base", {kF32}},
      {"rope.scaling.type", {kString}},
      {"rope.scaling.factor", {kF32}},
      {"rope.scaling.original_context_length", {kU32}},
      {"rope.scaling.low_freq_factor", {kF32}},
      {"rope.scaling.high_freq_factor", {kF32}},
  };
  for (const auto& [name, t] : kArch)
    if (k == name) return *kt = t, true;
  return false;
}

// A type for a key outside the table: strings, bools, f32 for floats, u32/u64 for non-negative
// integers, i32/i64 for negative ones.
KeyType guessed_type(const std::string& key, const nlohmann::json& v) {
  if (v.is_array()) {
    KeyType e = guessed_type(key, v.empty() ? nlohmann::json("") : v[0]);
    if (e.type == kArray) fail("[gguf] metadata key '{}': nested arrays are not written", key);
    return {kArray, e.type};
  }
  if (v.is_string()) return {kString};
  if (v.is_boolean()) return {kBool};
  if (v.is_number_float()) return {kF32};
  if (v.is_number_unsigned()) return {v.get<uint64_t>() <= UINT32_MAX ? kU32 : kU64};
  if (v.is_number_integer())
    return {v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX ? kI32 : kI64};
  fail("[gguf] metadata key '{}': cannot store value {}", key, v.dump().substr(0, 80));
}

// Writes one scalar of GGUF type `type`, refusing a JSON value that does not fit it exactly.
void write_scalar(GgufWriter& w, uint32_t type, const nlohmann::json& v, const std::string& key) {
  auto integer = [&](int64_t lo, uint64_t hi) -> uint64_t {
    bool ok = false;
    uint64_t u = 0;
    if (v.is_number_unsigned()) {
      u = v.get<uint64_t>();
      ok = u <= hi;
    } else if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      ok = i >= lo && (i < 0 || static_cast<uint64_t>(i) <= hi);
      u = static_cast<uint64_t>(i);
    }
    if (!ok)
      fail("[gguf] metadata key '{}': value {} does not fit GGUF type {}", key,
           v.dump().substr(0, 80), type);
    return u;
  };
  switch (type) {
    case kU32:
      return w.raw<uint32_t>(static_cast<uint32_t>(integer(0, UINT32_MAX)));
    case kI32:
      return w.raw<int32_t>(static_cast<int32_t>(integer(INT32_MIN, INT32_MAX)));
    case kU64:
      return w.raw<uint64_t>(integer(0, UINT64_MAX));
    case kI64:
      return w.raw<int64_t>(static_cast<int64_t>(integer(INT64_MIN, INT64_MAX)));
    case kF32:
      if (!v.is_number())
        fail("[gguf] metadata key '{}': value {} is not a number", key, v.dump().substr(0, 80));
      return w.raw<float>(v.get<float>());
    case kBool:
      if (!v.is_boolean())
        fail("[gguf] metadata key '{}': value {} is not a boolean", key, v.dump().substr(0, 80));
      return w.raw<uint8_t>(v.get<bool>() ? 1 : 0);
    case kString:
      if (!v.is_string())
        fail("[gguf] metadata key '{}': value {} is not a string", key, v.dump().substr(0, 80));
      return w.str(v.get<std::string>());
    default:
      fail("[gguf] writing key '{}': value type {} unsupported", key, type);
  }
}

void write_kv(GgufWriter& w, const std::string& key, const nlohmann::json& v,
              const std::string& arch) {
  if (v.is_null()) return;
  KeyType kt;
  if (!known_key_type(key, arch, &kt)) kt = guessed_type(key, v);
  // A negative token id means "none" in edgellm's tokenizers; GGUF's ids are u32, and an absent
  // key is how a GGUF says "none".
  if (kt.type == kU32 && key.rfind("tokenizer.ggml.", 0) == 0 && v.is_number_integer() &&
      !v.is_number_unsigned() && v.get<int64_t>() < 0)
    return;
  if (kt.type != kArray) {
    w.kv_header(key, kt.type);
    return write_scalar(w, kt.type, v, key);
  }
  if (!v.is_array())
    fail("[gguf] metadata key '{}': expected an array, got {}", key, v.dump().substr(0, 80));
  w.kv_header(key, kArray);
  w.raw<uint32_t>(kt.elem);
  w.raw<uint64_t>(v.size());
  for (const auto& e : v) write_scalar(w, kt.elem, e, key);
}

uint32_t file_type_of(DType t) {
  // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q4_K_M 15,
  // MOSTLY_Q6_K 18, MOSTLY_BF16 32.
  switch (t) {
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::Q4_K:
      return 15;
    case DType::Q6_K:
      return 18;
    case DType::BF16:
      return 32;
    default:
      return 0;
  }
}

}  // namespace

void write_gguf(const ModelConfig& c, const ModelSource& src, const std::string& path, DType dtype,
                const nlohmann::json& tokenizer_meta) {
  if (dtype == DType::I32) fail("[gguf] {}: i32 is not a weight type", path);
  std::vector<TensorOut> outs = gguf_tensor_outs(c, src, dtype);
  if (c.rope_scaling.enabled) {
    // llama.cpp reads Llama-3 scaling from this tensor, not from metadata.
    auto f = std::make_shared<std::vector<float>>(llama3_rope_factors(c));
    TensorOut o;
    o.name = "rope_freqs.weight";
    o.dtype = DType::F32;
    o.shape = {static_cast<int64_t>(f->size())};
    o.fill = [f](int64_t, int64_t, uint8_t* dst) { std::memcpy(dst, f->data(), f->size() * 4); };
    outs.push_back(std::move(o));
  }
  const std::string arch = arch_name(c.arch);
  std::string kvs;
  GgufWriter w(&kvs);
  using J = nlohmann::json;
  write_kv(w, "general.architecture", arch, arch);
  write_kv(w, "general.name", "edgellm", arch);
  write_kv(w, "general.alignment", J(kDefaultAlignment), arch);
  write_kv(w, "general.file_type", J(file_type_of(dtype)), arch);
  // Required by the spec when any tensor is quantized: ggml's current block layouts are
  // version 2 (GGML_QNT_VERSION).
  if (std::any_of(outs.begin(), outs.end(),
                  [](const TensorOut& o) { return dtype_is_quantized(o.dtype); }))
    write_kv(w, "general.quantization_version", J(2), arch);
  auto u32 = [&](const std::string& k, int v) { write_kv(w, arch + "." + k, J(v), arch); };
  auto f32 = [&](const std::string& k, float v) { write_kv(w, arch + "." + k, J(v), arch); };
  u32("context_length", c.max_seq_len);
  u32("embedding_length", c.dim);
  u32("block_count", c.n_layers);
  u32("feed_forward_length", c.hidden_dim);
  u32("attention.head_count", c.n_heads);
  u32("attention.head_count_kv", c.n_kv_heads);
  f32("attention.layer_norm_rms_epsilon", c.norm_eps);
  f32("rope.freq_base", c.rope_theta);
  u32("rope.dimension_count", c.head_dim);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("vocab_size", c.vocab_size);
  if (c.rope_scaling.enabled) {
    write_kv(w, arch + ".rope.scaling.type", "llama3", arch);
    f32("rope.scaling.factor", c.rope_scaling.factor);
    u32("rope.scaling.original_context_length", c.rope_scaling.original_max_position_embeddings);
    f32("rope.scaling.low_freq_factor", c.rope_scaling.low_freq_factor);
    f32("rope.scaling.high_freq_factor", c.rope_scaling.high_freq_factor);
  }
  if (tokenizer_meta.is_object()) {
    for (auto it = tokenizer_meta.begin(); it != tokenizer_meta.end(); ++it) {
      if (it.key().rfind("tokenizer.", 0) != 0)
        fail("[gguf] {}: tokenizer metadata key '{}' does not start with 'tokenizer.'", path,
             it.key());
      write_kv(w, it.key(), it.value(), arch);
    }
  } else if (!tokenizer_meta.is_null()) {
    fail("[gguf] {}: tokenizer metadata must be a JSON object", path);
  }
  if (!tokenizer_meta.is_object() || !tokenizer_meta.contains("tokenizer.ggml.bos_token_id")) {
    write_kv(w, "tokenizer.ggml.bos_token_id", J(c.bos_id), arch);
    write_kv(w, "tokenizer.ggml.eos_token_id", J(c.eos_id), arch);
  }

  std::string infos;
  GgufWriter iw(&infos);
  uint64_t off = 0;
  for (const TensorOut& o : outs) {
    iw.str(o.name);
    iw.raw<uint32_t>(static_cast<uint32_t>(o.shape.size()));
    for (auto it = o.shape.rbegin(); it != o.shape.rend(); ++it) iw.raw<uint64_t>(*it);
    iw.raw<uint32_t>(ggml_type_of(o.dtype));
    off = (off + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment;
    iw.raw<uint64_t>(off);
    off += o.nbytes();
  }

  AtomicWriter out(path);
  out.write("GGUF", 4);
  const uint32_t version = 3;
  out.write(&version, 4);
  const uint64_t nt = outs.size();
  out.write(&nt, 8);
  out.write(&w.n_kv, 8);
  out.write(kvs);
  out.write(infos);
  out.pad_to(kDefaultAlignment);
  const uint64_t data_start = out.offset();
  write_tensor_data(out, outs, kDefaultAlignment);
  EDGELLM_CHECK(out.offset() == data_start + off, "gguf size {} != {}", out.offset(),
                data_start + off);
  out.commit();
}

void save_gguf(const Checkpoint& ck, const std::string& path, DType dtype,
               const nlohmann::json& tokenizer_meta) {
  validate_tensors(ck);
  const nlohmann::json& tok = tokenizer_meta.is_null() ? ck.gguf_tokenizer : tokenizer_meta;
  write_gguf(ck.config, checkpoint_source(ck), path, dtype, tok);
}

}  // namespace edgellm
