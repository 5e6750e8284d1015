#include "eval/mmlu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <utility>

#include "eval/exit_vote.h"
#include "io/csv.h"
#include "util/error.h"

namespace edgellm {

namespace {

constexpr const char* kLetters[4] = {"A", "B", "C", "D"};

// The harness's subject -> group table (lm_eval/tasks/mmlu/_generate_configs.py). It follows
// hendrycks/test categories.py except for anatomy, which the harness files under STEM and
// categories.py under "other" (health).
const std::map<std::string, std::string>& category_table() {
  static const std::map<std::string, std::string> t = {
      {"abstract_algebra", "stem"},
      {"anatomy", "stem"},
      {"astronomy", "stem"},
      {"business_ethics", "other"},
      {"clinical_knowledge", "other"},
      {"college_biology", "stem"},
      {"college_chemistry", "stem"},
      {"college_computer_science", "stem"},
      {"college_mathematics", "stem"},
      {"college_medicine", "other"},
      {"college_physics", "stem"},
      {"computer_security", "stem"},
      {"conceptual_physics", "stem"},
      {"econometrics", "social_sciences"},
      {"electrical_engineering", "stem"},
      {"elementary_mathematics", "stem"},
      {"formal_logic", "humanities"},
      {"global_facts", "other"},
      {"high_school_biology", "stem"},
      {"high_school_chemistry", "stem"},
      {"high_school_computer_science", "stem"},
      {"high_school_european_history", "humanities"},
      {"high_school_geography", "social_sciences"},
      {"high_school_government_and_politics", "social_sciences"},
      {"high_school_macroeconomics", "social_sciences"},
      {"high_school_mathematics", "stem"},
      {"high_school_microeconomics", "social_sciences"},
      {"high_school_physics", "stem"},
      {"high_school_psychology", "social_sciences"},
      {"high_school_statistics", "stem"},
      {"high_school_us_history", "humanities"},
      {"high_school_world_history", "humanities"},
      {"human_aging", "other"},
      {"human_sexuality", "social_sciences"},
      {"international_law", "humanities"},
      {"jurisprudence", "humanities"},
      {"logical_fallacies", "humanities"},
      {"machine_learning", "stem"},
      {"management", "other"},
      {"marketing", "other"},
      {"medical_genetics", "other"},
      {"miscellaneous", "other"},
      {"moral_disputes", "humanities"},
      {"moral_scenarios", "humanities"},
      {"nutrition", "other"},
      {"philosophy", "humanities"},
      {"prehistory", "humanities"},
      {"professional_accounting", "other"},
      {"professional_law", "humanities"},
      {"professional_medicine", "other"},
      {"professional_psychology", "social_sciences"},
      {"public_relations", "social_sciences"},
      {"security_studies", "social_sciences"},
      {"sociology", "social_sciences"},
      {"us_foreign_policy", "social_sciences"},
      {"virology", "other"},
      {"world_religions", "humanities"},
  };
  return t;
}

// Length in bytes of a whitespace character (Python's str.isspace) starting at s[i], or 0.
// Python's strip() removes these, so a question ending in U+00A0 loses it as in the harness.
size_t space_at(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const size_t left = s.size() - i;
  if (b(0) < 0x80) {
    const unsigned c = b(0);
    return (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) ? 1 : 0;
  }
  if (left >= 2 && b(0) == 0xC2 && (b(1) == 0x85 || b(1) == 0xA0)) return 2;
  if (left >= 3) {
    const unsigned cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if ((b(0) & 0xF0) == 0xE0 && (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
                                  cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000))
      return 3;
  }
  return 0;
}

std::string py_strip(const std::string& s) {
  size_t a = 0;
  while (a < s.size()) {
    const size_t n = space_at(s, a);
    if (n == 0) break;
    a += n;
  }
  // From the right: find the last position that does not start a trailing whitespace run.
  size_t end = a;
  for (size_t i = a; i < s.size();) {
    const size_t n = space_at(s, i);
    if (n == 0) {
      ++i;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
      end = i;
    } else {
      i += n;
    }
  }
  return s.substr(a, end - a);
}

int parse_answer(const std::string& v, bool indexed, const std::string& path, int64_t line) {
  if (v.size() == 1) {
    if (indexed && v[0] >= '0' && v[0] <= '3') return v[0] - '0';
    if (!indexed && v[0] >= 'A' && v[0] <= 'D') return v[0] - 'A';
  }
  if (indexed)
    fail("[mmlu] {} line {}: answer '{}' is not an index 0-3 (file with a header row)", path, line,
         v);
  fail("[mmlu] {} line {}: answer '{}' is not a letter A-D (headerless hendrycks layout)", path,
       line, v);
}

// log Σ_j exp(logits[j]) in double, max-shifted.
double log_sum_exp(const float* logits, int64_t V) {
  double mx = logits[0];
  for (int64_t j = 1; j < V; ++j) mx = std::max(mx, double(logits[j]));
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(double(logits[j]) - mx);
  return mx + std::log(sum);
}

}  // namespace

std::vector<MmluQuestion> read_mmlu_csv(const std::string& path) {
  std::vector<CsvRecord> rows = read_csv(path);
  static const std::vector<std::string> header = {"question", "choice0", "choice1",
                                                  "choice2",  "choice3", "answer"};
  const bool indexed = !rows.empty() && rows[0].fields == header;
  std::vector<MmluQuestion> out;
  for (size_t r = indexed ? 1 : 0; r < rows.size(); ++r) {
    const CsvRecord& rec = rows[r];
    if (rec.fields.size() != 6)
      fail("[mmlu] {} line {}: {} fields, expected 6 (question, 4 choices, answer)", path, rec.line,
           rec.fields.size());
    MmluQuestion q;
    q.question = rec.fields[0];
    for (int c = 0; c < 4; ++c) q.choices[c] = rec.fields[1 + c];
    q.answer = parse_answer(rec.fields[5], indexed, path, rec.line);
    q.line = rec.line;
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<std::string> mmlu_subjects(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path test = fs::path(dir) / "test";
  if (!fs::is_directory(test))
    fail("[mmlu] {}: no test/ directory (expected test/<subject>_test.csv)", dir);
  std::vector<std::string> out;
  const std::string suffix = "_test.csv";
  for (const auto& e : fs::directory_iterator(test)) {
    const std::string f = e.path().filename().string();
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(f.substr(0, f.size() - suffix.size()));
  }
  if (out.empty()) fail("[mmlu] {}: no *_test.csv files", test.string());
  std::sort(out.begin(), out.end());
  return out;
}

MmluSubject load_mmlu_subject(const std::string& dir, const std::string& name) {
  MmluSubject s;
  s.name = name;
  const std::string dev = dir + "/dev/" + name + "_dev.csv",
                    test = dir + "/test/" + name + "_test.csv";
  for (const std::string& f : {dev, test})
    if (!std::filesystem::exists(f))
      fail("[mmlu] subject '{}': {} not found (see `ls {}/test` for the subjects)", name, f, dir);
  s.dev = read_mmlu_csv(dev);
  s.test = read_mmlu_csv(test);
  return s;
}

std::string mmlu_category(const std::string& subject) {
  auto it = category_table().find(subject);
  return it == category_table().end() ? std::string() : it->second;
}

const std::vector<std::string>& mmlu_category_names() {
  static const std::vector<std::string> n = {"stem", "humanities", "social_sciences", "other"};
  return n;
}

std::string mmlu_description(const std::string& subject) {
  std::string s = subject;
  std::replace(s.begin(), s.end(), '_', ' ');
  return "The following are multiple choice questions (with answers) about " + s + ".\n\n";
}

std::string mmlu_question_text(const MmluQuestion& q) {
  std::string t = py_strip(q.question);
  for (int c = 0; c < 4; ++c) t += std::string("\n") + kLetters[c] + ". " + q.choices[c];
  return t + "\nAnswer:";
}

std::string mmlu_prompt(const MmluSubject& s, int shots, const MmluQuestion& q) {
  std::string p = mmlu_description(s.name);
  const int k = std::min<int>(shots, static_cast<int>(s.dev.size()));
  // Each shot is doc_to_text + target_delimiter " " + the answer letter + fewshot_delimiter.
  for (int i = 0; i < k; ++i)
    p += mmlu_question_text(s.dev[i]) + " " + kLetters[s.dev[i].answer] + "\n\n";
  return p + mmlu_question_text(q);
}

MmluRequest mmlu_request(const Tokenizer& tok, const MmluSubject& s, const MmluQuestion& q,
                         int shots, int64_t ctx, bool bos) {
  MmluRequest r;
  for (int k = std::min<int>(shots, static_cast<int>(s.dev.size()));; --k) {
    const std::string prompt = mmlu_prompt(s, k, q);
    const std::vector<int32_t> body = tok.encode(prompt);
    r.context.clear();
    if (bos) r.context.push_back(tok.bos_id());
    r.context.insert(r.context.end(), body.begin(), body.end());
    r.shots = k;
    // A continuation has at least one token, so a context longer than ctx cannot fit: skip the
    // four letter encodes for it.
    if (k > 0 && static_cast<int64_t>(r.context.size()) > ctx) continue;
    size_t longest = 0;
    r.boundary_mismatches = 0;
    for (int c = 0; c < 4; ++c) {
      // The harness's _encode_pair; the context ends in "Answer:", so no trailing spaces move.
      const std::vector<int32_t> whole = tok.encode(prompt + " " + kLetters[c]);
      if (whole.size() <= body.size())
        fail("[mmlu] {} question at line {}: \" {}\" adds no token to the prompt", s.name, q.line,
             kLetters[c]);
      if (!std::equal(body.begin(), body.end(), whole.begin())) ++r.boundary_mismatches;
      r.letters[c].assign(whole.begin() + static_cast<std::ptrdiff_t>(body.size()), whole.end());
      longest = std::max(longest, r.letters[c].size());
    }
    const int64_t need = static_cast<int64_t>(r.context.size() + longest) - 1;
    if (need <= ctx) return r;
    if (k == 0) {
      // The harness's left truncation: the model sees the last ctx positions.
      if (static_cast<int64_t>(longest) > ctx)
        fail("[mmlu] {} question at line {}: a {}-token answer does not fit a context of {}",
             s.name, q.line, longest, ctx);
      r.context.erase(r.context.begin(), r.context.begin() + (need - ctx));
      r.truncated = true;
      return r;
    }
  }
}

std::array<double, 4> letter_logliks(const float* logits, int64_t V,
                                     const std::array<int32_t, 4>& ids) {
  const double lse = log_sum_exp(logits, V);
  std::array<double, 4> out;
  for (int c = 0; c < 4; ++c) {
    if (ids[c] < 0 || ids[c] >= V) fail("[mmlu] letter token id {} outside vocab of {}", ids[c], V);
    out[c] = double(logits[ids[c]]) - lse;
  }
  return out;
}

int mmlu_pick(const std::vector<std::array<double, 4>>& heads) {
  if (heads.empty()) fail("[mmlu] no head to pick a letter from");
  int best = 0;
  double best_v = heads[0][0];
  for (const auto& h : heads)
    for (int c = 0; c < 4; ++c)
      if (h[c] > best_v) best_v = h[c], best = c;
  return best;
}

int mmlu_pick_exit(const std::vector<std::array<double, 4>>& heads) {
  if (heads.empty()) fail("[mmlu] no head to pick a letter from");
  int best = 0;
  double best_v = heads[0][0];
  for (size_t e = 0; e < heads.size(); ++e)
    for (int c = 0; c < 4; ++c)
      if (heads[e][c] > best_v) best_v = heads[e][c], best = static_cast<int>(e);
  return best;
}

MmluScorer::MmluScorer(InferenceState& st, bool reuse) : st_(st), reuse_(reuse) {}

std::array<double, 4> MmluScorer::score(const MmluRequest& r) {
  const ModelConfig& c = st_.model().config();
  const int64_t V = c.vocab_size, C = c.dim;
  const std::vector<int32_t>& ctx = r.context;
  const int64_t n = static_cast<int64_t>(ctx.size());
  if (n == 0) fail("[mmlu] empty context");
  int64_t keep = 0;
  if (reuse_) {
    const size_t m = std::min(cached_.size(), ctx.size());
    while (keep < static_cast<int64_t>(m) && cached_[keep] == ctx[keep]) ++keep;
    keep = std::min(keep, n - 1);  // the last context token must run: its logits score letters
  }
  st_.truncate(std::min(keep, st_.pos()));
  keep = st_.pos();
  const float* h = st_.forward(ctx.data() + keep, n - keep);
  computed_ += n - keep;
  reused_ += keep;
  cached_ = ctx;
  logits_.resize(static_cast<size_t>(V));
  st_.logits(h + (n - keep - 1) * C, 1, logits_.data());
  std::array<int32_t, 4> first;
  for (int l = 0; l < 4; ++l) first[l] = r.letters[l].at(0);
  std::array<double, 4> ll = letter_logliks(logits_.data(), V, first);
  // Multi-token continuations (tokenizers without a single " A" token): the remaining tokens
  // are scored from the context's cache, which is restored afterwards.
  for (int l = 0; l < 4; ++l) {
    const std::vector<int32_t>& cont = r.letters[l];
    const int64_t k = static_cast<int64_t>(cont.size()) - 1;
    if (k == 0) continue;
    const float* hc = st_.forward(cont.data(), k);
    computed_ += k;
    logits_.resize(static_cast<size_t>(k * V));
    st_.logits(hc, k, logits_.data());
    for (int64_t j = 0; j < k; ++j) {
      const float* row = logits_.data() + j * V;
      ll[l] += double(row[cont[j + 1]]) - log_sum_exp(row, V);
    }
    st_.truncate(n);
  }
  return ll;
}

std::vector<std::array<double, 4>> MmluScorer::score_exits(const MmluRequest& r,
                                                           const ExitHeads& h) {
  const ModelConfig& c = st_.model().config();
  const int64_t V = c.vocab_size;
  const std::vector<int>& depths = h.config().depths;
  const std::vector<int32_t>& ctx = r.context;
  const int64_t n = static_cast<int64_t>(ctx.size());
  if (n == 0) fail("[mmlu] empty context");
  int64_t keep = 0;
  if (reuse_) {
    const size_t m = std::min(cached_.size(), ctx.size());
    while (keep < static_cast<int64_t>(m) && cached_[keep] == ctx[keep]) ++keep;
    keep = std::min(keep, n - 1);
  }
  st_.truncate(std::min(keep, st_.pos()));
  keep = st_.pos();
  const float* hid = st_.forward_exits(ctx.data() + keep, n - keep, depths);
  computed_ += n - keep;
  reused_ += keep;
  cached_ = ctx;
  exit_logits(st_.model(), h, hid, n - keep, n - keep - 1, 1, xn_, exit_logits_);
  std::array<int32_t, 4> first;
  for (int l = 0; l < 4; ++l) first[l] = r.letters[l].at(0);
  std::vector<std::array<double, 4>> ll(h.n_exits());
  for (int i = 0; i < h.n_exits(); ++i) ll[i] = letter_logliks(exit_logits_[i].data(), V, first);
  for (int l = 0; l < 4; ++l) {
    const std::vector<int32_t>& cont = r.letters[l];
    const int64_t k = static_cast<int64_t>(cont.size()) - 1;
    if (k == 0) continue;
    const float* hc = st_.forward_exits(cont.data(), k, depths);
    computed_ += k;
    exit_logits(st_.model(), h, hc, k, 0, k, xn_, exit_logits_);
    for (int i = 0; i < h.n_exits(); ++i)
      for (int64_t j = 0; j < k; ++j) {
        const float* row = exit_logits_[i].data() + j * V;
        ll[i][l] += double(row[cont[j + 1]]) - log_sum_exp(row, V);
      }
    st_.truncate(n);
  }
  return ll;
}

void mmlu_aggregate(MmluResult& r) {
  auto group = [&](const std::string& name, const std::string& cat) {
    MmluGroupResult g;
    g.name = name;
    for (const MmluSubjectResult& s : r.subjects) {
      if (!cat.empty() && s.category != cat) continue;
      ++g.subjects;
      g.questions += s.questions;
      g.correct += s.correct;
      g.macro += s.acc;
    }
    if (g.subjects > 0) g.macro /= double(g.subjects);
    if (g.questions > 0) g.micro = double(g.correct) / double(g.questions);
    return g;
  };
  for (MmluSubjectResult& s : r.subjects)
    s.acc = s.questions > 0 ? double(s.correct) / double(s.questions) : 0.0;
  r.overall = group("mmlu", "");
  r.categories.clear();
  for (const std::string& cat : mmlu_category_names()) {
    MmluGroupResult g = group(cat, cat);
    if (g.subjects > 0) r.categories.push_back(g);
  }
}

MmluResult mmlu_exit_result(const MmluResult& r, int exit) {
  if (r.exit_correct.empty()) fail("[mmlu] per-exit results need a run with exits");
  if (exit < 0 || exit >= static_cast<int>(r.exit_correct.size()))
    fail("[mmlu] exit {}: the run has exits 0..{}", exit, r.exit_correct.size() - 1);
  MmluResult x = r;
  x.predicted = {};
  for (MmluSubjectResult& s : x.subjects) {
    s.correct = 0;
    for (MmluItem& it : s.items) {
      it.pred = it.exit_preds[static_cast<size_t>(exit)];
      it.exit = exit;
      s.correct += it.pred == it.answer;
      ++x.predicted[it.pred];
    }
  }
  std::fill(x.exit_wins.begin(), x.exit_wins.end(), 0);
  mmlu_aggregate(x);
  return x;
}

MmluResult evaluate_mmlu(const Model& m, const Tokenizer& tok,
                         const std::vector<MmluSubject>& subjects, const MmluOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = m.config();
  MmluResult r;
  r.shots = o.shots;
  r.bos = o.bos;
  r.ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(c.max_seq_len, 4096);
  if (o.shots < 0) fail("[mmlu] --shots {} is negative", o.shots);
  if (r.ctx < 2 || r.ctx > c.max_seq_len)
    fail("[mmlu] --ctx {} outside [2, model context {}]", r.ctx, c.max_seq_len);
  if (tok.vocab_size() > c.vocab_size)
    fail("[mmlu] tokenizer has {} tokens, model only {}", tok.vocab_size(), c.vocab_size);
  InferenceState st(m, r.ctx);
  st.set_adapter(o.adapter);
  MmluScorer scorer(st, o.reuse_prefix);
  if (o.exits) {
    if (!o.vote && (o.exit < 0 || o.exit >= o.exits->n_exits()))
      fail("[mmlu] --exit {}: the adapter has exits 0..{}", o.exit, o.exits->n_exits() - 1);
    r.exit_correct.assign(o.exits->n_exits(), 0);
    r.exit_wins.assign(o.exits->n_exits(), 0);
  }

  int64_t total = 0, done = 0;
  for (const MmluSubject& s : subjects)
    total += o.limit > 0 ? std::min<int64_t>(o.limit, s.test.size()) : s.test.size();
  for (const MmluSubject& s : subjects) {
    MmluSubjectResult sr;
    sr.name = s.name;
    sr.category = mmlu_category(s.name);
    const int64_t nq =
        o.limit > 0 ? std::min<int64_t>(o.limit, s.test.size()) : int64_t(s.test.size());
    std::vector<MmluRequest> req(nq);
    for (int64_t i = 0; i < nq; ++i)
      req[i] = mmlu_request(tok, s, s.test[i], o.shots, r.ctx, o.bos);
    // Run the contexts in lexicographic token order: prompts that kept the same shots are then
    // adjacent, so each distinct few-shot prefix is computed once even when long questions lose
    // shots. The order changes no result (each item is stored at its own index).
    std::vector<int64_t> order(nq);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return req[a].context < req[b].context; });
    sr.items.resize(nq);
    for (int64_t i : order) {
      MmluItem& it = sr.items[i];
      it.index = i;
      it.answer = s.test[i].answer;
      it.shots = req[i].shots;
      it.truncated = req[i].truncated;
      if (!o.exits) {
        it.loglik = scorer.score(req[i]);
        it.pred = mmlu_pick({it.loglik});
        continue;
      }
      const std::vector<std::array<double, 4>> rows = scorer.score_exits(req[i], *o.exits);
      for (size_t e = 0; e < rows.size(); ++e) {
        it.exit_preds.push_back(static_cast<int8_t>(mmlu_pick({rows[e]})));
        r.exit_correct[e] += it.exit_preds.back() == it.answer;
      }
      it.exit = o.vote ? -1 : o.exit;
      if (o.vote) {
        it.pred = mmlu_pick(rows);
        it.exit = mmlu_pick_exit(rows);
        ++r.exit_wins[it.exit];
      } else {
        it.pred = mmlu_pick({rows[o.exit]});
      }
      it.loglik = rows[it.exit];
    }
    for (int64_t i = 0; i < nq; ++i) {
      const MmluItem& it = sr.items[i];
      sr.correct += it.pred == it.answer;
      sr.shortened += it.shots < std::min<int>(o.shots, static_cast<int>(s.dev.size()));
      sr.truncated += it.truncated;
      r.boundary_mismatches += req[i].boundary_mismatches;
      ++r.predicted[it.pred];
      ++r.answers[it.answer];
    }
    sr.questions = nq;
    r.shortened += sr.shortened;
    r.truncated += sr.truncated;
    r.subjects.push_back(std::move(sr));
    done += nq;
    if (o.progress) o.progress(s.name, done, total);
  }
  mmlu_aggregate(r);
  r.tokens_computed = scorer.tokens_computed();
  r.tokens_reused = scorer.tokens_reused();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.seconds_per_question = done > 0 ? r.seconds / double(done) : 0.0;
  return r;
}

}  // namespace edgellm
