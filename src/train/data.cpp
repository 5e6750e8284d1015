#include "train/data.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  // Verbatim from tatsu-lab/stanford_alpaca (train.py PROMPT_DICT).
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately "
           "completes the request.\n\n### Instruction:\n" +
           instruction + "\n\n### Response:\n";
  return "Below is an instruction that describes a task, paired with an input that provides "
         "further context. Write a response that appropriately completes the request.\n\n### "
         "Instruction:\n" +
         instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

namespace {

void check_seq(int64_t seq, const std::string& path) {
  if (seq < 1) fail("[data] {}: --seq {} must be at least 1", path, seq);
}

void split_tail(Dataset& d, double val_frac) {
  if (val_frac <= 0 || d.train.size() < 2) return;
  size_t nv = std::max<size_t>(1, static_cast<size_t>(val_frac * d.train.size() + 0.5));
  nv = std::min(nv, d.train.size() - 1);
  d.val.assign(d.train.end() - nv, d.train.end());
  d.train.resize(d.train.size() - nv);
}

}  // namespace

Dataset load_text_dataset(const std::string& path, const Tokenizer& tok, int64_t seq,
                          double val_frac) {
  check_seq(seq, path);
  Dataset d;
  d.source = path;
  d.kind = "text";
  const std::string text = read_file(path);
  std::vector<int32_t> ids{tok.bos_id()};
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  const int64_t n = (static_cast<int64_t>(ids.size()) - 1) / seq;
  if (n == 0)
    fail("[data] {}: {} tokens of text make no training window of --seq {} + 1 tokens", path,
         ids.size(), seq);
  for (int64_t i = 0; i < n; ++i) {
    Example e;
    e.tokens.assign(ids.begin() + i * seq, ids.begin() + (i + 1) * seq);
    e.targets.assign(ids.begin() + i * seq + 1, ids.begin() + (i + 1) * seq + 1);
    d.train.push_back(std::move(e));
  }
  split_tail(d, val_frac);
  return d;
}

std::vector<AlpacaRecord> read_alpaca_records(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<nlohmann::json> records;
  const bool jsonl = path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
  if (jsonl) {
    std::istringstream in(text);
    std::string line;
    int64_t ln = 0;
    while (std::getline(in, line)) {
      ++ln;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        records.push_back(nlohmann::json::parse(line));
      } catch (const nlohmann::json::exception& e) {
        fail("[data] {}: line {}: malformed JSON record: {}", path, ln, e.what());
      }
    }
  } else {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail("[data] {}: malformed JSON: {}", path, e.what());
    }
    if (!j.is_array()) fail("[data] {}: expected a JSON array of records", path);
    for (auto& r : j) records.push_back(std::move(r));
  }
  auto field = [&](const nlohmann::json& r, size_t i, const char* name, bool required) {
    if (!r.is_object()) fail("[data] {}: record {}: not a JSON object", path, i);
    auto it = r.find(name);
    if (it == r.end() || it->is_null()) {
      if (required) fail("[data] {}: record {}: missing field '{}'", path, i, name);
      return std::string();
    }
    if (!it->is_string()) fail("[data] {}: record {}: field '{}' is not a string", path, i, name);
    return it->get<std::string>();
  };
  std::vector<AlpacaRecord> out;
  for (size_t i = 0; i < records.size(); ++i)
    out.push_back({field(records[i], i, "instruction", true), field(records[i], i, "input", false),
                   field(records[i], i, "output", true)});
  return out;
}

Dataset load_alpaca_dataset(const std::string& path, const Tokenizer& tok, int64_t seq,
                            double val_frac, uint64_t seed) {
  check_seq(seq, path);
  Dataset d;
  d.source = path;
  d.kind = "alpaca";
  const std::vector<AlpacaRecord> records = read_alpaca_records(path);
  std::vector<Example> all;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string prompt = alpaca_prompt(records[i].instruction, records[i].input);
    const std::string& output = records[i].output;
    std::vector<int32_t> ids{tok.bos_id()};
    for (int32_t id : tok.encode(prompt + output)) ids.push_back(id);
    ids.push_back(tok.eos_id());
    // Prompt tokens (BOS + encode(prompt)) are context only: masked out of the loss.
    const int64_t n_prompt = 1 + static_cast<int64_t>(tok.encode(prompt).size());
    if (static_cast<int64_t>(ids.size()) > seq + 1) {
      ids.resize(seq + 1);
      ++d.truncated;
    }
    Example e;
    const int64_t T = static_cast<int64_t>(ids.size()) - 1;
    e.tokens.assign(ids.begin(), ids.begin() + T);
    e.targets.assign(ids.begin() + 1, ids.end());
    bool any = false;
    for (int64_t t = 0; t < T; ++t) {
      if (t + 1 < n_prompt) e.targets[t] = -1;  // target ids[t+1] is a prompt token
      any |= e.targets[t] >= 0;
    }
    if (!any) {
      ++d.dropped;
      continue;
    }
    all.push_back(std::move(e));
  }
  if (all.empty())
    fail("[data] {}: no usable records ({} read, {} with no response tokens within --seq {})", path,
         records.size(), d.dropped, seq);
  // Held-out split: a seeded shuffle so validation is not just the file's last topic.
  std::vector<size_t> idx(all.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Rng r(seed ^ 0x5eedda7aull);
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[r.next() % i]);
  for (size_t i : idx) d.train.push_back(std::move(all[i]));
  split_tail(d, val_frac);
  return d;
}

Dataset load_dataset(const std::string& path, const Tokenizer& tok, int64_t seq, double val_frac,
                     uint64_t seed) {
  const auto ends = [&](const char* s) {
    const std::string e(s);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  Dataset d = ends(".json") || ends(".jsonl") ? load_alpaca_dataset(path, tok, seq, val_frac, seed)
                                              : load_text_dataset(path, tok, seq, val_frac);
  if (d.train.empty()) fail("[data] {}: empty dataset", path);
  return d;
}

const Example& Dataset::train_at(size_t i, Example& buf) const {
  if (!train_windows) return train.at(i);
  train_windows->fill(i, buf);
  return buf;
}

const Example& Dataset::val_at(size_t i, Example& buf) const {
  if (!val_windows) return val.at(i);
  val_windows->fill(i, buf);
  return buf;
}

DataOrder::DataOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {
  if (n == 0) fail("[data] empty training set");
  shuffle();
}

void DataOrder::shuffle() {
  perm_.resize(n_);
  for (size_t i = 0; i < n_; ++i) perm_[i] = i;
  Rng r(seed_ * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch_));
  for (size_t i = n_; i > 1; --i) std::swap(perm_[i - 1], perm_[r.next() % i]);
}

size_t DataOrder::next() {
  if (pos_ == static_cast<int64_t>(n_)) {
    ++epoch_;
    pos_ = 0;
    shuffle();
  }
  return perm_[pos_++];
}

void DataOrder::restore(int64_t epoch, int64_t pos) {
  epoch_ = epoch;
  pos_ = pos;
  shuffle();
}

}  // namespace edgellm
