// MMLU: CSV layouts and errors, the prompt against goldens written by hand from the harness's
// template, letter scoring against a constructed model and an independent from-scratch
// computation, prefix reuse, and the averages against hand-computed values.
#include "eval/mmlu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/model_files.h"
#include "io/csv.h"
#include "io/tensor_walk.h"
#include "kernels/activations.h"
#include "model/forward.h"
#include "test_util.h"
#include "tokenizer/spm_bpe.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(dir + "/" + name).parent_path());
  std::ofstream(dir + "/" + name, std::ios::binary) << text;
  return dir + "/" + name;
}

// Runs f, expects an Error whose message contains every part.
template <typename F>
void expect_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// ---- CSV ----------------------------------------------------------------------------------

TEST(Csv, QuotesEscapesEmbeddedNewlinesAndLineNumbers) {
  const auto r =
      parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\n\n\"last\",\"\"", "t.csv");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].line, 1);
  EXPECT_EQ(r[0].fields, (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"two\nlines", "", "x"}));
  EXPECT_EQ(r[2].line, 4);  // the empty line is a record of one empty field
  EXPECT_EQ(r[2].fields, (std::vector<std::string>{""}));
  EXPECT_EQ(r[3].line, 5);
  EXPECT_EQ(r[3].fields, (std::vector<std::string>{"last", ""}));
  EXPECT_EQ(parse_csv("x,\n", "t.csv")[0].fields, (std::vector<std::string>{"x", ""}));
}

TEST(Csv, MalformedInputNamesFileAndLine) {
  expect_error([] { parse_csv("a,b\nc,\"open\nstill open", "f.csv"); },
               {"[csv]", "f.csv", "line 2", "never closed"});
  expect_error([] { parse_csv("a,b\n\nab\"c,d", "g.csv"); }, {"g.csv", "line 3", "quote"});
  expect_error([] { parse_csv("\"a\"b,c", "h.csv"); }, {"h.csv", "line 1", "after the closing"});
}

// ---- MMLU files -----------------------------------------------------------------------------

const char* kIndexed =
    "question,choice0,choice1,choice2,choice3,answer\n"
    "\"What is 1+1, in words?\",one,two,\"three, or \"\"3\"\"\",four,1\n"
    "\"A question\nover two lines\",w,x,y,z,3\n";
const char* kLettered =
    "\"What is 1+1, in words?\",one,two,\"three, or \"\"3\"\"\",four,B\n"
    "\"A question\nover two lines\",w,x,y,z,D\n";

TEST(MmluCsv, BothLayoutsParseToTheSameQuestions) {
  const std::string dir = testing::temp_dir("mmlu_csv");
  const auto a = read_mmlu_csv(write(dir, "a.csv", kIndexed));
  const auto b = read_mmlu_csv(write(dir, "b.csv", kLettered));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i].question, b[i].question);
    EXPECT_EQ(a[i].choices, b[i].choices);
    EXPECT_EQ(a[i].answer, b[i].answer);
  }
  EXPECT_EQ(a[0].question, "What is 1+1, in words?");
  EXPECT_EQ(a[0].choices[2], "three, or \"3\"");
  EXPECT_EQ(a[0].answer, 1);
  EXPECT_EQ(a[1].question, "A question\nover two lines");
  EXPECT_EQ(a[1].answer, 3);
  EXPECT_EQ(a[1].line, 3);
  EXPECT_EQ(b[1].line, 2);
  std::filesystem::remove_all(dir);
}

TEST(MmluCsv, MalformedRowNamesFileAndLine) {
  const std::string dir = testing::temp_dir("mmlu_bad");
  // Line 4: five fields (the record on lines 2-3 spans a quoted newline).
  const std::string few = write(dir, "few.csv", "\"q\nq\",a,b,c,d,A\nq2,a,b,c,d,B\nq3,a,b,c,C\n");
  expect_error([&] { read_mmlu_csv(few); }, {"[mmlu]", few, "line 4", "5 fields"});
  const std::string letter = write(dir, "letter.csv", "q,a,b,c,d,A\nq2,a,b,c,d,E\n");
  expect_error([&] { read_mmlu_csv(letter); }, {letter, "line 2", "'E'", "A-D"});
  const std::string index =
      write(dir, "index.csv", "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,B\n");
  expect_error([&] { read_mmlu_csv(index); }, {index, "line 2", "'B'", "0-3"});
  const std::string quote = write(dir, "quote.csv", "q,a,b,c,d,A\n\"q2,a,b,c,d,A\n");
  expect_error([&] { read_mmlu_csv(quote); }, {quote, "line 2", "never closed"});
  std::filesystem::remove_all(dir);
}

TEST(MmluCsv, SharedDataParsesWithTheCanonicalCounts) {
  EDGELLM_REQUIRE_DATA("mmlu/test/abstract_algebra_test.csv");
  const std::string dir = testing::data_path("mmlu");
  const auto names = mmlu_subjects(dir);
  ASSERT_EQ(names.size(), 57u);
  size_t dev = 0, test = 0;
  for (const auto& n : names) {
    EXPECT_NE(mmlu_category(n), "") << n;
    const MmluSubject s = load_mmlu_subject(dir, n);
    dev += s.dev.size();
    test += s.test.size();
  }
  EXPECT_EQ(dev, 285u);  // SOURCES.md: 5 per subject, 14042 test questions
  EXPECT_EQ(test, 14042u);
}

// ---- Prompt --------------------------------------------------------------------------------

MmluSubject toy_subject() {
  MmluSubject s;
  s.name = "high_school_us_history";
  s.dev = {{"First dev?", {"a1", "b1", "c1", "d1"}, 2, 2},
           {"  Second dev?\n", {"a2", "b2", "c2", "d2"}, 0, 3},
           {"Third dev?", {"a3", "b3", "c3", "d3"}, 3, 4}};
  s.test = {{"\xC2\xA0Test question? ", {"w", "x", "y", " z "}, 1, 2}};
  return s;
}

TEST(MmluPrompt, ByteIdenticalToTheHarnessTemplate) {
  const MmluSubject s = toy_subject();
  // Written out by hand from _default_template_yaml (doc_to_text with question.strip(), target
  // delimiter " ", fewshot delimiter "\n\n") and the subject's description; U+00A0 and the
  // trailing space are stripped from the question (Python's str.strip), choices are kept as is.
  const std::string golden =
      "The following are multiple choice questions (with answers) about high school us "
      "history.\n\n"
      "First dev?\nA. a1\nB. b1\nC. c1\nD. d1\nAnswer: C\n\n"
      "Second dev?\nA. a2\nB. b2\nC. c2\nD. d2\nAnswer: A\n\n"
      "Test question?\nA. w\nB. x\nC. y\nD.  z \nAnswer:";
  EXPECT_EQ(mmlu_prompt(s, 2, s.test[0]), golden);
  EXPECT_EQ(mmlu_prompt(s, 0, s.test[0]),
            "The following are multiple choice questions (with answers) about high school us "
            "history.\n\nTest question?\nA. w\nB. x\nC. y\nD.  z \nAnswer:");
  // More shots than dev questions: all of them.
  EXPECT_EQ(mmlu_prompt(s, 9, s.test[0]), mmlu_prompt(s, 3, s.test[0]));
}

TEST(MmluPrompt, AbstractAlgebraGolden) {
  EDGELLM_REQUIRE_DATA("mmlu/test/abstract_algebra_test.csv");
  const MmluSubject s = load_mmlu_subject(testing::data_path("mmlu"), "abstract_algebra");
  EXPECT_EQ(mmlu_prompt(s, 1, s.test[0]),
            "The following are multiple choice questions (with answers) about abstract "
            "algebra.\n\n"
            "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. "
            "3\nAnswer: B\n\n"
            "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over "
            "Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:");
}

// ---- A constructed tokenizer and models ---------------------------------------------------

// SentencePiece-style vocabulary: specials, 256 byte pieces, "▁", printable ASCII and (when
// `letters`) the merged pieces "▁A".."▁D", so " A" after "Answer:" is one token as with Llama's.
std::unique_ptr<tok::SpmBpeTokenizer> toy_tokenizer(bool letters) {
  tok::ScoredVocab v;
  auto add = [&](std::string p, float score, tok::PieceType t) {
    v.pieces.push_back(std::move(p));
    v.scores.push_back(score);
    v.types.push_back(t);
  };
  add("<unk>", 0, tok::PieceType::kUnknown);
  add("<s>", 0, tok::PieceType::kControl);
  add("</s>", 0, tok::PieceType::kControl);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, tok::PieceType::kByte);
  add(std::string(tok::kSpmSpace), 0, tok::PieceType::kNormal);
  for (char ch = 0x21; ch < 0x7F; ++ch) add(std::string(1, ch), 0, tok::PieceType::kNormal);
  if (letters)
    for (const char* l : {"A", "B", "C", "D"})
      add(std::string(tok::kSpmSpace) + l, 1, tok::PieceType::kNormal);
  return std::make_unique<tok::SpmBpeTokenizer>(std::move(v), tok::SpmOptions{}, "toy");
}

int32_t piece_id(const tok::SpmBpeTokenizer& t, const std::string& p) {
  const auto& ps = t.vocab().pieces;
  for (size_t i = 0; i < ps.size(); ++i)
    if (ps[i] == p) return static_cast<int32_t>(i);
  ADD_FAILURE() << "no piece " << p;
  return 0;
}

ModelConfig toy_config(int vocab) {
  ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 12;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = vocab;
  c.max_seq_len = 1024;
  c.layers.resize(c.n_layers);
  return c;
}

// Owned f32 tensors of every spec, filled by fill(spec, data).
template <typename F>
std::unique_ptr<Model> make_model(const ModelConfig& c, F fill) {
  Checkpoint ck;
  ck.config = c;
  ck.path = "toy";
  for (const TensorSpec& s : model_tensor_specs(c)) {
    Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
    fill(s, reinterpret_cast<float*>(const_cast<uint8_t*>(t.data)), t.numel());
    ck.tensors.add(std::move(t));
  }
  return std::make_unique<Model>(std::move(ck));
}

std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed) {
  Rng r(seed);
  return make_model(c, [&](const TensorSpec& s, float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      p[i] = static_cast<float>(s.role == TensorRole::Norm ? 1.0 + 0.1 * r.normal()
                                                           : 0.5 * r.normal());
  });
}

// Predicts "▁C" right after ':' and "▁A" after any other token: the layers add nothing
// (zero weights), the embedding of ':' is e0 and of every other token e1, and the head maps e0
// to "▁C" and e1 to "▁A". Scoring at any position other than the one after "Answer:" picks A.
std::unique_ptr<Model> colon_model(const tok::SpmBpeTokenizer& t) {
  const ModelConfig c = toy_config(t.vocab_size());
  const int32_t colon = piece_id(t, ":"), lc = piece_id(t, std::string(tok::kSpmSpace) + "C"),
                la = piece_id(t, std::string(tok::kSpmSpace) + "A");
  return make_model(c, [&](const TensorSpec& s, float* p, int64_t n) {
    std::fill(p, p + n, 0.f);
    if (s.role == TensorRole::Norm) std::fill(p, p + n, 1.f);
    if (s.role == TensorRole::Embedding)
      for (int64_t v = 0; v < c.vocab_size; ++v) p[v * c.dim + (v == colon ? 0 : 1)] = 1.f;
    if (s.role == TensorRole::Head) {
      p[lc * c.dim + 0] = 4.f;
      p[la * c.dim + 1] = 4.f;
    }
  });
}

// A subject with `n` test questions of varying length, all with answer `answer`.
MmluSubject toy_questions(int n, int answer) {
  MmluSubject s;
  s.name = "college_physics";
  for (int i = 0; i < 5; ++i)
    s.dev.push_back({fmt::format("Dev question {}: what is {} + {}?", i, i, 2 * i),
                     {fmt::format("{}", i), "2", "seven", "x"},
                     i % 4,
                     i + 2});
  for (int i = 0; i < n; ++i) {
    std::string q = fmt::format("Test {}: why?", i);
    for (int j = 0; j < (i * 7) % 23; ++j) q += " Because of reason " + std::to_string(j) + ".";
    s.test.push_back({q, {"alpha", "beta", "gamma", "delta"}, answer, i + 2});
  }
  return s;
}

TEST(MmluScore, LettersAreSingleTokensScoredAfterTheColon) {
  const auto tok = toy_tokenizer(true);
  const auto m = colon_model(*tok);
  const MmluSubject s = toy_questions(6, 2);  // every answer C
  const MmluRequest r = mmlu_request(*tok, s, s.test[0], 5, 1024, false);
  EXPECT_EQ(r.shots, 5);
  EXPECT_EQ(r.context, tok->encode(mmlu_prompt(s, 5, s.test[0])));
  EXPECT_EQ(r.context.back(), piece_id(*tok, ":"));
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ(r.letters[c], std::vector<int32_t>{piece_id(
                                *tok, std::string(tok::kSpmSpace) + std::string(1, 'A' + c))});
  EXPECT_EQ(r.boundary_mismatches, 0);

  MmluOptions o;
  MmluResult res = evaluate_mmlu(*m, *tok, {s}, o);
  EXPECT_EQ(res.overall.correct, 6);
  EXPECT_DOUBLE_EQ(res.overall.micro, 1.0);
  for (const MmluItem& it : res.subjects[0].items) EXPECT_EQ(it.pred, 2);
  EXPECT_EQ(res.predicted, (std::array<int64_t, 4>{0, 0, 6, 0}));
  EXPECT_EQ(res.answers, (std::array<int64_t, 4>{0, 0, 6, 0}));
  // The same model on questions whose answer is B gets none right.
  res = evaluate_mmlu(*m, *tok, {toy_questions(6, 1)}, o);
  EXPECT_EQ(res.overall.correct, 0);
  // With BOS prepended the scored position is still the one after ':'.
  o.bos = true;
  res = evaluate_mmlu(*m, *tok, {s}, o);
  EXPECT_EQ(res.overall.correct, 6);
}

// Log-likelihood of each continuation computed from scratch: one fresh forward over context +
// continuation, log-softmax of the logits row before each continuation token.
std::array<double, 4> from_scratch(const Model& m, const MmluRequest& r) {
  const int64_t V = m.config().vocab_size, C = m.config().dim;
  std::array<double, 4> out{};
  for (int c = 0; c < 4; ++c) {
    std::vector<int32_t> seq = r.context;
    seq.insert(seq.end(), r.letters[c].begin(), r.letters[c].end() - 1);
    InferenceState st(m, static_cast<int64_t>(seq.size()));
    const float* h = st.forward(seq.data(), static_cast<int64_t>(seq.size()));
    std::vector<float> logits(V);
    for (size_t j = 0; j < r.letters[c].size(); ++j) {
      st.logits(h + (r.context.size() - 1 + j) * C, 1, logits.data());
      float loss;
      cross_entropy_forward(&loss, logits.data(), &r.letters[c][j], 1, V);
      out[c] -= loss;
    }
  }
  return out;
}

void check_prefix_reuse(bool single_token_letters) {
  const auto tok = toy_tokenizer(single_token_letters);
  const auto m = random_model(toy_config(tok->vocab_size()), 7);
  const MmluSubject s = toy_questions(12, 0);
  MmluOptions o;
  o.ctx = 260;  // the 5-shot prompts (~300-500 tokens) must drop shots; some lose them all
  const MmluResult reuse = evaluate_mmlu(*m, *tok, {s}, o);
  o.reuse_prefix = false;
  const MmluResult fresh = evaluate_mmlu(*m, *tok, {s}, o);
  EXPECT_GT(reuse.tokens_reused, 0);
  EXPECT_EQ(fresh.tokens_reused, 0);
  EXPECT_LT(reuse.tokens_computed, fresh.tokens_computed);
  EXPECT_GT(reuse.shortened, 0);
  EXPECT_GT(reuse.truncated, 0);
  EXPECT_LT(reuse.truncated, reuse.shortened);
  for (size_t i = 0; i < s.test.size(); ++i) {
    const MmluItem &a = reuse.subjects[0].items[i], &b = fresh.subjects[0].items[i];
    const MmluRequest r = mmlu_request(*tok, s, s.test[i], 5, o.ctx, false);
    EXPECT_EQ(r.letters[0].size(), single_token_letters ? 1u : 2u);
    EXPECT_EQ(a.shots, r.shots);
    const auto truth = from_scratch(*m, r);
    for (int c = 0; c < 4; ++c) {
      EXPECT_NEAR(a.loglik[c], truth[c], 1e-4) << "question " << i << " letter " << c;
      EXPECT_NEAR(b.loglik[c], truth[c], 1e-4) << "question " << i << " letter " << c;
    }
    EXPECT_EQ(a.pred, b.pred);
  }
}

TEST(MmluScore, PrefixReuseMatchesFromScratchSingleTokenLetters) { check_prefix_reuse(true); }
TEST(MmluScore, PrefixReuseMatchesFromScratchMultiTokenLetters) { check_prefix_reuse(false); }

TEST(MmluScore, ShotsDropFromTheEndUntilThePromptFits) {
  const auto tok = toy_tokenizer(true);
  const MmluSubject s = toy_questions(1, 0);
  auto len = [&](int k) {
    return static_cast<int64_t>(tok->encode(mmlu_prompt(s, k, s.test[0])).size());
  };
  // A context that holds exactly the 2-shot prompt: 2 shots kept, not 3.
  const MmluRequest r = mmlu_request(*tok, s, s.test[0], 5, len(2), false);
  ASSERT_LT(len(2), len(3));
  EXPECT_EQ(r.shots, 2);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.context, tok->encode(mmlu_prompt(s, 2, s.test[0])));
  // Shorter than the 0-shot prompt: its last ctx tokens.
  const int64_t ctx = len(0) - 5;
  const MmluRequest t = mmlu_request(*tok, s, s.test[0], 5, ctx, false);
  const auto full = tok->encode(mmlu_prompt(s, 0, s.test[0]));
  EXPECT_EQ(t.shots, 0);
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.context, std::vector<int32_t>(full.end() - ctx, full.end()));
}

TEST(MmluScore, LetterLoglikAndPick) {
  const std::vector<float> logits{1.f, 2.f, 3.f, 4.f, 5.f};
  double lse = 0;
  for (float x : logits) lse += std::exp(double(x));
  lse = std::log(lse);
  const auto ll = letter_logliks(logits.data(), 5, {4, 3, 0, 1});
  EXPECT_NEAR(ll[0], 5 - lse, 1e-12);
  EXPECT_NEAR(ll[1], 4 - lse, 1e-12);
  EXPECT_NEAR(ll[2], 1 - lse, 1e-12);
  EXPECT_NEAR(ll[3], 2 - lse, 1e-12);
  EXPECT_EQ(mmlu_pick({ll}), 0);
  EXPECT_EQ(mmlu_pick({{-1, -0.5, -0.5, -2}}), 1);  // first maximum on ties
  // Several heads: the single most likely (head, letter) wins.
  EXPECT_EQ(mmlu_pick({{-1, -2, -3, -4}, {-3, -0.2, -5, -5}}), 1);
}

// ---- Averages --------------------------------------------------------------------------------

TEST(MmluAggregate, MicroAndMacroOnAHandExample) {
  MmluResult r;
  auto add = [&](const std::string& n, int64_t correct, int64_t q) {
    MmluSubjectResult s;
    s.name = n;
    s.category = mmlu_category(n);
    s.correct = correct;
    s.questions = q;
    r.subjects.push_back(s);
  };
  add("abstract_algebra", 3, 4);  // stem
  add("anatomy", 1, 2);           // stem in the harness (hendrycks: other)
  add("philosophy", 0, 1);        // humanities
  add("my_own_subject", 2, 2);    // no category
  mmlu_aggregate(r);
  EXPECT_DOUBLE_EQ(r.subjects[0].acc, 0.75);
  EXPECT_EQ(r.overall.questions, 9);
  EXPECT_EQ(r.overall.correct, 6);
  EXPECT_DOUBLE_EQ(r.overall.micro, 6.0 / 9.0);
  EXPECT_DOUBLE_EQ(r.overall.macro, (0.75 + 0.5 + 0.0 + 1.0) / 4);
  ASSERT_EQ(r.categories.size(), 2u);
  EXPECT_EQ(r.categories[0].name, "stem");
  EXPECT_DOUBLE_EQ(r.categories[0].micro, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(r.categories[0].macro, (0.75 + 0.5) / 2);
  EXPECT_EQ(r.categories[1].name, "humanities");
  EXPECT_DOUBLE_EQ(r.categories[1].micro, 0.0);
}

TEST(MmluCategory, HarnessTableCounts) {
  // The harness's groups: 19 stem (incl. anatomy), 13 humanities, 12 social sciences, 13 other.
  EDGELLM_REQUIRE_DATA("mmlu/test/abstract_algebra_test.csv");
  std::map<std::string, int> n;
  for (const auto& s : mmlu_subjects(testing::data_path("mmlu"))) ++n[mmlu_category(s)];
  EXPECT_EQ(n["stem"], 19);
  EXPECT_EQ(n["humanities"], 13);
  EXPECT_EQ(n["social_sciences"], 12);
  EXPECT_EQ(n["other"], 13);
}

// ---- stories260K: a real SentencePiece tokenizer ------------------------------------------

TEST(MmluStories, PrefixReuseMatchesFromScratchOnARealModel) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  EDGELLM_REQUIRE_DATA("mmlu/test/abstract_algebra_test.csv");
  const auto m = Model::load(testing::stories260k_path());
  const auto tok = load_tokenizer_for(*m, "");
  const MmluSubject s = load_mmlu_subject(testing::data_path("mmlu"), "abstract_algebra");
  MmluOptions o;
  o.limit = 8;
  const MmluResult r = evaluate_mmlu(*m, *tok, {s}, o);
  EXPECT_GT(r.tokens_reused, 0);
  EXPECT_EQ(r.boundary_mismatches, 0);
  for (int64_t i = 0; i < o.limit; ++i) {
    const MmluRequest q = mmlu_request(*tok, s, s.test[i], 5, 512, false);
    // tok512 has the piece " B" but not " A", " C", " D": those are "▁" + letter, scored as
    // two tokens (the harness's continuation = encode(prompt + " A")[len(encode(prompt)):]).
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(q.letters[c].size(), c == 1 ? 1u : 2u) << c;
      std::vector<int32_t> seq = q.context;
      seq.insert(seq.end(), q.letters[c].begin(), q.letters[c].end());
      EXPECT_EQ(tok->decode(seq), tok->decode(q.context) + " " + char('A' + c));
    }
    const auto truth = from_scratch(*m, q);
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(r.subjects[0].items[i].loglik[c], truth[c], 1e-4);
  }
}

}  // namespace
}  // namespace edgellm
