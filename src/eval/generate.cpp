#include "eval/generate.h"

#include <chrono>

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
                        const LoraAdapters* adapter) {
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
  auto t0 = std::chrono::steady_clock::now();
  const float* logits =
      st.forward_last_logits(r.prompt_ids.data(), static_cast<int64_t>(r.prompt_ids.size()));
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
    if (on_text) {
      // Decode the whole prefix and emit the new suffix: byte-level pieces may split UTF-8.
      std::string now = decode_continuation(tok, r.prompt_ids, r.ids);
      if (now.size() > shown.size() && now.compare(0, shown.size(), shown) == 0) {
        on_text(now.substr(shown.size()));
        shown = now;
      }
    }
    if (i + 1 < n) logits = st.forward_last_logits(&next, 1);
  }
  r.decode_seconds = seconds_since(t0);
  r.text = decode_continuation(tok, r.prompt_ids, r.ids);
  return r;
}

}  // namespace edgellm
