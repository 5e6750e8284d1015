// Perplexity, by named protocol (numbers are only comparable within one protocol):
//   standard      : text as-is, one BOS at the start, non-overlapping windows of ctx tokens,
//                   each window run from an empty cache and scored on all of its predictions
//                   (ctx-1 per window; a final partial window of >= 2 tokens is scored too);
//                   PPL = exp(mean NLL). This is the SparseGPT/GPTQ/Wanda protocol.
//   llamacpp      : llama.cpp's perplexity tool: floor(n/ctx) chunks of ctx tokens, the first
//                   token of every chunk replaced by BOS, only the second half of each chunk
//                   scored (predictions of positions ctx/2+1 .. ctx-1).
//   edgellm-paper : the Edge-LLM code's evaluation: the standard protocol with 128-token windows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

enum class PplProtocol { Standard, LlamaCpp, EdgeLlmPaper };
PplProtocol ppl_protocol_from_name(const std::string& name);
const char* ppl_protocol_name(PplProtocol p);

struct PplOptions {
  PplProtocol protocol = PplProtocol::Standard;
  int64_t ctx = 512;
  int64_t max_tokens = 0;  // > 0: truncate the tokenized text (BOS included) to this many
  const LoraAdapters* adapter = nullptr;  // applied unmerged when set
};

struct PplResult {
  std::string protocol;
  int64_t ctx = 0;
  int64_t tokens = 0;  // tokens of the evaluated sequence, BOS included
  int64_t windows = 0;
  int64_t predictions = 0;  // NLL terms averaged
  double mean_nll = 0;
  double ppl = 0;
  int64_t bytes = 0;  // UTF-8 bytes of the evaluated text (its tokens after BOS, decoded)
  double bpb = 0;     // bits per byte: mean_nll / ln 2 × (tokens − 1) / bytes
  double seconds = 0;
};

// Token sequence the protocol evaluates: [BOS] + encode(text), truncated to max_tokens.
std::vector<int32_t> ppl_tokens(const Tokenizer& tok, const std::string& text, int64_t max_tokens);
PplResult perplexity(const Model& m, const std::vector<int32_t>& tokens, const PplOptions& opt);
// Fills r.bytes and r.bpb. Bits per byte compare models with different tokenizers on the same
// text: the mean NLL per predicted token (nats → bits) times the tokens per byte of the evaluated
// text — the usual conversion; it assumes the few unscored window-first tokens cost the mean.
void add_bits_per_byte(PplResult& r, const Tokenizer& tok, const std::vector<int32_t>& tokens);

}  // namespace edgellm
