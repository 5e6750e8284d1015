// The embedded adaptation task: instruction-following records with one exact answer, generated
// deterministically from a seed, so the default pipeline needs no data files. Each record is an
// Alpaca-style (instruction, input, output) triple; training masks the prompt (train/data.h) and
// evaluation scores exact match of the greedy response and its NLL (eval/task_eval.h).
//
// Families (the words come from a fixed list of common English words, numbers are decimals):
//   copy     "Repeat the words."                      w1 w2 w3   -> w1 w2 w3
//   reverse  "Reverse the order of the words."        w1 w2 w3   -> w3 w2 w1
//   first    "What is the first word?"                w1 w2 w3   -> w1
//   last     "What is the last word?"                 w1 w2 w3   -> w3
//   count    "How many words are there?"              w1 w2 w3   -> 3
//   sort     "Sort the numbers from smallest to largest."  7 3 12 -> 3 7 12   (0..99)
//   add      "Add the two numbers."                   3 + 5      -> 8        (0..9 each)
// Word counts are drawn uniformly in [min_words, max_words]. The held-out split is generated
// from its own stream and every training record whose (instruction, input) occurs in it is
// skipped, so test prompts are never seen in training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm::pipeline {

struct TaskRecord {
  std::string instruction, input, output;
  std::string family;  // synthetic only ("" for records read from a file)
};

struct SyntheticTaskOptions {
  std::vector<std::string> families = {"copy", "reverse", "last", "add"};
  int64_t n_train = 2000, n_test = 100;
  int min_words = 2, max_words = 4;
  uint64_t seed = 1;
};

struct TaskSplit {
  std::vector<TaskRecord> train, test;
};

const std::vector<std::string>& synthetic_families();
// Throws naming the option for an unknown family or an empty / inverted word range.
TaskSplit synthetic_task(const SyntheticTaskOptions& o);

// JSON Lines with instruction / input / output (+ family when set), one record a line.
std::string task_records_jsonl(const std::vector<TaskRecord>& r);
// Alpaca .json array or .jsonl; "input" optional. Errors name the file and record.
std::vector<TaskRecord> read_task_records(const std::string& path);
// A seeded split of file records: the last n_test of a seeded shuffle are held out.
TaskSplit split_records(std::vector<TaskRecord> all, int64_t n_test, uint64_t seed);

}  // namespace edgellm::pipeline
