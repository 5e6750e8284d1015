// Byte layouts shared by the seed-corpus writer (make_corpus.cpp) and harnesses that need a
// valid file of another format beside their input (e.g. a tokenizer for the Alpaca reader).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "model/config.h"

namespace edgellm::fuzz {

template <typename T>
inline void append(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, bytes.
// <unk>, <s>, </s>, the 256 byte pieces <0xNN>, then a few merged pieces with spaces.
inline std::string tokenizer_bin() {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    pieces.push_back(buf);
  }
  for (const char* p : {" ", "e", "t", " t", "he", " the", "a", " a", "n", "an", " an"})
    pieces.push_back(p);
  std::string s;
  append<int32_t>(s, 16);
  for (size_t i = 0; i < pieces.size(); ++i) {
    append<float>(s, i < 259 ? 0.f : -static_cast<float>(i));
    append<int32_t>(s, static_cast<int32_t>(pieces[i].size()));
    s += pieces[i];
  }
  return s;
}

// The model the compressed-model harness pairs with its input (config.json fixed, the input is
// model.safetensors): one layer, dim 64 so that group sizes 32 and 64 and N:M patterns fit.
inline ModelConfig compressed_seed_config() {
  ModelConfig c;
  c.dim = 64, c.hidden_dim = 96, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 2;
  c.head_dim = 16, c.vocab_size = 16, c.max_seq_len = 32;
  c.bos_id = 1, c.eos_id = 2;
  c.layers.assign(1, {});
  return c;
}

}  // namespace edgellm::fuzz
