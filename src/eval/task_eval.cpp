#include "eval/task_eval.h"

#include <chrono>
#include <cmath>
#include <map>

#include "eval/exit_vote.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "util/error.h"

namespace edgellm {

std::string trim_ws(const std::string& s) {
  const char* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

namespace {

// −log softmax(logits)[id], accumulated in double.
double nll_of(const float* logits, int64_t V, int32_t id) {
  float mx = logits[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, logits[i]);
  double z = 0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(logits[i]) - mx);
  return std::log(z) + mx - double(logits[id]);
}

// NLL sums of one group: the scored head's, and with score_all_exits every exit's and both votes'.
struct NllSums {
  double nll = 0;
  std::vector<double> exits;
  double vote_max_renorm = 0, vote_mean = 0;
};

void finish(TaskGroupResult& g, const NllSums& s, bool all_exits) {
  const double per = g.response_tokens ? 1.0 / double(g.response_tokens) : 0;
  g.exact_match = g.n ? double(g.correct) / double(g.n) : 0;
  g.response_nll = s.nll * per;
  if (!all_exits) return;
  for (double e : s.exits) g.exit_response_nll.push_back(e * per);
  g.vote_max_renorm_nll = s.vote_max_renorm * per;
  g.vote_mean_nll = s.vote_mean * per;
}

}  // namespace

TaskEvalResult evaluate_task(const Model& m, const Tokenizer& tok,
                             const std::vector<PromptResponse>& data, const TaskEvalOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config();
  const int64_t n = o.limit > 0 ? std::min<int64_t>(o.limit, static_cast<int64_t>(data.size()))
                                : static_cast<int64_t>(data.size());
  TaskEvalResult r;
  r.overall.name = "all";
  std::map<std::string, size_t> gi;
  std::vector<NllSums> gsums;
  NllSums all_sums;
  InferenceState st(m);
  st.set_adapter(o.adapter);
  std::vector<float> logits;
  if (o.exits && !o.vote && (o.exit < 0 || o.exit >= o.exits->n_exits()))
    fail("[task] exit {}: the adapter has exits 0..{}", o.exit, o.exits->n_exits() - 1);
  if (!o.exits && (o.vote || o.exit >= 0 || o.score_all_exits))
    fail("[task] an exit, a vote or scoring all exits needs exit heads");
  const bool all_exits = o.score_all_exits;
  const size_t n_exits = o.exits ? static_cast<size_t>(o.exits->n_exits()) : 0;
  all_sums.exits.assign(all_exits ? n_exits : 0, 0.0);
  std::vector<float> xn;
  std::vector<std::vector<float>> ex_logits;
  std::vector<const float*> rows;
  // Logits of the last position for greedy decoding: the model's head, one exit, or the exit
  // that wins the vote at this step. One exit is run only to its depth, with only its head (its
  // output depends on nothing above); the vote needs every exit, from one trunk forward.
  const std::vector<int> one_depth = {o.exits && !o.vote ? o.exits->depth(o.exit) : 0};
  auto last_logits = [&](const int32_t* ids, int64_t T) -> const float* {
    if (!o.exits) return st.forward_last_logits(ids, T);
    if (!o.vote) {
      const float* hid = st.forward_exits(ids, T, one_depth);
      one_exit_logits(m, *o.exits, o.exit, hid, T - 1, 1, xn, logits);
      return logits.data();
    }
    const float* hid = st.forward_exits(ids, T, o.exits->config().depths);
    exit_logits(m, *o.exits, hid, T, T - 1, 1, xn, ex_logits);
    rows.clear();
    for (const auto& l : ex_logits) rows.push_back(l.data());
    return ex_logits[static_cast<size_t>(vote_argmax(rows, c.vocab_size).exit)].data();
  };
  for (int64_t i = 0; i < n; ++i) {
    const PromptResponse& ex = data[static_cast<size_t>(i)];
    std::vector<int32_t> ids{tok.bos_id()};
    for (int32_t id : tok.encode(ex.prompt + ex.response)) ids.push_back(id);
    ids.push_back(tok.eos_id());
    const int64_t n_prompt = 1 + static_cast<int64_t>(tok.encode(ex.prompt).size());
    const int64_t T = static_cast<int64_t>(ids.size());
    if (T > st.max_seq()) {
      ++r.skipped_too_long;
      if (o.progress) o.progress(i + 1, n);
      continue;
    }
    // Response NLL: one forward over the whole sequence, predictions from n_prompt − 1 on.
    st.reset();
    const int64_t n_pred = T - n_prompt;  // predicted tokens ids[n_prompt .. T-1]
    double nll = 0;
    NllSums ex_sums;  // this example's, with score_all_exits
    ex_sums.exits.assign(all_exits ? n_exits : 0, 0.0);
    if (!o.exits) {
      const float* h = st.forward(ids.data(), T - 1);
      logits.resize(static_cast<size_t>(n_pred) * c.vocab_size);
      st.logits(h + (n_prompt - 1) * c.dim, n_pred, logits.data());
      for (int64_t k = 0; k < n_pred; ++k)
        nll += nll_of(logits.data() + k * c.vocab_size, c.vocab_size, ids[n_prompt + k]);
    } else if (!o.vote && !all_exits) {
      const float* hid = st.forward_exits(ids.data(), T - 1, one_depth);
      one_exit_logits(m, *o.exits, o.exit, hid, n_prompt - 1, n_pred, xn, logits);
      for (int64_t k = 0; k < n_pred; ++k)
        nll += nll_of(logits.data() + k * c.vocab_size, c.vocab_size, ids[n_prompt + k]);
    } else {
      const float* hid = st.forward_exits(ids.data(), T - 1, o.exits->config().depths);
      exit_logits(m, *o.exits, hid, T - 1, n_prompt - 1, n_pred, xn, ex_logits);
      for (int64_t k = 0; k < n_pred; ++k) {
        const int32_t target = ids[n_prompt + k];
        rows.clear();
        for (const auto& l : ex_logits) rows.push_back(l.data() + k * c.vocab_size);
        if (all_exits) {
          for (size_t e = 0; e < n_exits; ++e)
            ex_sums.exits[e] += nll_of(rows[e], c.vocab_size, target);
          ex_sums.vote_max_renorm -= vote_max_renorm_logprob(rows, c.vocab_size, target);
          ex_sums.vote_mean -= vote_mean_logprob(rows, c.vocab_size, target);
        }
        if (!o.vote)
          nll += nll_of(rows[static_cast<size_t>(o.exit)], c.vocab_size, target);
        else
          nll -= vote_max_renorm_logprob(rows, c.vocab_size, target);
      }
    }
    const int64_t rows_scored = n_pred;
    // Greedy decoding from the prompt.
    st.reset();
    const float* lg = last_logits(ids.data(), n_prompt);
    std::vector<int32_t> out;
    for (int k = 0; k < o.max_new_tokens && st.pos() < st.max_seq(); ++k) {
      int32_t next = argmax(lg, c.vocab_size);
      if (next == tok.eos_id() || next == c.eos_id) break;
      out.push_back(next);
      if (k + 1 < o.max_new_tokens && st.pos() < st.max_seq()) lg = last_logits(&next, 1);
    }
    const std::string got = tok.decode(out);
    const bool ok = trim_ws(got) == trim_ws(ex.response);
    auto add = [&](TaskGroupResult& g, NllSums& sum) {
      ++g.n;
      g.correct += ok;
      g.response_tokens += rows_scored;
      sum.nll += nll;
      for (size_t e = 0; e < ex_sums.exits.size(); ++e) sum.exits[e] += ex_sums.exits[e];
      sum.vote_max_renorm += ex_sums.vote_max_renorm;
      sum.vote_mean += ex_sums.vote_mean;
    };
    add(r.overall, all_sums);
    if (!ex.group.empty()) {
      auto [it, fresh] = gi.try_emplace(ex.group, r.groups.size());
      if (fresh) {
        TaskGroupResult g;
        g.name = ex.group;
        r.groups.push_back(std::move(g));
        NllSums z;
        z.exits.assign(ex_sums.exits.size(), 0.0);
        gsums.push_back(std::move(z));
      }
      add(r.groups[it->second], gsums[it->second]);
    }
    if (static_cast<int64_t>(r.samples.size()) < o.keep_samples)
      r.samples.push_back({ex.prompt, ex.response, got, ok});
    if (o.progress) o.progress(i + 1, n);
  }
  finish(r.overall, all_sums, all_exits);
  for (size_t k = 0; k < r.groups.size(); ++k) finish(r.groups[k], gsums[k], all_exits);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace edgellm
