// Scoring an instruction-following task with exact answers (the pipeline's synthetic task, or
// any prompt/response pairs):
//   exact match   greedy decoding after [BOS] + encode(prompt) until EOS (or max_new_tokens);
//                 correct when the decoded text, whitespace-trimmed, equals the trimmed response;
//   response NLL  mean negative log-likelihood (nats/token) of encode(prompt + response) + EOS
//                 after the prompt — exactly the tokens the tuning loss counts (train/data.h).
// The prompt is the caller's (e.g. alpaca_prompt(instruction, input)), so this module does not
// depend on the training data format. Exit heads plug in where the logits are taken.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/exit_heads.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

struct PromptResponse {
  std::string prompt, response;
  std::string group;  // reported separately when set (e.g. the task family)
};

struct TaskEvalOptions {
  int max_new_tokens = 24;
  int64_t limit = 0;                      // > 0: only the first N examples
  const LoraAdapters* adapter = nullptr;  // applied unmerged when set
  // Early exits of an ALT run (model/exit_heads.h): score exit `exit` (an index), or with `vote`
  // decode by the paper's per-step vote over all exits and score the response NLL under the
  // max-then-renormalise vote (eval/exit_vote.h). One trunk forward serves every exit.
  const ExitHeads* exits = nullptr;
  int exit = -1;
  bool vote = false;
  // With exits: also score the response NLL of every exit and of both votes (max-then-
  // renormalise and mean) from the same forward, into TaskGroupResult::exit_response_nll /
  // vote_*_nll. Greedy decoding still follows `exit` or `vote`; each exit's exact match needs
  // its own call.
  bool score_all_exits = false;
  int64_t keep_samples = 8;  // first N (prompt, expected, got) kept for the report
  std::function<void(int64_t done, int64_t total)> progress;
};

struct TaskSample {
  std::string prompt, expected, got;
  bool correct = false;
};

struct TaskGroupResult {
  std::string name;
  int64_t n = 0, correct = 0;
  double exact_match = 0;
  double response_nll = 0;  // nats per response token
  int64_t response_tokens = 0;
  // Only with TaskEvalOptions::score_all_exits (nats per response token, same tokens).
  std::vector<double> exit_response_nll;  // per exit index
  double vote_max_renorm_nll = 0, vote_mean_nll = 0;
};

struct TaskEvalResult {
  TaskGroupResult overall;              // name "all"
  std::vector<TaskGroupResult> groups;  // by PromptResponse::group, in first-seen order
  std::vector<TaskSample> samples;
  // Examples left out because prompt + response + EOS do not fit the model's context (they
  // cannot be scored whole; the same ones for every condition of a model shape).
  int64_t skipped_too_long = 0;
  double seconds = 0;
};

TaskEvalResult evaluate_task(const Model& m, const Tokenizer& tok,
                             const std::vector<PromptResponse>& data, const TaskEvalOptions& o);

// Leading/trailing ASCII whitespace removed.
std::string trim_ws(const std::string& s);

}  // namespace edgellm
