#include "eval/generate.h"

#include <chrono>

#include "eval/exit_vote.h"
#include "util/error.h"

namespace edgellm {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string decode_continuation(const Tokenizer& tok, const std::vector<int32_t>& prompt_ids,
                                const std::vector<int32_t>& ids) {
  std::vector<int32_t> all = prompt_ids;
  all.insert(all.end(), ids.begin(), ids.end());
  const std::string before = tok.decode(prompt_ids), now = tok.decode(all);
  if (now.compare(0, before.size(), before) == 0) return now.substr(before.size());
  return tok.decode(ids);  // the prompt's text changed under the continuation: best effort
}

GenerateResult generate(const Model& m, const Tokenizer& tok, const std::string& prompt, int n,
                        const SamplerConfig& sc,
                        const std::function<void(const std::string&)>& on_text,
                        const LoraAdapters* adapter, const GenerateExits& ex) {
  const ModelConfig& c = m.config();
  GenerateResult r;
  r.prompt_ids.push_back(tok.bos_id());
  for (int32_t id : tok.encode(prompt)) r.prompt_ids.push_back(id);
  const int64_t total = static_cast<int64_t>(r.prompt_ids.size()) + n;
  if (total > c.max_seq_len)
    fail("[generate] prompt ({} tokens) + {} new tokens exceeds the model context of {}",
         r.prompt_ids.size(), n, c.max_seq_len);
  InferenceState st(m, total);
  st.set_adapter(adapter);
  Sampler sampler(sc);
  if (ex.heads && !ex.vote && (ex.exit < 0 || ex.exit >= ex.heads->n_exits()))
    fail("[generate] --exit {}: the adapter has exits 0..{}", ex.exit, ex.heads->n_exits() - 1);
  if (!ex.heads && (ex.vote || ex.exit >= 0))
    fail("[generate] --exit/--vote need the exit heads of an ALT run");
  // With one exit: the forward stops at its depth and only its head runs. With the vote: one
  // trunk forward to the deepest exit, every exit's head on the last position, then the winner's
  // logits are the ones the sampler sees.
  std::vector<float> xn, one_logits;
  std::vector<std::vector<float>> ex_logits;
  std::vector<const float*> rows;
  int last_exit = -1;
  const std::vector<int> one_depth = {ex.heads && !ex.vote ? ex.heads->depth(ex.exit) : 0};
  auto step = [&](const int32_t* ids, int64_t T) -> const float* {
    if (!ex.heads) return st.forward_last_logits(ids, T);
    if (!ex.vote) {
      const float* hid = st.forward_exits(ids, T, one_depth);
      one_exit_logits(m, *ex.heads, ex.exit, hid, T - 1, 1, xn, one_logits);
      last_exit = ex.exit;
      return one_logits.data();
    }
    const float* hid = st.forward_exits(ids, T, ex.heads->config().depths);
    exit_logits(m, *ex.heads, hid, T, T - 1, 1, xn, ex_logits);
    rows.clear();
    for (const auto& l : ex_logits) rows.push_back(l.data());
    last_exit = vote_argmax(rows, c.vocab_size).exit;
    return ex_logits[last_exit].data();
  };
  auto t0 = std::chrono::steady_clock::now();
  const float* logits = step(r.prompt_ids.data(), static_cast<int64_t>(r.prompt_ids.size()));
  r.prefill_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  std::string shown;
  for (int i = 0; i < n; ++i) {
    int32_t next = sampler.sample(logits, c.vocab_size);
    if (next == tok.eos_id() || next == c.eos_id) {
      r.stopped_at_eos = true;
      break;
    }
    r.ids.push_back(next);
    if (ex.heads) r.exits.push_back(last_exit);
    if (on_text) {
      // Decode the whole prefix and emit the new suffix: byte-level pieces may split UTF-8.
      std::string now = decode_continuation(tok, r.prompt_ids, r.ids);
      if (now.size() > shown.size() && now.compare(0, shown.size(), shown) == 0) {
        on_text(now.substr(shown.size()));
        shown = now;
      }
    }
    if (i + 1 < n) logits = step(&next, 1);
  }
  r.decode_seconds = seconds_since(t0);
  r.text = decode_continuation(tok, r.prompt_ids, r.ids);
  return r;
}

}  // namespace edgellm
