// The embedded task: deterministic per seed, answers correct by an independent computation
// from the record's own text, held-out prompts never in training.
#include "pipeline/synthetic_task.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "util/error.h"

namespace edgellm::pipeline {
namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

// The answer recomputed from the instruction and input alone.
std::string expected(const TaskRecord& r) {
  auto w = words(r.input);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  };
  if (r.instruction == "Repeat the words.") return join(w);
  if (r.instruction == "Reverse the order of the words.") return join({w.rbegin(), w.rend()});
  if (r.instruction == "What is the first word?") return w.front();
  if (r.instruction == "What is the last word?") return w.back();
  if (r.instruction == "How many words are there?") return std::to_string(w.size());
  if (r.instruction == "Add the two numbers.") {
    EXPECT_EQ(w.size(), 3u);
    EXPECT_EQ(w[1], "+");
    return std::to_string(std::stoi(w[0]) + std::stoi(w[2]));
  }
  if (r.instruction == "Sort the numbers from smallest to largest.") {
    std::vector<int> x;
    for (const auto& s : w) x.push_back(std::stoi(s));
    std::stable_sort(x.begin(), x.end());
    std::vector<std::string> o;
    for (int v : x) o.push_back(std::to_string(v));
    return join(o);
  }
  ADD_FAILURE() << "unknown instruction " << r.instruction;
  return "";
}

SyntheticTaskOptions all_families(uint64_t seed) {
  SyntheticTaskOptions o;
  o.families = synthetic_families();
  o.n_train = 700;
  o.n_test = 70;
  o.seed = seed;
  return o;
}

TEST(SyntheticTask, DeterministicPerSeed) {
  const TaskSplit a = synthetic_task(all_families(3)), b = synthetic_task(all_families(3));
  EXPECT_EQ(task_records_jsonl(a.train), task_records_jsonl(b.train));
  EXPECT_EQ(task_records_jsonl(a.test), task_records_jsonl(b.test));
  const TaskSplit c = synthetic_task(all_families(4));
  EXPECT_NE(task_records_jsonl(a.train), task_records_jsonl(c.train));
  EXPECT_NE(task_records_jsonl(a.test), task_records_jsonl(c.test));
}

TEST(SyntheticTask, AnswersAreCorrect) {
  const TaskSplit s = synthetic_task(all_families(11));
  std::map<std::string, int> fam;
  for (const auto* set : {&s.train, &s.test})
    for (const TaskRecord& r : *set) {
      EXPECT_EQ(r.output, expected(r)) << r.instruction << " | " << r.input;
      ++fam[r.family];
      if (r.family != "add") {
        const size_t n = words(r.input).size();
        EXPECT_GE(n, 2u);
        EXPECT_LE(n, 4u);
      }
    }
  // An exact mix: every family the same number of times (770 = 7 × 110).
  EXPECT_EQ(fam.size(), synthetic_families().size());
  for (const auto& [f, n] : fam) EXPECT_EQ(n, 110) << f;
}

TEST(SyntheticTask, HeldOutPromptsNeverTrain) {
  const TaskSplit s = synthetic_task(all_families(5));
  std::set<std::string> test;
  for (const auto& r : s.test) test.insert(r.instruction + "\n" + r.input);
  for (const auto& r : s.train) EXPECT_FALSE(test.count(r.instruction + "\n" + r.input));
  EXPECT_EQ(s.train.size(), 700u);
  EXPECT_EQ(s.test.size(), 70u);
}

TEST(SyntheticTask, BadOptionsAreErrors) {
  SyntheticTaskOptions o;
  o.families = {"copy", "juggle"};
  EXPECT_THROW(synthetic_task(o), Error);
  o.families = {"copy"};
  o.min_words = 3;
  o.max_words = 2;
  EXPECT_THROW(synthetic_task(o), Error);
  // Only 100 distinct additions exist: 100 held out leaves none to train on.
  o = {};
  o.families = {"add"};
  o.n_test = 400;
  EXPECT_THROW(synthetic_task(o), Error);
}

TEST(SyntheticTask, RecordsRoundTripThroughJsonl) {
  const TaskSplit s = synthetic_task(all_families(2));
  const std::string path = ::testing::TempDir() + "/task_roundtrip.jsonl";
  {
    std::ofstream f(path);
    f << task_records_jsonl(s.test);
  }
  const auto back = read_task_records(path);
  ASSERT_EQ(back.size(), s.test.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].instruction, s.test[i].instruction);
    EXPECT_EQ(back[i].input, s.test[i].input);
    EXPECT_EQ(back[i].output, s.test[i].output);
    EXPECT_EQ(back[i].family, s.test[i].family);
  }
}

}  // namespace
}  // namespace edgellm::pipeline
