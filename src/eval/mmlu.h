// MMLU (Hendrycks et al., ICLR 2021) scored as lm-evaluation-harness's `mmlu` task:
//   prompt  = "The following are multiple choice questions (with answers) about {subject}.\n\n"
//             + k dev questions (the first k: sampler first_n), each
//               "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer: {letter}\n\n"
//             + the test question in the same form, ending "Answer:";
//   choices = the continuations " A", " B", " C", " D" (target delimiter " ");
//   predict = argmax of the continuations' log-likelihoods (first on ties, as numpy's argmax);
//   acc per subject; group scores (the four categories and "mmlu") are micro averages over
//   questions (the harness's weight_by_size), macro averages over subjects are reported too.
// Tokenization follows the harness's HF model (_encode_pair): context = encode(prompt),
// continuation = encode(prompt + " A")[len(context):], so a SentencePiece tokenizer's "▁A" comes
// out as one token without special-casing the dummy prefix. No BOS by default (the harness
// encodes with add_special_tokens=False); `bos` prepends the model's BOS as llama.cpp does.
// Prompts that do not fit the context lose shots one at a time from the end (the original
// evaluate.py); with no shots left the context is cut from the left (the harness's truncation).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/exit_heads.h"
#include "model/forward.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

struct MmluQuestion {
  std::string question;
  std::array<std::string, 4> choices;
  int answer = 0;    // 0..3 = A..D
  int64_t line = 0;  // CSV line the row starts on
};

struct MmluSubject {
  std::string name;  // file stem, e.g. "high_school_us_history"
  std::vector<MmluQuestion> dev, test;
};

// One subject file in either layout, told apart by the first row:
//   * header `question,choice0,choice1,choice2,choice3,answer`, answer an index 0-3 (the layout
//     in ../shared/data/mmlu, HF cais/mmlu exported with pandas);
//   * no header, 6 columns, answer a letter A-D (the original hendrycks/test data.tar).
// Throws Error naming the file and line of a malformed row.
std::vector<MmluQuestion> read_mmlu_csv(const std::string& path);

// Subjects that have a test file `dir`/test/<subject>_test.csv, sorted by name.
std::vector<std::string> mmlu_subjects(const std::string& dir);
// dev/<name>_dev.csv and test/<name>_test.csv under `dir`.
MmluSubject load_mmlu_subject(const std::string& dir, const std::string& name);

// The harness's category (its mmlu_<category> groups): "stem", "humanities", "social_sciences",
// "other"; "" for a subject outside the 57.
std::string mmlu_category(const std::string& subject);
const std::vector<std::string>& mmlu_category_names();

// Prompt text, byte for byte as the harness builds it.
std::string mmlu_description(const std::string& subject);
std::string mmlu_question_text(const MmluQuestion& q);  // ends "Answer:"
std::string mmlu_prompt(const MmluSubject& s, int shots, const MmluQuestion& q);

// The harness's loglikelihood requests for one question: one context, four continuations.
struct MmluRequest {
  std::vector<int32_t> context;                 // [BOS] + encode(prompt), maybe cut
  std::array<std::vector<int32_t>, 4> letters;  // continuation tokens of " A" .. " D"
  int shots = 0;                                // shots the prompt kept
  bool truncated = false;                       // no shots left and still cut from the left
  int boundary_mismatches = 0;  // letters whose encode(prompt + " X") does not start with
                                // encode(prompt) (a merge across the boundary)
};

// Builds the request with the most shots (<= `shots`) for which context + continuation − 1
// tokens fit `ctx` (the positions a causal model sees when scoring the last continuation token).
MmluRequest mmlu_request(const Tokenizer& tok, const MmluSubject& s, const MmluQuestion& q,
                         int shots, int64_t ctx, bool bos);

// Log-likelihoods (natural log, softmax over all V logits, accumulated in double) of four
// single-token continuations, from the logits at the last context position. This is the seam
// for early exits: an exit head gives such logits at its layer.
std::array<double, 4> letter_logliks(const float* logits, int64_t V,
                                     const std::array<int32_t, 4>& ids);

// The predicted letter from one row of letter log-likelihoods per head: argmax over (head,
// letter), the first maximum on ties. With only the final head this is the harness's argmax;
// early-exit voting passes one row per exit.
int mmlu_pick(const std::vector<std::array<double, 4>>& heads);
// The head (row) that argmax lies in: the winning exit of a vote.
int mmlu_pick_exit(const std::vector<std::array<double, 4>>& heads);

// Scores requests on one InferenceState, keeping the keys/values of the last context: the next
// context is run only from its first token that differs (a subject's shared few-shot prefix is
// computed once). With reuse off every context is run from an empty cache.
class MmluScorer {
 public:
  MmluScorer(InferenceState& st, bool reuse);
  std::array<double, 4> score(const MmluRequest& r);
  // The same through early exits: one row of letter log-likelihoods per exit of `h`, all from
  // one trunk forward (InferenceState::forward_exits; each exit adds a head on the last row).
  std::vector<std::array<double, 4>> score_exits(const MmluRequest& r, const ExitHeads& h);
  int64_t tokens_computed() const { return computed_; }
  int64_t tokens_reused() const { return reused_; }

 private:
  InferenceState& st_;
  bool reuse_;
  std::vector<int32_t> cached_;  // the tokens whose keys/values the cache holds
  std::vector<float> logits_;    // [rows, V]
  std::vector<float> xn_;
  std::vector<std::vector<float>> exit_logits_;
  int64_t computed_ = 0, reused_ = 0;
};

struct MmluOptions {
  int shots = 5;
  int64_t limit = 0;  // > 0: only the first N test questions of each subject (harness --limit)
  int64_t ctx = 0;    // context length; 0 = the model's (capped at 4096 like InferenceState)
  bool bos = false;
  bool reuse_prefix = true;
  const LoraAdapters* adapter = nullptr;  // applied unmerged when set
  // Early exits of an ALT run: score exit `exit` alone, or with `vote` the argmax over (exit,
  // letter) of the letters' probabilities (softmax over the whole vocabulary, compared over the
  // four letters only: mmlu_pick).
  const ExitHeads* exits = nullptr;
  int exit = -1;
  bool vote = false;
  // Called after each subject with the questions done so far and the total.
  std::function<void(const std::string& subject, int64_t done, int64_t total)> progress;
};

struct MmluItem {
  int64_t index = 0;  // in the subject's test file
  int answer = 0, pred = 0;
  int shots = 0;
  bool truncated = false;
  std::array<double, 4> loglik{};  // with exits: those of the exit scored or of the winner
  int exit = -1;                   // with exits: that exit
  std::vector<int8_t> exit_preds;  // with exits: every exit's own pick (the same forward)
};

struct MmluSubjectResult {
  std::string name, category;
  int64_t questions = 0, correct = 0;
  int64_t shortened = 0;  // prompts that lost at least one shot
  int64_t truncated = 0;  // prompts cut from the left (no shots left and still too long)
  double acc = 0;
  std::vector<MmluItem> items;
};

struct MmluGroupResult {
  std::string name;
  int64_t subjects = 0, questions = 0, correct = 0;
  double micro = 0;  // correct / questions (the harness's group score)
  double macro = 0;  // mean of the subjects' accuracies
};

struct MmluResult {
  int shots = 0;
  int64_t ctx = 0;
  bool bos = false;
  std::vector<MmluSubjectResult> subjects;
  MmluGroupResult overall;                  // name "mmlu"
  std::vector<MmluGroupResult> categories;  // those with at least one subject, in fixed order
  int64_t shortened = 0, truncated = 0, boundary_mismatches = 0;
  // How often each letter was predicted and was the answer: a near-chance model's bias shows
  // here (e.g. a tokenizer where " B" is one token and " A" two).
  std::array<int64_t, 4> predicted{}, answers{};
  int64_t tokens_computed = 0, tokens_reused = 0;
  double seconds = 0, seconds_per_question = 0;
  // With exits: each exit's own correct answers (the same forwards, no extra cost), and how
  // often each exit won the vote.
  std::vector<int64_t> exit_correct, exit_wins;
};

MmluResult evaluate_mmlu(const Model& m, const Tokenizer& tok,
                         const std::vector<MmluSubject>& subjects, const MmluOptions& o);

// Fills each subject's acc and r.overall / r.categories from the subjects' counts.
void mmlu_aggregate(MmluResult& r);

// The result exit `exit` alone gets, from a run with exits (vote or not: every item records
// every exit's pick): the same questions, prompts and timing, each prediction that exit's. One
// forward per question thus gives every exit's accuracy and the vote's.
MmluResult mmlu_exit_result(const MmluResult& r, int exit);

}  // namespace edgellm
