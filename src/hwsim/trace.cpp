#include "hwsim/trace.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::hwsim {

const char* method_name(Method m) {
  switch (m) {
    case Method::Lora:
      return "lora";
    case Method::Partial:
      return "partial";
    case Method::Alt:
      return "alt";
  }
  return "?";
}

Method parse_method(const std::string& s) {
  if (s == "lora") return Method::Lora;
  if (s == "partial") return Method::Partial;
  if (s == "alt") return Method::Alt;
  fail("[hwsim] method '{}' unknown (lora, partial, alt)", s);
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Forward:
      return "fwd";
    case Phase::Backward:
      return "bwd";
    case Phase::Update:
      return "update";
  }
  return "?";
}

void TuneConfig::validate(const ModelConfig& m) const {
  const int L = m.n_layers;
  if (batch <= 0) fail("[hwsim] tune: field 'batch' must be positive, got {}", batch);
  if (seq <= 0) fail("[hwsim] tune: field 'seq' must be positive, got {}", seq);
  if (lora_rank <= 0) fail("[hwsim] tune: field 'lora_rank' must be positive, got {}", lora_rank);
  if (act_bytes <= 0 || state_bytes <= 0)
    fail("[hwsim] tune: act_bytes {} and state_bytes {} must be positive", act_bytes, state_bytes);
  if (base_bits < 1 || base_bits > 32)
    fail("[hwsim] tune: field 'base_bits' must be in [1, 32], got {}", base_bits);
  if (exit_layer < 0 || exit_layer > L)
    fail("[hwsim] tune: field 'exit' must be in [1, {}], got {}", L, exit_layer);
  if (method != Method::Lora && (window <= 0 || window > exit_or_last(m)))
    fail("[hwsim] tune: field 'window' must be in [1, {}] for method {}, got {}", exit_or_last(m),
         method_name(method), window);
  if (method == Method::Partial && exit_layer != 0 && exit_layer != L)
    fail("[hwsim] tune: method partial runs all {} layers; exit {} given", L, exit_layer);
  if (method == Method::Lora && exit_layer != 0 && exit_layer != L)
    fail("[hwsim] tune: method lora runs all {} layers; exit {} given", L, exit_layer);
  if (!bits.empty() && static_cast<int>(bits.size()) != L)
    fail("[hwsim] tune: field 'bits' has {} entries for {} layers", bits.size(), L);
  if (!sparsity.empty() && static_cast<int>(sparsity.size()) != L)
    fail("[hwsim] tune: field 'sparsity' has {} entries for {} layers", sparsity.size(), L);
  for (size_t l = 0; l < bits.size(); ++l)
    if (bits[l] < 1 || bits[l] > 32)
      fail("[hwsim] tune: bits[{}] = {} outside [1, 32]", l, bits[l]);
  for (size_t l = 0; l < sparsity.size(); ++l)
    if (!(sparsity[l] >= 0 && sparsity[l] < 1))
      fail("[hwsim] tune: sparsity[{}] = {} outside [0, 1)", l, sparsity[l]);
}

int TuneConfig::first_trained(const ModelConfig& m) const {
  if (method == Method::Lora) return 0;
  return exit_or_last(m) - window;
}
int TuneConfig::last_trained(const ModelConfig& m) const { return exit_or_last(m); }

int TuneConfig::linear_bits(const ModelConfig& m, int l, LinearId t) const {
  if (!bits.empty()) return bits[l];
  const int b = l < static_cast<int>(m.layers.size()) ? m.layers[l].at(t).bits : 0;
  return b > 0 ? b : base_bits;
}

double TuneConfig::linear_sparsity(const ModelConfig& m, int l, LinearId t) const {
  if (!sparsity.empty()) return sparsity[l];
  return l < static_cast<int>(m.layers.size()) ? m.layers[l].at(t).sparsity : 0.0;
}

double linear_weight_bytes(int64_t in, int64_t out, int bits, double sparsity) {
  const double n = static_cast<double>(in) * static_cast<double>(out);
  const double dense = n * bits / 8.0;
  // Bitmap format: the non-zero values packed at `bits` plus one mask bit per weight.
  const double sparse = n * (bits * (1.0 - sparsity) + 1.0) / 8.0;
  return std::min(dense, sparse) + 2.0 * static_cast<double>(out);
}

double Trace::total_flops() const {
  double f = 0;
  for (const auto& op : ops) f += op.flops();
  return f;
}

double Trace::gemm_flops(Phase p) const {
  double f = 0;
  for (const auto& op : ops)
    if (op.phase == p) f += op.flops();
  return f;
}

namespace {

// One linear of a decoder layer: out×in weight, applied to T tokens.
struct Linear {
  const char* name;
  int64_t in, out;
  LinearId id;
};

class Builder {
 public:
  Builder(const ModelConfig& m, const TuneConfig& t) : m_(m), t_(t) {
    T_ = static_cast<int64_t>(t.batch) * t.seq;
    a_ = t.act_bytes;
    s_ = t.state_bytes;
    r_ = t.lora_rank;
  }

  Trace build() {
    const int L = m_.n_layers;
    const int e = t_.exit_or_last(m_);
    const int lo = t_.first_trained(m_), hi = t_.last_trained(m_);
    tr_.n_layers = L;
    tr_.exit_layer = e;
    tr_.first_trained = lo;
    tr_.last_trained = hi;
    tr_.tokens = T_;

    // Weights at rest: every decoder layer, the embedding and the head(s), whatever the exit.
    for (int l = 0; l < L; ++l)
      for (const auto& lin : linears())
        tr_.weights_stored +=
            linear_weight_bytes(lin.in, lin.out, bits_of(l, lin), sparsity_of(l, lin));
    const double vocab_bytes = linear_weight_bytes(m_.dim, m_.vocab_size, t_.base_bits, 0);
    tr_.weights_stored += vocab_bytes * (m_.tied_embeddings ? 1 : 2);
    // LoRA state at rest: the layers the method ever trains (alt trains every layer over time).
    const int lora_layers = t_.method == Method::Partial ? t_.window : L;
    tr_.lora_state_stored = 4.0 * s_ * lora_layers * lora_params_per_layer();

    elementwise("embed", -1, Phase::Forward, T_ * m_.dim, 0, T_ * m_.dim * a_);
    ops_.back().weight_read = static_cast<double>(T_) * m_.dim * t_.base_bits / 8.0;
    for (int l = 0; l < e; ++l) forward_layer(l, l >= lo && l < hi);
    head(L, hi > lo);
    for (int l = hi - 1; l >= lo; --l) backward_layer(l, l == lo && t_.skip_bottom_dx);
    update(L + 1, (hi - lo) * lora_params_per_layer());
    tr_.ops = std::move(ops_);
    return std::move(tr_);
  }

 private:
  std::vector<Linear> linears() const {
    std::vector<Linear> v;
    for (int i = 0; i < kLinears; ++i) {
      const auto t = static_cast<LinearId>(i);
      v.push_back({linear_name(t), m_.linear_in(t), m_.linear_out(t), t});
    }
    return v;
  }
  int bits_of(int l, const Linear& lin) const { return t_.linear_bits(m_, l, lin.id); }
  double sparsity_of(int l, const Linear& lin) const { return t_.linear_sparsity(m_, l, lin.id); }
  double lora_params_per_layer() const {
    double p = 0;
    for (const auto& lin : linears()) p += static_cast<double>(r_) * (lin.in + lin.out);
    return p;
  }
  std::string nm(int l, const std::string& what) const {
    if (l < 0) return what;
    if (l == m_.n_layers) return fmt::format("head.{}", what);
    if (l == m_.n_layers + 1) return fmt::format("opt.{}", what);
    return fmt::format("L{}.{}", l, what);
  }

  Op& gemm(const std::string& name, int layer, Phase ph, int64_t M, int64_t N, int64_t K,
           int64_t count, double a_bytes, double b_bytes) {
    Op op;
    op.name = name;
    op.layer = layer;
    op.phase = ph;
    op.kind = OpKind::Gemm;
    op.m = M, op.n = N, op.k = K, op.count = count;
    op.a_elem_bytes = a_bytes;
    op.b_elem_bytes = b_bytes;
    ops_.push_back(op);
    return ops_.back();
  }
  Op& elementwise(const std::string& name, int layer, Phase ph, int64_t elements, double rd,
                  double wr) {
    Op op;
    op.name = name;
    op.layer = layer;
    op.phase = ph;
    op.kind = OpKind::Elementwise;
    op.elements = elements;
    op.transient_read = rd;
    op.transient_write = wr;
    ops_.push_back(op);
    return ops_.back();
  }

  // Base-weight GEMM X(T×in)·W(in×out): the weight operand streams at its compressed size.
  void weight_gemm(int l, Phase ph, const std::string& name, int64_t M, int64_t N, int64_t K,
                   int bits, double sp, bool scaled, double w_bytes) {
    Op& op = gemm(name, l, ph, M, N, K, 1, a_, w_bytes / (static_cast<double>(K) * N));
    op.weight_operand = true;
    op.precision_scaled = scaled;
    op.weight_bits = bits;
    op.sparsity = sp;
    op.weight_read = w_bytes;
    op.transient_read = static_cast<double>(M) * K * a_;
  }

  void forward_layer(int l, bool train) {
    const int64_t d = m_.dim, q = m_.q_dim(), kv = m_.kv_dim(), ff = m_.hidden_dim;
    const int64_t B = t_.batch, S = t_.seq, NH = m_.n_heads, hd = m_.head_dim;
    const Phase F = Phase::Forward;
    // Output of an op: saved for backward when the layer trains, else transient.
    auto out = [&](Op& op, double bytes, bool save) {
      (save ? op.saved_write : op.transient_write) += bytes;
    };
    auto norm = [&](const char* name) {
      Op& op = elementwise(nm(l, name), l, F, T_ * d, T_ * d * a_, 0);
      // Saved: the input (for the norm's backward) and the output (for LoRA dA of the next GEMMs).
      if (train)
        op.saved_write = 2.0 * T_ * d * a_;
      else
        op.transient_write = static_cast<double>(T_) * d * a_;
    };
    auto linear = [&](const Linear& lin, bool save_out) {
      const int bits = bits_of(l, lin);
      const double sp = sparsity_of(l, lin);
      double wb = linear_weight_bytes(lin.in, lin.out, bits, sp);
      weight_gemm(l, F, nm(l, std::string(lin.name)), T_, lin.out, lin.in, bits, sp, true, wb);
      out(ops_.back(), static_cast<double>(T_) * lin.out * a_, save_out);
      if (!train) return;
      // LoRA: h = X·A (T×r, saved for dB), then h·B added to the output.
      Op& a = gemm(nm(l, std::string(lin.name) + ".lora_A"), l, F, T_, r_, lin.in, 1, a_, s_);
      a.state_read = static_cast<double>(lin.in) * r_ * s_;
      a.transient_read = static_cast<double>(T_) * lin.in * a_;
      a.saved_write = static_cast<double>(T_) * r_ * a_;
      Op& b = gemm(nm(l, std::string(lin.name) + ".lora_B"), l, F, T_, lin.out, r_, 1, a_, s_);
      b.state_read = static_cast<double>(r_) * lin.out * s_;
      b.transient_read = static_cast<double>(T_) * lin.out * a_;  // accumulate into the output
      b.transient_write = static_cast<double>(T_) * lin.out * a_;
    };
    const auto lins = linears();
    norm("attn_norm");
    linear(lins[0], false);
    linear(lins[1], false);
    linear(lins[2], train);  // v is saved for the attention backward
    {
      Op& op = elementwise(nm(l, "rope"), l, F, T_ * (q + kv), T_ * (q + kv) * a_, 0);
      out(op, static_cast<double>(T_) * (q + kv) * a_, train);  // rotated q, k saved
    }
    {
      Op& op = gemm(nm(l, "attn_scores"), l, F, S, S, hd, B * NH, a_, a_);
      op.transient_read = static_cast<double>(T_) * (q + kv) * a_;
      op.transient_write = static_cast<double>(B) * NH * S * S * a_;
    }
    {
      Op& op = elementwise(nm(l, "softmax"), l, F, B * NH * S * S, B * NH * S * S * a_, 0);
      out(op, static_cast<double>(B) * NH * S * S * a_, train);  // probabilities saved
    }
    {
      Op& op = gemm(nm(l, "attn_context"), l, F, S, hd, S, B * NH, a_, a_);
      op.transient_read =
          static_cast<double>(B) * NH * S * S * a_ + static_cast<double>(T_) * kv * a_;
      out(op, static_cast<double>(T_) * q * a_, train);  // input of o_proj, for its LoRA dA
    }
    linear(lins[3], false);
    elementwise(nm(l, "attn_residual"), l, F, T_ * d, 2.0 * T_ * d * a_, T_ * d * a_);
    norm("ffn_norm");
    linear(lins[4], train);  // gate and up outputs saved for the SwiGLU backward
    linear(lins[5], train);
    {
      Op& op = elementwise(nm(l, "swiglu"), l, F, T_ * ff, 2.0 * T_ * ff * a_, 0);
      out(op, static_cast<double>(T_) * ff * a_, train);  // input of down_proj
    }
    linear(lins[6], false);
    elementwise(nm(l, "ffn_residual"), l, F, T_ * d, 2.0 * T_ * d * a_, T_ * d * a_);
  }

  void head(int H, bool backward) {
    const int64_t d = m_.dim, V = m_.vocab_size;
    const double wb = linear_weight_bytes(d, V, t_.base_bits, 0);
    Op& n = elementwise(nm(H, "final_norm"), H, Phase::Forward, T_ * d, T_ * d * a_, 0);
    (backward ? n.saved_write : n.transient_write) = (backward ? 2.0 : 1.0) * T_ * d * a_;
    weight_gemm(H, Phase::Forward, nm(H, "lm_head"), T_, V, d, t_.base_bits, 0, false, wb);
    ops_.back().transient_write = static_cast<double>(T_) * V * 4;  // fp32 logits
    // Cross-entropy (softmax + loss + dlogits in one pass over the logits).
    elementwise(nm(H, "cross_entropy"), H, Phase::Forward, T_ * V, T_ * V * 4.0,
                backward ? T_ * V * a_ : 0.0);
    if (!backward) return;
    weight_gemm(H, Phase::Backward, nm(H, "lm_head.dX"), T_, d, V, t_.base_bits, 0, false, wb);
    ops_.back().transient_write = static_cast<double>(T_) * d * a_;
    Op& nb = elementwise(nm(H, "final_norm.bwd"), H, Phase::Backward, T_ * d, 2.0 * T_ * d * a_,
                         T_ * d * a_);
    nb.saved_read = 2.0 * T_ * d * a_;
  }

  // Backward of one linear given dY (T×out): dX through the frozen weight (no dW), LoRA grads.
  void linear_backward(int l, const Linear& lin, bool need_dx) {
    const int bits = bits_of(l, lin);
    const double sp = sparsity_of(l, lin);
    const Phase Bw = Phase::Backward;
    const std::string base = nm(l, lin.name);
    const double Tin = static_cast<double>(T_) * lin.in, Tout = static_cast<double>(T_) * lin.out;
    // LoRA: dB = hᵀ·dY, dh = dY·Bᵀ, dA = Xᵀ·dh, dX += dh·Aᵀ.
    Op& db = gemm(base + ".lora_dB", l, Bw, r_, lin.out, T_, 1, a_, a_);
    db.saved_read = static_cast<double>(T_) * r_ * a_;
    db.transient_read = Tout * a_;
    db.state_write = static_cast<double>(r_) * lin.out * s_;
    Op& dh = gemm(base + ".lora_dh", l, Bw, T_, r_, lin.out, 1, a_, s_);
    dh.state_read = static_cast<double>(r_) * lin.out * s_;
    dh.transient_read = Tout * a_;
    dh.transient_write = static_cast<double>(T_) * r_ * a_;
    Op& da = gemm(base + ".lora_dA", l, Bw, lin.in, r_, T_, 1, a_, a_);
    da.saved_read = Tin * a_;  // the layer input X saved in forward
    da.transient_read = static_cast<double>(T_) * r_ * a_;
    da.state_write = static_cast<double>(lin.in) * r_ * s_;
    if (!need_dx) return;
    Op& dxl = gemm(base + ".lora_dX", l, Bw, T_, lin.in, r_, 1, a_, s_);
    dxl.state_read = static_cast<double>(lin.in) * r_ * s_;
    dxl.transient_read = static_cast<double>(T_) * r_ * a_;
    double wb = linear_weight_bytes(lin.in, lin.out, bits, sp);
    // dX = dY·Wᵀ reads the compressed weight, but the gradient operand keeps it at the base MAC
    // rate (HWSIM.md §2: activation-gradient GEMMs stay at the base rate).
    weight_gemm(l, Bw, base + ".dX", T_, lin.in, lin.out, bits, sp, false, wb);
    ops_.back().transient_write = Tin * a_;
  }

  void backward_layer(int l, bool bottom) {
    const int64_t d = m_.dim, q = m_.q_dim(), kv = m_.kv_dim(), ff = m_.hidden_dim;
    const int64_t B = t_.batch, S = t_.seq, NH = m_.n_heads, hd = m_.head_dim;
    const Phase Bw = Phase::Backward;
    const auto lins = linears();
    const double Td = static_cast<double>(T_) * d * a_;
    linear_backward(l, lins[6], true);
    {
      Op& op = elementwise(nm(l, "swiglu.bwd"), l, Bw, T_ * ff, T_ * ff * a_, 2.0 * T_ * ff * a_);
      op.saved_read = 2.0 * T_ * ff * a_;  // gate and up outputs
    }
    linear_backward(l, lins[4], true);
    linear_backward(l, lins[5], true);
    {
      Op& op = elementwise(nm(l, "ffn_norm.bwd"), l, Bw, T_ * d, 2.0 * Td, Td);
      op.saved_read = Td;  // the norm input
    }
    linear_backward(l, lins[3], true);
    const double probs = static_cast<double>(B) * NH * S * S * a_;
    {
      Op& dp = gemm(nm(l, "attn.dP"), l, Bw, S, S, hd, B * NH, a_, a_);  // dO·Vᵀ
      dp.saved_read = static_cast<double>(T_) * kv * a_;
      dp.transient_read = static_cast<double>(T_) * q * a_;
      dp.transient_write = probs;
      Op& dv = gemm(nm(l, "attn.dV"), l, Bw, S, hd, S, B * NH, a_, a_);  // Pᵀ·dO
      dv.saved_read = probs;
      dv.transient_read = static_cast<double>(T_) * q * a_;
      dv.transient_write = static_cast<double>(T_) * kv * a_;
      Op& sm = elementwise(nm(l, "softmax.bwd"), l, Bw, B * NH * S * S, probs, probs);
      sm.saved_read = probs;
      Op& dq = gemm(nm(l, "attn.dQ"), l, Bw, S, hd, S, B * NH, a_, a_);  // dS·K
      dq.saved_read = static_cast<double>(T_) * kv * a_;
      dq.transient_read = probs;
      dq.transient_write = static_cast<double>(T_) * q * a_;
      Op& dk = gemm(nm(l, "attn.dK"), l, Bw, S, hd, S, B * NH, a_, a_);  // dSᵀ·Q
      dk.saved_read = static_cast<double>(T_) * q * a_;
      dk.transient_read = probs;
      dk.transient_write = static_cast<double>(T_) * kv * a_;
    }
    elementwise(nm(l, "rope.bwd"), l, Bw, T_ * (q + kv), T_ * (q + kv) * a_, T_ * (q + kv) * a_);
    linear_backward(l, lins[0], !bottom);
    linear_backward(l, lins[1], !bottom);
    linear_backward(l, lins[2], !bottom);
    if (!bottom) {
      Op& op = elementwise(nm(l, "attn_norm.bwd"), l, Bw, T_ * d, 2.0 * Td, Td);
      op.saved_read = Td;
    }
  }

  void update(int U, double params) {
    // AdamW: read param, grad, m, v; write param, m, v (fp32 state); ~10 element ops each.
    Op& op = elementwise(nm(U, "adamw"), U, Phase::Update, static_cast<int64_t>(params) * 10, 0, 0);
    op.state_read = 4.0 * params * s_;
    op.state_write = 3.0 * params * s_;
    tr_.lora_params_trained = params;
    for (const auto& o : ops_) tr_.saved_peak += o.saved_write;
  }

  const ModelConfig& m_;
  const TuneConfig& t_;
  int64_t T_ = 0;
  int a_ = 2, s_ = 4, r_ = 8;
  std::vector<Op> ops_;
  Trace tr_;
};

}  // namespace

Trace build_trace(const ModelConfig& model, const TuneConfig& tune) {
  model.validate("hwsim model");
  tune.validate(model);
  return Builder(model, tune).build();
}

ModelConfig load_model_shape(const std::string& name_or_path) {
  for (const auto& n : ModelConfig::preset_names())
    if (n == name_or_path) return ModelConfig::preset(n);
  if (!std::filesystem::exists(name_or_path)) {
    std::string known;
    for (const auto& n : ModelConfig::preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("[hwsim] model config '{}': neither a preset ({}) nor an existing config.json",
         name_or_path, known);
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(name_or_path));
  } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range (number overflow)
    fail("[hwsim] {}: not valid JSON: {}", name_or_path, e.what());
  }
  return ModelConfig::from_hf_json(j, name_or_path);
}

namespace {
template <typename T>
std::vector<T> parse_list(const std::string& s, int n_layers, const char* what) {
  std::vector<T> v;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    const std::string item = s.substr(pos, end - pos);
    try {
      size_t used = 0;
      const double x = std::stod(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      v.push_back(static_cast<T>(x));
      if (static_cast<double>(v.back()) != x) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail("[hwsim] --{}: '{}' is not a valid value (in '{}')", what, item, s);
    }
    pos = end + 1;
  }
  if (v.size() == 1) v.assign(n_layers, v[0]);
  if (static_cast<int>(v.size()) != n_layers)
    fail("[hwsim] --{}: {} values for {} layers (give one value or one per layer)", what, v.size(),
         n_layers);
  return v;
}
}  // namespace

std::vector<int> parse_layer_bits(const std::string& s, int n_layers) {
  return parse_list<int>(s, n_layers, "bits");
}
std::vector<double> parse_layer_sparsity(const std::string& s, int n_layers) {
  return parse_list<double>(s, n_layers, "sparsity");
}

nlohmann::json Trace::to_json(bool with_ops) const {
  nlohmann::json j;
  j["n_layers"] = n_layers;
  j["exit_layer"] = exit_layer;
  j["trained_layers"] = {first_trained, last_trained};
  j["tokens"] = tokens;
  j["total_flops"] = total_flops();
  j["flops_by_phase"] = {{"fwd", gemm_flops(Phase::Forward)},
                         {"bwd", gemm_flops(Phase::Backward)},
                         {"update", gemm_flops(Phase::Update)}};
  j["weights_stored_bytes"] = weights_stored;
  j["lora_state_stored_bytes"] = lora_state_stored;
  j["saved_activation_bytes"] = saved_peak;
  j["lora_params_trained"] = lora_params_trained;
  j["n_ops"] = ops.size();
  if (with_ops) {
    auto& arr = j["ops"] = nlohmann::json::array();
    for (const auto& op : ops) {
      nlohmann::json o{{"name", op.name},
                       {"layer", op.layer},
                       {"phase", phase_name(op.phase)},
                       {"kind", op.kind == OpKind::Gemm ? "gemm" : "elementwise"}};
      if (op.kind == OpKind::Gemm) {
        o["M"] = op.m, o["N"] = op.n, o["K"] = op.k, o["count"] = op.count;
        o["flops"] = op.flops();
        if (op.weight_operand) o["weight_bits"] = op.weight_bits, o["sparsity"] = op.sparsity;
      } else {
        o["elements"] = op.elements;
      }
      auto put = [&](const char* k, double v) {
        if (v != 0) o[k] = v;
      };
      put("weight_read_bytes", op.weight_read);
      put("saved_write_bytes", op.saved_write);
      put("saved_read_bytes", op.saved_read);
      put("state_read_bytes", op.state_read);
      put("state_write_bytes", op.state_write);
      put("transient_read_bytes", op.transient_read);
      put("transient_write_bytes", op.transient_write);
      arr.push_back(std::move(o));
    }
  }
  return j;
}

}  // namespace edgellm::hwsim
