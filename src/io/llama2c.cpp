// llama2.c legacy (version 0) checkpoints: a header of 7 int32 then fp32 arrays stacked over
// layers. The arrays are sliced in place (no copies); llama2.c weights already use the
// interleaved RoPE layout, which is edgellm's internal one.
#include <fmt/format.h>

#include <cstring>

#include "io/checkpoint.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {
constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);
}

Checkpoint load_llama2c(const std::string& path) {
  auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);
  if (file->size() >= 4 && std::memcmp(file->data(), "ak42", 4) == 0)
    fail(
        "[llama2c] {}: versioned llama2.c export (magic 'ak42') is not supported; export with "
        "--version 0 (legacy)",
        path);
  const char* names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                          "n_kv_heads", "vocab_size", "seq_len"};
  int32_t h[7];
  for (int i = 0; i < 7; ++i) h[i] = r.read<int32_t>(names[i]);
  for (int i = 0; i < 7; ++i) {
    if (i == 5 ? (h[i] == 0 || h[i] == INT32_MIN) : h[i] <= 0)
      fail("[llama2c] {}: header field {} = {} is invalid", path, names[i], h[i]);
    if (i != 5 && h[i] > (i == 2 ? 4096 : (1 << 24)))
      fail("[llama2c] {}: header field {} = {} is implausibly large", path, names[i], h[i]);
  }
  if (h[5] < -(1 << 24) || h[5] > (1 << 24))
    fail("[llama2c] {}: header field vocab_size = {} is implausibly large", path, h[5]);

  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::Llama2c;
  ModelConfig& c = ck.config;
  c.arch = Arch::Llama;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -h[5] : h[5];
  c.tied_embeddings = h[5] > 0;  // llama2.c: negative vocab_size marks an untied classifier
  c.max_seq_len = h[6];
  if (c.dim % c.n_heads != 0)
    fail("[llama2c] {}: dim {} is not a multiple of n_heads {}", path, c.dim, c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  // llama2.c's run.c hard-codes these.
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.f;
  // Exact size check before touching any array. Each field is < 2^24, so the 128-bit sum of
  // products of three cannot overflow, whatever a corrupt header says.
  const int64_t C = c.dim, FF = c.hidden_dim, L = c.n_layers, V = c.vocab_size,
                KV = int64_t{c.n_kv_heads} * c.head_dim, S = c.max_seq_len, HD = c.head_dim;
  using i128 = __int128;
  const i128 n_floats = i128{V} * C + i128{L} * C + i128{L} * C * C + i128{2} * L * KV * C +
                        i128{L} * C * C + i128{L} * C + i128{3} * L * FF * C + C +
                        i128{2} * S * (HD / 2) + (c.tied_embeddings ? 0 : i128{V} * C);
  const i128 want128 = kHeaderBytes + n_floats * 4;
  const uint64_t want = want128 > i128{INT64_MAX} ? UINT64_MAX : static_cast<uint64_t>(want128);
  if (static_cast<i128>(file->size()) != want128)
    fail(
        "[llama2c] {}: file size {} does not match the header (dim={} hidden_dim={} n_layers={} "
        "n_heads={} n_kv_heads={} vocab_size={} seq_len={}), which implies {} bytes",
        path, file->size(), h[0], h[1], h[2], h[3], h[4], h[5], h[6], want);

  c.layers.assign(c.n_layers, LayerConfig{});
  c.validate(path);

  size_t off = kHeaderBytes;
  // Takes one stacked array of `count` matrices of `shape` and adds them as layer tensors.
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    Tensor t;
    t.name = name;
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.nbytes = static_cast<size_t>(t.numel()) * 4;
    t.data = file->data() + off;
    t.owner = file;
    off += t.nbytes;
    ck.tensors.add(std::move(t));
  };
  auto layers = [&](const char* suffix, std::vector<int64_t> shape) {
    for (int l = 0; l < c.n_layers; ++l) add(fmt::format("model.layers.{}.{}", l, suffix), shape);
  };
  add("model.embed_tokens.weight", {V, C});
  layers("input_layernorm.weight", {C});
  layers("self_attn.q_proj.weight", {C, C});
  layers("self_attn.k_proj.weight", {KV, C});
  layers("self_attn.v_proj.weight", {KV, C});
  layers("self_attn.o_proj.weight", {C, C});
  layers("post_attention_layernorm.weight", {C});
  layers("mlp.gate_proj.weight", {FF, C});  // w1
  layers("mlp.down_proj.weight", {C, FF});  // w2
  layers("mlp.up_proj.weight", {FF, C});    // w3
  add("model.norm.weight", {C});
  off += 2 * static_cast<size_t>(S * (HD / 2)) * 4;  // freq_cis_real / freq_cis_imag: unused
  if (!c.tied_embeddings) add("lm_head.weight", {V, C});
  EDGELLM_CHECK(off == file->size(), "llama2c slicing ended at {} of {}", off, file->size());
  validate_tensors(ck);
  return ck;
}

}  // namespace edgellm
