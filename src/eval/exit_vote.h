// Inference through early exits and exit voting (PAPER.md §3, issue 9).
//
// One trunk forward serves every exit (InferenceState::forward_exits): the residual stream is
// kept after each exit's depth and each exit applies its own head (model/exit_heads.h), so an
// extra exit costs a head evaluation, not a forward. With M[i][j] the softmax probability of
// token j at exit i:
//   vote_argmax        : (i*, j*) = argmax_{i,j} M[i][j] (first maximum on ties): the paper's
//                        rule for generation (and, over the four letters only, for MMLU);
//   max-then-renormalise: q(j) = max_i M[i][j] / Σ_j' max_i M[i][j'] — the distribution the
//                        official code's voting evaluates perplexity with, named as such;
//   mean               : q(j) = (1/E) Σ_i M[i][j].
// Log-probabilities are computed in double from max-shifted logits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/exit_heads.h"
#include "model/forward.h"
#include "model/model.h"

namespace edgellm {

struct VotePick {
  int exit = 0;  // index into the rows given
  int32_t token = 0;
  double prob = 0;  // M[exit][token]
};
// argmax over (row, token) of softmax(logits[row]); rows[i] points at V logits.
VotePick vote_argmax(const std::vector<const float*>& rows, int64_t V);
// log q(target) under max-then-renormalise and under the mean of the rows' distributions.
double vote_max_renorm_logprob(const std::vector<const float*>& rows, int64_t V, int32_t target);
double vote_mean_logprob(const std::vector<const float*>& rows, int64_t V, int32_t target);

// Logits of every exit for the rows of one forward_exits() output: logits[i] gets [n, V] of exit
// i from hidden [E, T, C] (rows r0..r0+n-1). xn: [n, C] scratch.
void exit_logits(const Model& m, const ExitHeads& h, const float* hidden, int64_t T, int64_t r0,
                 int64_t n, std::vector<float>& xn, std::vector<std::vector<float>>& logits);
// Logits of exit i alone ([n, V]) from hidden [T, C] of a forward that stopped at its depth
// (forward_exits with {h.depth(i)}): scoring one exit costs its layers and its head only.
void one_exit_logits(const Model& m, const ExitHeads& h, int i, const float* hidden, int64_t r0,
                     int64_t n, std::vector<float>& xn, std::vector<float>& logits);

struct PplExitsResult {
  std::vector<int> depths;
  std::vector<double> exit_mean_nll, exit_ppl;  // each exit's own
  double vote_max_renorm_nll = 0, vote_max_renorm_ppl = 0;
  double vote_mean_nll = 0, vote_mean_ppl = 0;
  int64_t predictions = 0, windows = 0, ctx = 0, tokens = 0;
  double seconds = 0;
};
// Perplexity of every exit and of both votes, the standard protocol (non-overlapping windows of
// ctx tokens, each from an empty cache, all predictions scored), one trunk forward per window.
// votes = false skips both votes (each costs E·V exponentials per prediction).
PplExitsResult perplexity_exits(const Model& m, const ExitHeads& h, const LoraAdapters* adapter,
                                const std::vector<int32_t>& tokens, int64_t ctx, bool votes = true);

// The adapter as a branch-mode exit at depth d was trained with: layers below its window
// (d - window) run the frozen base, i.e. their B matrices are zero; the rest as given.
LoraAdapters branch_adapter(const LoraAdapters& a, int d, int window);

}  // namespace edgellm
