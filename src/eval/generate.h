// Text generation: prefill the prompt in one batch, then decode token by token from the KV cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/exit_heads.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

struct GenerateResult {
  std::vector<int32_t> prompt_ids;  // with the leading BOS
  std::vector<int32_t> ids;         // generated ids only
  std::string text;                 // decoded generated text
  double prefill_seconds = 0, decode_seconds = 0;
  bool stopped_at_eos = false;
  std::vector<int> exits;  // with early exits: the exit each generated token came from
};

// Generation through an ALT run's exits (eval/exit_vote.h): `exit` >= 0 samples from that exit
// alone; `vote` takes, per step, the token with the highest softmax probability over all exits
// (greedy), or with sampling (temperature > 0) samples from the winning exit's distribution.
struct GenerateExits {
  const ExitHeads* heads = nullptr;
  int exit = -1;
  bool vote = false;
};

// The text `ids` add after `prompt_ids` (which start with BOS): both are decoded together and the
// prompt's own text is cut off. Decoding `ids` alone would be wrong for SentencePiece-style
// vocabularies, whose decoder drops the leading space of the first piece of a text, so "The cat
// sat on" + "▁a▁big▁tree" printed as "The cat sat ona big tree".
std::string decode_continuation(const Tokenizer& tok, const std::vector<int32_t>& prompt_ids,
                                const std::vector<int32_t>& ids);

// Generates up to n tokens after BOS + encode(prompt). `on_text` (optional) receives each newly
// decodable piece of text as it is produced (for streaming). `adapter` (optional) is applied
// unmerged.
GenerateResult generate(const Model& m, const Tokenizer& tok, const std::string& prompt, int n,
                        const SamplerConfig& sc,
                        const std::function<void(const std::string&)>& on_text = nullptr,
                        const LoraAdapters* adapter = nullptr, const GenerateExits& exits = {});

}  // namespace edgellm
