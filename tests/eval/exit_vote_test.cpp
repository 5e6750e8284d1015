// Exit voting (eval/exit_vote.h, PAPER.md §3): a constructed case with a known winner, the
// max-then-renormalise and mean distributions against hand values, the vote of a single exit
// equal to that exit (math, perplexity, generation), and the MMLU vote over letters only.
#include "eval/exit_vote.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/generate.h"
#include "eval/mmlu.h"
#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "eval/task_eval.h"
#include "kernels/threads.h"
#include "test_util.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

std::vector<double> softmax(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += std::exp(double(v));
  std::vector<double> p;
  for (float v : x) p.push_back(std::exp(double(v)) / s);
  return p;
}

TEST(ExitVote, KnownWinnerAndHandComputedDistributions) {
  // Exit 0 is flat-ish, exit 1 is sure of token 2, exit 2 prefers token 0 less surely.
  const std::vector<float> e0{1.0f, 1.2f, 0.9f, 1.1f}, e1{0.f, 0.f, 4.f, 0.f},
      e2{3.f, 0.f, 1.f, 0.5f};
  const std::vector<const float*> rows{e0.data(), e1.data(), e2.data()};
  const VotePick v = vote_argmax(rows, 4);
  EXPECT_EQ(v.exit, 1);
  EXPECT_EQ(v.token, 2);
  EXPECT_NEAR(v.prob, softmax(e1)[2], 1e-12);
  // The winner is not the exit whose argmax is most common nor the one with the largest logit.
  const std::vector<float> big{10.f, 9.5f, 9.8f, 9.9f};  // largest logit, flat distribution
  EXPECT_EQ(vote_argmax({big.data(), e1.data()}, 4).exit, 1);
  // Max-then-renormalise and mean, by hand.
  const auto p0 = softmax(e0), p1 = softmax(e1), p2 = softmax(e2);
  double z = 0;
  std::vector<double> q(4);
  for (int j = 0; j < 4; ++j) z += q[j] = std::max({p0[j], p1[j], p2[j]});
  for (int t = 0; t < 4; ++t) {
    EXPECT_NEAR(vote_max_renorm_logprob(rows, 4, t), std::log(q[t] / z), 1e-12) << t;
    EXPECT_NEAR(vote_mean_logprob(rows, 4, t), std::log((p0[t] + p1[t] + p2[t]) / 3), 1e-12);
  }
}

TEST(ExitVote, VoteOfOneExitIsThatExit) {
  Rng r(4);
  std::vector<float> x(50);
  for (float& v : x) v = static_cast<float>(2 * r.normal());
  const std::vector<const float*> one{x.data()};
  const auto p = softmax(x);
  const VotePick v = vote_argmax(one, 50);
  EXPECT_EQ(v.exit, 0);
  EXPECT_EQ(v.token, static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin()));
  for (int t = 0; t < 50; t += 7) {
    EXPECT_NEAR(vote_max_renorm_logprob(one, 50, t), std::log(p[t]), 1e-12);
    EXPECT_NEAR(vote_mean_logprob(one, 50, t), std::log(p[t]), 1e-12);
  }
}

TEST(ExitVote, MmluVoteComparesLetterProbabilitiesOnly) {
  // Vocabulary of 8; letters A..D are ids 4..7. Exit 0 puts 0.9+ on a non-letter (id 1), so a
  // whole-vocabulary vote picks exit 0; its letters are all small, B largest. Exit 1 spreads
  // mass but gives letter D the largest letter probability of any exit: the MMLU vote is D.
  const std::vector<float> e0{0.f, 8.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f},
      e1{1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 2.f};
  const std::array<int32_t, 4> letters{4, 5, 6, 7};
  EXPECT_EQ(vote_argmax({e0.data(), e1.data()}, 8).exit, 0);
  const std::vector<std::array<double, 4>> rows{letter_logliks(e0.data(), 8, letters),
                                                letter_logliks(e1.data(), 8, letters)};
  EXPECT_EQ(mmlu_pick({rows[0]}), 1);  // B alone at exit 0
  EXPECT_EQ(mmlu_pick(rows), 3);       // D: the largest letter probability over both exits
  EXPECT_EQ(mmlu_pick_exit(rows), 1);
}

class ExitVoteModel : public ::testing::Test {
 protected:
  void SetUp() override {
    set_num_threads(1);
    if (!std::filesystem::exists(testing::stories260k_path()))
      GTEST_SKIP() << "stories260K missing";
    m_ = Model::load(testing::stories260k_path());
    tok_ = load_tokenizer_for(*m_, "");
  }
  void TearDown() override { set_num_threads(0); }
  ExitHeads heads(std::vector<int> depths) const {
    ExitConfig c;
    c.depths = std::move(depths);
    c.window = 1;
    ExitHeads h(m_->config(), c);
    h.init_from(*m_);
    return h;
  }
  std::shared_ptr<Model> m_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(ExitVoteModel, PerplexityOfTheDeepestExitIsThePlainOneAndOneExitVotesAsItself) {
  const std::vector<int32_t> ids =
      ppl_tokens(*tok_,
                 "Once upon a time there was a little girl who liked to play in the park "
                 "with her dog. One day the dog ran away and she was sad.",
                 0);
  PplOptions po;
  po.ctx = 24;
  const PplResult plain = perplexity(*m_, ids, po);
  const PplExitsResult all = perplexity_exits(*m_, heads({1, 3, 5}), nullptr, ids, 24);
  ASSERT_EQ(all.exit_ppl.size(), 3u);
  // The same weights through the exit path (exit_logits) and the plain one (logits): equal up to
  // fp32 rounding — the two paths' SIMD reductions may sum in a different order.
  EXPECT_NEAR(all.exit_ppl[2], plain.ppl, 1e-6 * plain.ppl);
  EXPECT_EQ(all.predictions, plain.predictions);
  EXPECT_GT(all.exit_ppl[0], all.exit_ppl[2]);  // a 1-layer exit predicts worse
  const PplExitsResult one = perplexity_exits(*m_, heads({5}), nullptr, ids, 24);
  EXPECT_NEAR(one.vote_max_renorm_ppl, one.exit_ppl[0], 1e-9 * one.exit_ppl[0]);
  EXPECT_NEAR(one.vote_mean_ppl, one.exit_ppl[0], 1e-9 * one.exit_ppl[0]);
}

TEST_F(ExitVoteModel, GenerationVoteOfOneExitAndTheDeepestExitAreThePlainGeneration) {
  SamplerConfig sc;
  sc.temperature = 0;
  const GenerateResult plain = generate(*m_, *tok_, "Once upon a time", 16, sc);
  const ExitHeads one = heads({5}), three = heads({2, 4, 5});
  const GenerateResult voted = generate(*m_, *tok_, "Once upon a time", 16, sc, nullptr, nullptr,
                                        GenerateExits{&one, -1, true});
  EXPECT_EQ(voted.ids, plain.ids);
  const GenerateResult deepest = generate(*m_, *tok_, "Once upon a time", 16, sc, nullptr, nullptr,
                                          GenerateExits{&three, 2, false});
  EXPECT_EQ(deepest.ids, plain.ids);
  EXPECT_EQ(deepest.exits, std::vector<int>(deepest.ids.size(), 2));
  // A three-exit vote reports, per token, the exit that won it.
  const GenerateResult v3 = generate(*m_, *tok_, "Once upon a time", 16, sc, nullptr, nullptr,
                                     GenerateExits{&three, -1, true});
  EXPECT_EQ(v3.exits.size(), v3.ids.size());
}

TEST_F(ExitVoteModel, MmluScoreOfTheDeepestExitIsThePlainScore) {
  MmluRequest r;
  r.context = {1, 40, 80, 120, 160, 200, 240};
  r.letters = {std::vector<int32_t>{65}, {66}, {67, 90}, {68}};  // one two-token continuation
  InferenceState a(*m_, 32), b(*m_, 32);
  MmluScorer plain(a, true), ex(b, true);
  const ExitHeads h = heads({2, 5});
  for (int rep = 0; rep < 2; ++rep) {  // the second time from the reused cache
    const std::array<double, 4> want = plain.score(r);
    const std::vector<std::array<double, 4>> got = ex.score_exits(r, h);
    ASSERT_EQ(got.size(), 2u);
    for (int l = 0; l < 4; ++l) EXPECT_NEAR(got[1][l], want[l], 1e-9) << rep << " " << l;
    EXPECT_NE(got[0], got[1]);
  }
}

// Every exit's MMLU result comes out of one vote run (the same forwards): equal to scoring that
// exit alone, subject by subject and overall.
TEST_F(ExitVoteModel, MmluPerExitResultsOfAVoteRunEqualSingleExitRuns) {
  MmluSubject s{"astronomy", {}, {}};
  const char* words[] = {"sun", "moon", "star", "sky", "cat", "dog", "tree", "ball"};
  for (int i = 0; i < 8; ++i) {
    MmluQuestion q;
    q.question = fmt::format("Which one is {}?", words[i]);
    q.choices = {words[i % 8], words[(i + 1) % 8], words[(i + 3) % 8], words[(i + 5) % 8]};
    q.answer = i % 4;
    (i < 2 ? s.dev : s.test).push_back(q);
  }
  MmluSubject t = s;
  t.name = "virology";
  const std::vector<MmluSubject> subjects{s, t};
  const ExitHeads h = heads({1, 3, 5});
  MmluOptions o;
  o.shots = 2;
  o.ctx = 256;
  o.exits = &h;
  o.vote = true;
  const MmluResult voted = evaluate_mmlu(*m_, *tok_, subjects, o);
  o.vote = false;
  for (int e = 0; e < 3; ++e) {
    o.exit = e;
    const MmluResult alone = evaluate_mmlu(*m_, *tok_, subjects, o);
    const MmluResult derived = mmlu_exit_result(voted, e);
    EXPECT_EQ(derived.overall.correct, alone.overall.correct) << e;
    EXPECT_EQ(derived.overall.correct, voted.exit_correct[static_cast<size_t>(e)]) << e;
    EXPECT_DOUBLE_EQ(derived.overall.macro, alone.overall.macro) << e;
    EXPECT_EQ(derived.predicted, alone.predicted) << e;
    for (size_t k = 0; k < subjects.size(); ++k)
      for (size_t i = 0; i < alone.subjects[k].items.size(); ++i)
        EXPECT_EQ(derived.subjects[k].items[i].pred, alone.subjects[k].items[i].pred) << e;
  }
  EXPECT_THROW(mmlu_exit_result(voted, 3), Error);
  o.exits = nullptr;
  EXPECT_THROW(mmlu_exit_result(evaluate_mmlu(*m_, *tok_, subjects, o), 0), Error);
}

// The pipeline's task evaluation through exits: the deepest exit and a one-exit vote are the
// plain evaluation (same greedy answers, same response NLL); a shallow exit is worse.
TEST_F(ExitVoteModel, TaskEvaluationAtTheDeepestExitAndOneExitVoteIsThePlainOne) {
  const std::vector<PromptResponse> data = {{"Once upon a time", " there was a little girl.", "a"},
                                            {"The dog ran", " to the park and played.", "b"},
                                            {"Lily wanted to", " play with her ball.", "a"}};
  TaskEvalOptions o;
  o.max_new_tokens = 8;
  const TaskEvalResult plain = evaluate_task(*m_, *tok_, data, o);
  const ExitHeads three = heads({1, 3, 5}), one = heads({5});
  o.exits = &three;
  o.exit = 2;
  const TaskEvalResult deepest = evaluate_task(*m_, *tok_, data, o);
  o.exit = 0;
  const TaskEvalResult shallow = evaluate_task(*m_, *tok_, data, o);
  o.exits = &one;
  o.exit = -1;
  o.vote = true;
  const TaskEvalResult voted = evaluate_task(*m_, *tok_, data, o);
  for (const TaskEvalResult* r : {&deepest, &voted}) {
    EXPECT_NEAR(r->overall.response_nll, plain.overall.response_nll, 1e-9);
    EXPECT_EQ(r->overall.response_tokens, plain.overall.response_tokens);
    ASSERT_EQ(r->samples.size(), plain.samples.size());
    for (size_t i = 0; i < plain.samples.size(); ++i)
      EXPECT_EQ(r->samples[i].got, plain.samples[i].got);
  }
  EXPECT_GT(shallow.overall.response_nll, plain.overall.response_nll);
  // The shallow exit runs only its layer and its head; the same exit's logits taken from a
  // forward through every exit (exit_logits) give the same NLL, and generation through the vote
  // path of a one-exit head the same answers.
  double sum = 0;
  int64_t count = 0;
  std::vector<float> xn;
  std::vector<std::vector<float>> lg;
  for (const PromptResponse& ex : data) {
    std::vector<int32_t> ids{tok_->bos_id()};
    for (int32_t id : tok_->encode(ex.prompt + ex.response)) ids.push_back(id);
    ids.push_back(tok_->eos_id());
    const int64_t n_prompt = 1 + static_cast<int64_t>(tok_->encode(ex.prompt).size());
    const int64_t T = static_cast<int64_t>(ids.size()) - 1, V = m_->config().vocab_size;
    InferenceState st(*m_);
    const float* hid = st.forward_exits(ids.data(), T, three.config().depths);
    exit_logits(*m_, three, hid, T, n_prompt - 1, T - n_prompt + 1, xn, lg);
    for (int64_t k = 0; k + n_prompt <= T; ++k) {
      const float* row = lg[0].data() + k * V;
      const double mx = *std::max_element(row, row + V);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
      sum += std::log(z) + mx - double(row[ids[static_cast<size_t>(n_prompt + k)]]);
      ++count;
    }
  }
  EXPECT_EQ(shallow.overall.response_tokens, count);
  EXPECT_NEAR(shallow.overall.response_nll, sum / double(count), 1e-6);
  SamplerConfig sc;
  sc.temperature = 0;
  const ExitHeads first = heads({1});  // a one-exit vote runs the vote path: exit_logits
  for (size_t i = 0; i < shallow.samples.size(); ++i) {
    const GenerateResult g = generate(*m_, *tok_, data[i].prompt, 8, sc, nullptr, nullptr,
                                      GenerateExits{&first, -1, true});
    EXPECT_EQ(trim_ws(shallow.samples[i].got), trim_ws(g.text))
        << i;  // decoded alone vs after the prompt
  }
  o.exits = &three;
  o.vote = false;
  o.exit = 3;
  EXPECT_THROW(evaluate_task(*m_, *tok_, data, o), Error);
}

// score_all_exits: every exit's NLL and both votes' from the vote's one pass. Each exit's equals
// its own evaluation; with responses of one scored token (the EOS after an empty response) the
// mean vote's NLL is −log of the mean of the exits' probabilities, computed here from those
// per-exit evaluations, and max-then-renormalise is the vote evaluation's own NLL.
TEST_F(ExitVoteModel, TaskEvaluationScoresEveryExitAndBothVotesInOnePass) {
  const std::vector<PromptResponse> data = {{"Once upon a time", "", ""},
                                            {"The dog ran to the", "", ""},
                                            {"Lily wanted to play with her", "", ""}};
  const ExitHeads three = heads({1, 3, 5});
  TaskEvalOptions o;
  o.max_new_tokens = 4;
  o.exits = &three;
  o.vote = true;
  o.score_all_exits = true;
  const TaskEvalResult all = evaluate_task(*m_, *tok_, data, o);
  o.score_all_exits = false;
  const TaskEvalResult voted = evaluate_task(*m_, *tok_, data, o);
  ASSERT_EQ(all.overall.response_tokens, 3);  // one EOS per example
  ASSERT_EQ(all.overall.exit_response_nll.size(), 3u);
  EXPECT_TRUE(voted.overall.exit_response_nll.empty());
  EXPECT_NEAR(all.overall.response_nll, voted.overall.response_nll, 1e-12);
  EXPECT_NEAR(all.overall.vote_max_renorm_nll, voted.overall.response_nll, 1e-12);
  o.vote = false;
  double mean_vote = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    double p = 0;
    for (int e = 0; e < 3; ++e) {
      o.exit = e;
      const double nll = evaluate_task(*m_, *tok_, {data[i]}, o).overall.response_nll;
      p += std::exp(-nll) / 3;
    }
    mean_vote -= std::log(p) / 3;
  }
  EXPECT_NEAR(all.overall.vote_mean_nll, mean_vote, 1e-9);
  for (int e = 0; e < 3; ++e) {
    o.exit = e;
    EXPECT_NEAR(all.overall.exit_response_nll[e],
                evaluate_task(*m_, *tok_, data, o).overall.response_nll, 1e-12)
        << e;
  }
  // The exits differ (a 1-layer exit is not the 5-layer one), so the checks above can fail.
  EXPECT_GT(std::abs(all.overall.exit_response_nll[0] - all.overall.exit_response_nll[2]), 1e-3);
  o.exits = nullptr;
  o.exit = -1;
  o.score_all_exits = true;
  EXPECT_THROW(evaluate_task(*m_, *tok_, data, o), Error);
}

}  // namespace
}  // namespace edgellm
