#include "pipeline/synthetic_task.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm::pipeline {

namespace {

// Short, frequent words of children's books, so a model pretrained on English text knows them.
const char* kWords[] = {"cat",   "dog",   "sun",   "moon", "tree", "book",  "door", "bird",
                        "fish",  "cake",  "ball",  "boat", "star", "rain",  "milk", "hat",
                        "bed",   "car",   "cup",   "red",  "blue", "green", "big",  "small",
                        "happy", "sad",   "run",   "jump", "play", "sing",  "home", "park",
                        "girl",  "boy",   "mom",   "dad",  "king", "frog",  "duck", "bear",
                        "apple", "bread", "water", "snow", "hill", "road",  "box",  "toy"};
constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);

int uniform_int(Rng& r, int lo, int hi) {  // [lo, hi]
  return lo + static_cast<int>(r.next() % static_cast<uint64_t>(hi - lo + 1));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
  return s;
}

TaskRecord make_record(const std::string& fam, Rng& r, int min_words, int max_words) {
  TaskRecord t;
  t.family = fam;
  if (fam == "add") {
    const int a = uniform_int(r, 0, 9), b = uniform_int(r, 0, 9);
    t.instruction = "Add the two numbers.";
    t.input = std::to_string(a) + " + " + std::to_string(b);
    t.output = std::to_string(a + b);
    return t;
  }
  const int n = uniform_int(r, min_words, max_words);
  std::vector<std::string> w;
  if (fam == "sort") {
    std::vector<int> x;
    for (int i = 0; i < n; ++i) x.push_back(uniform_int(r, 0, 99));
    for (int v : x) w.push_back(std::to_string(v));
    std::sort(x.begin(), x.end());
    std::vector<std::string> s;
    for (int v : x) s.push_back(std::to_string(v));
    t.instruction = "Sort the numbers from smallest to largest.";
    t.input = join(w);
    t.output = join(s);
    return t;
  }
  for (int i = 0; i < n; ++i) w.push_back(kWords[r.next() % kNumWords]);
  t.input = join(w);
  if (fam == "copy") {
    t.instruction = "Repeat the words.";
    t.output = t.input;
  } else if (fam == "reverse") {
    t.instruction = "Reverse the order of the words.";
    std::reverse(w.begin(), w.end());
    t.output = join(w);
  } else if (fam == "first") {
    t.instruction = "What is the first word?";
    t.output = w.front();
  } else if (fam == "last") {
    t.instruction = "What is the last word?";
    t.output = w.back();
  } else if (fam == "count") {
    t.instruction = "How many words are there?";
    t.output = std::to_string(n);
  } else {
    fail("[task] family '{}' unknown", fam);
  }
  return t;
}

std::string key(const TaskRecord& t) { return t.instruction + "\n" + t.input; }

}  // namespace

const std::vector<std::string>& synthetic_families() {
  static const std::vector<std::string> f = {"copy",  "reverse", "first", "last",
                                             "count", "sort",    "add"};
  return f;
}

TaskSplit synthetic_task(const SyntheticTaskOptions& o) {
  if (o.families.empty()) fail("[task] task.families: empty list");
  for (const auto& f : o.families)
    if (std::find(synthetic_families().begin(), synthetic_families().end(), f) ==
        synthetic_families().end())
      fail("[task] task.families: '{}' unknown (copy, reverse, first, last, count, sort, add)", f);
  if (o.min_words < 1 || o.max_words < o.min_words)
    fail("[task] task.min_words {} / max_words {}: need 1 <= min_words <= max_words", o.min_words,
         o.max_words);
  if (o.n_train < 1 || o.n_test < 0)
    fail("[task] task.n_train {} must be positive and n_test {} not negative", o.n_train, o.n_test);
  TaskSplit s;
  std::set<std::string> held;
  // The family of record i is i mod |families| (an exact mix); contents come from the stream.
  Rng rt(o.seed * 0x9e3779b97f4a7c15ull + 0x7e57);
  for (int64_t i = 0; i < o.n_test; ++i) {
    s.test.push_back(make_record(o.families[i % o.families.size()], rt, o.min_words, o.max_words));
    held.insert(key(s.test.back()));
  }
  Rng r(o.seed);
  int64_t tries = 0;
  while (static_cast<int64_t>(s.train.size()) < o.n_train) {
    if (++tries > 100 * o.n_train)
      fail(
          "[task] cannot draw {} training records outside the {} held-out ones (too few distinct "
          "prompts: widen task.min_words/max_words or add families)",
          o.n_train, o.n_test);
    TaskRecord t =
        make_record(o.families[s.train.size() % o.families.size()], r, o.min_words, o.max_words);
    if (!held.count(key(t))) s.train.push_back(std::move(t));
  }
  return s;
}

std::string task_records_jsonl(const std::vector<TaskRecord>& recs) {
  std::string s;
  for (const TaskRecord& t : recs) {
    nlohmann::json j = {{"instruction", t.instruction}, {"input", t.input}, {"output", t.output}};
    if (!t.family.empty()) j["family"] = t.family;
    s += j.dump() + "\n";
  }
  return s;
}

std::vector<TaskRecord> read_task_records(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<nlohmann::json> js;
  try {
    if (path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl") {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line))
        if (line.find_first_not_of(" \t\r") != std::string::npos)
          js.push_back(nlohmann::json::parse(line));
    } else {
      nlohmann::json j = nlohmann::json::parse(text);
      if (!j.is_array()) fail("[task] {}: expected a JSON array of records", path);
      for (auto& x : j) js.push_back(std::move(x));
    }
  } catch (const nlohmann::json::exception& e) {
    fail("[task] {}: malformed JSON: {}", path, e.what());
  }
  std::vector<TaskRecord> out;
  for (size_t i = 0; i < js.size(); ++i) {
    const auto& j = js[i];
    auto str = [&](const char* f, bool req) -> std::string {
      if (!j.is_object()) fail("[task] {}: record {}: not an object", path, i);
      auto it = j.find(f);
      if (it == j.end() || it->is_null()) {
        if (req) fail("[task] {}: record {}: missing field '{}'", path, i, f);
        return "";
      }
      if (!it->is_string()) fail("[task] {}: record {}: field '{}' is not a string", path, i, f);
      return it->get<std::string>();
    };
    TaskRecord t{str("instruction", true), str("input", false), str("output", true),
                 str("family", false)};
    out.push_back(std::move(t));
  }
  if (out.empty()) fail("[task] {}: no records", path);
  return out;
}

TaskSplit split_records(std::vector<TaskRecord> all, int64_t n_test, uint64_t seed) {
  if (n_test < 0 || n_test >= static_cast<int64_t>(all.size()))
    fail("[task] task.n_test {} must leave training records out of {}", n_test, all.size());
  Rng r(seed ^ 0x5eedda7aull);
  for (size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[r.next() % i]);
  TaskSplit s;
  const size_t nt = all.size() - static_cast<size_t>(n_test);
  s.train.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(nt));
  s.test.assign(all.begin() + static_cast<std::ptrdiff_t>(nt), all.end());
  return s;
}

}  // namespace edgellm::pipeline
