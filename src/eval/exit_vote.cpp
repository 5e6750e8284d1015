#include "eval/exit_vote.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "model/layer.h"
#include "util/error.h"

namespace edgellm {

namespace {

// max and log Σ exp(x - max) of one row.
std::pair<double, double> row_lse(const float* x, int64_t V) {
  double mx = x[0];
  for (int64_t j = 1; j < V; ++j) mx = std::max(mx, double(x[j]));
  double s = 0;
  for (int64_t j = 0; j < V; ++j) s += std::exp(double(x[j]) - mx);
  return {mx, std::log(s)};
}

void check_rows(const std::vector<const float*>& rows, int64_t V, int32_t target) {
  if (rows.empty()) fail("[vote] no exits to vote over");
  if (target < 0 || target >= V) fail("[vote] target token {} outside vocab of {}", target, V);
}

}  // namespace

VotePick vote_argmax(const std::vector<const float*>& rows, int64_t V) {
  check_rows(rows, V, 0);
  VotePick best;
  best.prob = -1;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto [mx, lse] = row_lse(rows[i], V);
    // The row's largest probability is exp(max - max - lse) at its first argmax.
    const double p = std::exp(-lse);
    if (p > best.prob) {
      best.prob = p;
      best.exit = static_cast<int>(i);
      best.token = static_cast<int32_t>(std::find(rows[i], rows[i] + V, float(mx)) - rows[i]);
    }
  }
  return best;
}

double vote_max_renorm_logprob(const std::vector<const float*>& rows, int64_t V, int32_t target) {
  check_rows(rows, V, target);
  std::vector<std::pair<double, double>> s(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) s[i] = row_lse(rows[i], V);
  double z = 0, qt = 0;
  for (int64_t j = 0; j < V; ++j) {
    double q = 0;
    for (size_t i = 0; i < rows.size(); ++i)
      q = std::max(q, std::exp(double(rows[i][j]) - s[i].first - s[i].second));
    z += q;
    if (j == target) qt = q;
  }
  return std::log(qt) - std::log(z);
}

double vote_mean_logprob(const std::vector<const float*>& rows, int64_t V, int32_t target) {
  check_rows(rows, V, target);
  double p = 0;
  for (const float* r : rows) {
    const auto [mx, lse] = row_lse(r, V);
    p += std::exp(double(r[target]) - mx - lse);
  }
  return std::log(p / double(rows.size()));
}

void exit_logits(const Model& m, const ExitHeads& h, const float* hidden, int64_t T, int64_t r0,
                 int64_t n, std::vector<float>& xn, std::vector<std::vector<float>>& logits) {
  const ModelConfig& c = m.config();
  const int E = h.n_exits();
  xn.resize(static_cast<size_t>(n * c.dim));
  logits.resize(E);
  for (int i = 0; i < E; ++i) {
    const HeadWeights hw = h.weights(i, m);
    logits[i].resize(static_cast<size_t>(n * c.vocab_size));
    head_norm(c, hw, hidden + (i * T + r0) * c.dim, xn.data(), nullptr, n);
    head_logits(hw, xn.data(), logits[i].data(), n);
  }
}

void one_exit_logits(const Model& m, const ExitHeads& h, int i, const float* hidden, int64_t r0,
                     int64_t n, std::vector<float>& xn, std::vector<float>& logits) {
  const ModelConfig& c = m.config();
  const HeadWeights hw = h.weights(i, m);
  xn.resize(static_cast<size_t>(n * c.dim));
  logits.resize(static_cast<size_t>(n * c.vocab_size));
  head_norm(c, hw, hidden + r0 * c.dim, xn.data(), nullptr, n);
  head_logits(hw, xn.data(), logits.data(), n);
}

PplExitsResult perplexity_exits(const Model& m, const ExitHeads& h, const LoraAdapters* adapter,
                                const std::vector<int32_t>& tokens, int64_t ctx, bool votes) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config();
  const int64_t V = c.vocab_size;
  const int E = h.n_exits();
  if (ctx < 2) fail("[ppl] --ctx {} too small (need >= 2)", ctx);
  if (ctx > c.max_seq_len)
    fail("[ppl] --ctx {} exceeds the model context of {}", ctx, c.max_seq_len);
  PplExitsResult r;
  r.depths = h.config().depths;
  r.ctx = ctx;
  r.tokens = static_cast<int64_t>(tokens.size());
  InferenceState st(m, ctx);
  st.set_adapter(adapter);
  std::vector<double> nll(E, 0.0);
  double vmax = 0, vmean = 0;
  std::vector<float> xn;
  std::vector<std::vector<float>> logits;
  std::vector<const float*> rows(E);
  constexpr int64_t kRows = 32;
  for (int64_t s = 0; s + 1 < r.tokens; s += ctx) {
    const int64_t e = std::min(r.tokens, s + ctx), n = e - s;
    st.reset();
    const float* hid = st.forward_exits(tokens.data() + s, n, r.depths);
    for (int64_t r0 = 0; r0 < n - 1; r0 += kRows) {
      const int64_t nr = std::min(kRows, n - 1 - r0);
      exit_logits(m, h, hid, n, r0, nr, xn, logits);
      for (int64_t k = 0; k < nr; ++k) {
        const int32_t tgt = tokens[s + r0 + k + 1];
        for (int i = 0; i < E; ++i) {
          rows[i] = logits[i].data() + k * V;
          const auto [mx, lse] = row_lse(rows[i], V);
          nll[i] -= double(rows[i][tgt]) - mx - lse;
        }
        if (!votes) continue;
        vmax -= vote_max_renorm_logprob(rows, V, tgt);
        vmean -= vote_mean_logprob(rows, V, tgt);
      }
    }
    r.predictions += n - 1;
    ++r.windows;
  }
  if (r.predictions == 0) fail("[ppl] text has {} tokens: nothing to score", r.tokens);
  const double P = double(r.predictions);
  for (int i = 0; i < E; ++i) {
    r.exit_mean_nll.push_back(nll[i] / P);
    r.exit_ppl.push_back(std::exp(nll[i] / P));
  }
  r.vote_max_renorm_nll = vmax / P;
  r.vote_max_renorm_ppl = std::exp(vmax / P);
  r.vote_mean_nll = vmean / P;
  r.vote_mean_ppl = std::exp(vmean / P);
  for (double x : r.exit_ppl)
    if (!std::isfinite(x)) fail("[ppl] an exit's perplexity is {} (non-finite logits?)", x);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

LoraAdapters branch_adapter(const LoraAdapters& a, int d, int window) {
  LoraAdapters b = a;
  for (int l = 0; l < std::max(0, d - window); ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      if (!b.has(l, tt)) continue;
      std::fill_n(b.B(l, tt), b.at(l, tt).out * b.config().rank, 0.f);
    }
  return b;
}

}  // namespace edgellm
