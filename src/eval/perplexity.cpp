#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/activations.h"
#include "model/forward.h"
#include "util/error.h"

namespace edgellm {

PplProtocol ppl_protocol_from_name(const std::string& name) {
  if (name == "standard") return PplProtocol::Standard;
  if (name == "llamacpp") return PplProtocol::LlamaCpp;
  if (name == "edgellm-paper") return PplProtocol::EdgeLlmPaper;
  fail("[ppl] --protocol '{}' unknown (standard, llamacpp, edgellm-paper)", name);
}

const char* ppl_protocol_name(PplProtocol p) {
  switch (p) {
    case PplProtocol::Standard:
      return "standard";
    case PplProtocol::LlamaCpp:
      return "llamacpp";
    case PplProtocol::EdgeLlmPaper:
      return "edgellm-paper";
  }
  return "?";
}

std::vector<int32_t> ppl_tokens(const Tokenizer& tok, const std::string& text, int64_t max_tokens) {
  // With a token limit, encode only a prefix of the text (doubling until it yields the limit
  // plus a margin): tokenizing a whole corpus to score its first 256 tokens is wasted seconds.
  // BPE merges are local, so tokens well before the cut are those of the full text; the margin
  // keeps the cut's neighbourhood out of the result.
  constexpr int64_t kMargin = 64;
  std::string_view view(text);
  size_t len = max_tokens > 0 ? static_cast<size_t>(max_tokens + kMargin) * 8 : text.size();
  std::vector<int32_t> body;
  for (;;) {
    len = std::min(len, text.size());
    while (len < text.size() && (static_cast<unsigned char>(text[len]) & 0xC0) == 0x80) --len;
    body = tok.encode(view.substr(0, len));
    if (len == text.size() || static_cast<int64_t>(body.size()) >= max_tokens + kMargin) break;
    len *= 2;
  }
  std::vector<int32_t> ids{tok.bos_id()};
  ids.insert(ids.end(), body.begin(), body.end());
  if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(max_tokens);
  return ids;
}

namespace {

// Sum of NLL of predicting window[i+1] from window[..i] for i in [first, n-1).
double window_nll(InferenceState& st, const std::vector<int32_t>& window, int64_t first,
                  std::vector<float>& logits, std::vector<float>& loss) {
  const int64_t n = static_cast<int64_t>(window.size());
  const int64_t V = st.model().config().vocab_size, C = st.model().config().dim;
  st.reset();
  const float* h = st.forward(window.data(), n);
  // Logits in row chunks: a full [ctx, V] block for a 150k vocabulary would be gigabytes.
  constexpr int64_t kRows = 64;
  logits.resize(static_cast<size_t>(kRows * V));
  loss.resize(kRows);
  double sum = 0;
  for (int64_t r0 = first; r0 < n - 1; r0 += kRows) {
    const int64_t nr = std::min(kRows, n - 1 - r0);
    st.logits(h + r0 * C, nr, logits.data());
    cross_entropy_forward(loss.data(), logits.data(), window.data() + r0 + 1, nr, V);
    for (int64_t i = 0; i < nr; ++i) sum += loss[i];
    // A NaN or Inf must stop the run here, naming where, instead of becoming "ppl": null.
    if (!std::isfinite(sum))
      for (int64_t i = 0; i < nr; ++i)
        if (!std::isfinite(loss[i]))
          fail(
              "[ppl] the loss of predicting token {} of a window is {}: the model (or adapter) "
              "produces non-finite logits",
              r0 + i + 1, loss[i]);
  }
  return sum;
}

}  // namespace

void add_bits_per_byte(PplResult& r, const Tokenizer& tok, const std::vector<int32_t>& tokens) {
  const bool bos = !tokens.empty() && tokens[0] == tok.bos_id();
  const std::vector<int32_t> body(tokens.begin() + (bos ? 1 : 0), tokens.end());
  r.bytes = static_cast<int64_t>(tok.decode(body).size());
  r.bpb = r.bytes > 0 ? r.mean_nll / std::log(2.0) * double(body.size()) / double(r.bytes) : 0;
}

PplResult perplexity(const Model& m, const std::vector<int32_t>& tokens, const PplOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config();
  PplResult r;
  r.protocol = ppl_protocol_name(opt.protocol);
  r.ctx = opt.protocol == PplProtocol::EdgeLlmPaper ? 128 : opt.ctx;
  r.tokens = static_cast<int64_t>(tokens.size());
  if (r.ctx < 2) fail("[ppl] --ctx {} too small (need >= 2)", r.ctx);
  if (r.ctx > c.max_seq_len)
    fail("[ppl] --ctx {} exceeds the model context of {}", r.ctx, c.max_seq_len);
  InferenceState st(m, r.ctx);
  st.set_adapter(opt.adapter);
  std::vector<float> logits, loss;
  double sum = 0;
  if (opt.protocol == PplProtocol::LlamaCpp) {
    const int64_t chunks = r.tokens / r.ctx, first = r.ctx / 2;
    if (chunks == 0)
      fail("[ppl] llamacpp protocol needs at least ctx={} tokens, text has {}", r.ctx, r.tokens);
    for (int64_t i = 0; i < chunks; ++i) {
      std::vector<int32_t> w(tokens.begin() + i * r.ctx, tokens.begin() + (i + 1) * r.ctx);
      w[0] = c.bos_id;
      sum += window_nll(st, w, first, logits, loss);
      r.predictions += r.ctx - 1 - first;
    }
    r.windows = chunks;
  } else {
    for (int64_t s = 0; s + 1 < r.tokens; s += r.ctx) {
      const int64_t e = std::min(r.tokens, s + r.ctx);
      std::vector<int32_t> w(tokens.begin() + s, tokens.begin() + e);
      sum += window_nll(st, w, 0, logits, loss);
      r.predictions += e - s - 1;
      ++r.windows;
    }
    if (r.predictions == 0) fail("[ppl] text has {} tokens: nothing to score", r.tokens);
  }
  r.mean_nll = sum / double(r.predictions);
  r.ppl = std::exp(r.mean_nll);
  if (!std::isfinite(r.ppl))
    fail("[ppl] perplexity exp({}) overflows a double (mean NLL over {} predictions)", r.mean_nll,
         r.predictions);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace edgellm
