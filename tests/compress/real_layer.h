// Real calibration inputs without the (coming) layer taps: the attention input of layer l,
// rmsnorm(x_l)·g1, where x_l is the residual stream entering layer l for a token window — what
// Wq, Wk and Wv of that layer see. Shared by real_layer_test.cpp and bench/bench_compress.cpp.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/rmsnorm.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::calib_demo {

// The first n_tokens tokens of a text file, BOS first.
inline std::vector<int32_t> text_tokens(const std::string& text_path, const std::string& tok_path,
                                        int64_t n_tokens, int32_t bos) {
  std::ifstream f(text_path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str().substr(0, static_cast<size_t>(n_tokens) * 8);
  auto tok = load_tokenizer(tok_path);
  std::vector<int32_t> ids{bos};
  const auto enc = tok->encode(text);
  ids.insert(ids.end(), enc.begin(), enc.end());
  ids.resize(std::min<size_t>(ids.size(), static_cast<size_t>(n_tokens)));
  return ids;
}

// X[T, C]: attention inputs of every layer, out[l] for l < n_layers.
inline std::vector<std::vector<float>> attention_inputs(const Model& m,
                                                        const std::vector<int32_t>& ids) {
  const ModelConfig& c = m.config();
  const int64_t T = static_cast<int64_t>(ids.size()), C = c.dim;
  InferenceState st(m, T);
  std::vector<float> x(T * C), inv(T);
  st.embed(ids.data(), T, x.data());
  std::vector<std::vector<float>> out(c.n_layers, std::vector<float>(T * C));
  for (int l = 0; l < c.n_layers; ++l) {
    rmsnorm_forward(out[l].data(), inv.data(), x.data(), m.layer(l).attn_norm, T, C, c.norm_eps);
    st.layer_forward(l, x.data(), T, 0);
  }
  return out;
}

// A WeightView's rows decoded to fp32 (stories260K is stored F32 already).
inline std::vector<float> dense_weight(const WeightView& w) {
  std::vector<float> out(w.rows * w.cols);
  for (int64_t r = 0; r < w.rows; ++r)
    decode_row(w.dtype, w.row(r), out.data() + r * w.cols, w.cols);
  return out;
}

}  // namespace edgellm::calib_demo
