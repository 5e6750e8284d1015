// Helpers shared by the io tests: tiny configs, byte-level file edits, error-message checks.
#pragma once

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::testing {

inline ModelConfig tiny_config(Arch arch, int dim = 64, int ff = 96, bool tied = false) {
  ModelConfig c;
  c.arch = arch;
  c.dim = dim;
  c.hidden_dim = ff;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = dim / 4;
  c.vocab_size = 40;
  c.max_seq_len = 128;
  c.qkv_bias = arch == Arch::Qwen2;
  c.tied_embeddings = tied;
  c.rope_theta = arch == Arch::Qwen2 ? 1e6f : 1e4f;
  c.layers.assign(2, LayerConfig{});
  return c;
}

inline std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}
inline void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), b.size());
}
inline size_t find_bytes(const std::vector<uint8_t>& hay, const std::string& needle) {
  const std::vector<uint8_t> n(needle.begin(), needle.end());
  auto it = std::search(hay.begin(), hay.end(), n.begin(), n.end());
  return it == hay.end() ? std::string::npos : static_cast<size_t>(it - hay.begin());
}
template <typename T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

// Runs fn, expecting an edgellm::Error whose message contains every needle.
template <typename F>
void expect_error(F&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an edgellm::Error";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message: " << e.what() << "\n lacks: " << n;
  }
}

inline void expect_same_tensors(const Checkpoint& a, const Checkpoint& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const Tensor& t : a.tensors.all()) {
    const Tensor* u = b.tensors.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.shape, u->shape) << t.name;
    ASSERT_EQ(t.dtype, u->dtype) << t.name;
    ASSERT_EQ(t.nbytes, u->nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << t.name;
  }
}

}  // namespace edgellm::testing
