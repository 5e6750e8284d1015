// load_tokenizer dispatch and the errors for bad input; tokenizer_from_gguf validation.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace edgellm {
namespace {

using json = nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void write(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A tiny byte-level BPE tokenizer.json: vocab of the bytes of "ab " plus merges a+b, ab+Ġ.
json tiny_json() {
  json vocab = json::object();
  vocab["a"] = 0;
  vocab["b"] = 1;
  vocab["\xC4\xA0"] = 2;  // "Ġ", byte-level space
  vocab["ab"] = 3;
  vocab
      ["\xC4\xA0"
       "ab"] = 4;
  return json{
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array({"a b", json::array({"\xC4\xA0", "ab"})})}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", json::array({{{"id", 5}, {"content", "<|x|>"}, {"special", true}}})}};
}

TEST(LoadTokenizer, DispatchByNameContentAndDirectory) {
  const std::string dir = testing::temp_dir("tokload");
  write(dir + "/tokenizer.json", tiny_json().dump());
  const auto t = load_tokenizer(dir);  // directory -> tokenizer.json
  EXPECT_EQ(t->kind(), "bpe");
  EXPECT_EQ(t->vocab_size(), 6);
  EXPECT_EQ(t->encode("ab ab<|x|>"), (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(t->decode({3, 4, 5}), "ab ab");
  write(dir + "/weird.name", tiny_json().dump());  // JSON recognised by content
  EXPECT_EQ(load_tokenizer(dir + "/weird.name")->vocab_size(), 6);
  if (std::filesystem::exists(testing::data_path("models/llama2-tokenizer"))) {
    // Directory with tokenizer.model (and tokenizer.bin): libsentencepiece is preferred.
    EXPECT_EQ(load_tokenizer(testing::data_path("models/llama2-tokenizer"))->kind(),
              "sentencepiece");
  }
  std::filesystem::remove_all(dir);
}

TEST(LoadTokenizer, ErrorsNameFileFieldAndValue) {
  const std::string dir = testing::temp_dir("tokerr");
  EXPECT_NE(error_of([&] { load_tokenizer(dir + "/nope.json"); }).find("no such file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_tokenizer(dir); }).find("none of tokenizer.model"),
            std::string::npos);

  write(dir + "/bad.json", "{\"model\": {\"type\": \"BPE\", ");
  auto m = error_of([&] { load_tokenizer(dir + "/bad.json"); });
  EXPECT_NE(m.find("[tokenizer] " + dir + "/bad.json: invalid JSON"), std::string::npos) << m;

  json j = tiny_json();
  j["model"]["type"] = "WordPiece";
  write(dir + "/wp.json", j.dump());
  m = error_of([&] { load_tokenizer(dir + "/wp.json"); });
  EXPECT_NE(m.find("field 'model.type': value 'WordPiece' unsupported"), std::string::npos) << m;

  j = tiny_json();
  j["model"]["merges"].push_back("a zz");
  write(dir + "/merge.json", j.dump());
  m = error_of([&] { load_tokenizer(dir + "/merge.json"); });
  EXPECT_NE(m.find("field 'model.merges[2]': value 'a zz'"), std::string::npos) << m;

  j = tiny_json();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  write(dir + "/re.json", j.dump());
  m = error_of([&] { load_tokenizer(dir + "/re.json"); });
  EXPECT_NE(m.find("regex '(unclosed'"), std::string::npos) << m;

  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  write(dir + "/beh.json", j.dump());
  m = error_of([&] { load_tokenizer(dir + "/beh.json"); });
  EXPECT_NE(m.find("field 'pre_tokenizer.behavior': value 'Sideways' unknown"), std::string::npos)
      << m;

  j = tiny_json();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  write(dir + "/norm.json", j.dump());
  m = error_of([&] { load_tokenizer(dir + "/norm.json"); });
  EXPECT_NE(m.find("field 'normalizer.type': value 'BertNormalizer' unsupported"),
            std::string::npos)
      << m;
  std::filesystem::remove_all(dir);
}

TEST(TokenizerFromGguf, ValidatesMetadata) {
  json meta = {{"tokenizer.ggml.model", "bert"}, {"tokenizer.ggml.tokens", json::array({"a"})}};
  auto m = error_of([&] { tokenizer_from_gguf(meta, "x.gguf"); });
  EXPECT_NE(m.find("[tokenizer] x.gguf: field 'tokenizer.ggml.model': value 'bert' unsupported"),
            std::string::npos)
      << m;
  meta = {{"tokenizer.ggml.model", "llama"}};
  m = error_of([&] { tokenizer_from_gguf(meta, "x.gguf"); });
  EXPECT_NE(m.find("field 'tokenizer.ggml.tokens': missing"), std::string::npos) << m;
  meta = {{"tokenizer.ggml.model", "llama"},
          {"tokenizer.ggml.tokens",
           {"<unk>", "<s>", "</s>",
            "\xE2\x96\x81"
            "a"}},
          {"tokenizer.ggml.scores", {0, 0, 0}}};
  m = error_of([&] { tokenizer_from_gguf(meta, "x.gguf"); });
  EXPECT_NE(m.find("field 'tokenizer.ggml.scores': 3 entries for 4 tokens"), std::string::npos)
      << m;
  meta["tokenizer.ggml.scores"] = {0, 0, 0, -1};
  meta["tokenizer.ggml.token_type"] = {2, 3, 3, 9};
  m = error_of([&] { tokenizer_from_gguf(meta, "x.gguf"); });
  EXPECT_NE(m.find("field 'tokenizer.ggml.token_type[3]': value 9 unknown"), std::string::npos)
      << m;
  meta["tokenizer.ggml.token_type"] = {2, 3, 3, 1};
  const auto t = tokenizer_from_gguf(meta, "x.gguf");
  EXPECT_EQ(t->kind(), "gguf-llama");
  EXPECT_EQ(t->encode("a"), (std::vector<int32_t>{3}));
  EXPECT_EQ(t->decode({1, 3, 2}), "a");
  // Export and re-import is the identity on the metadata.
  EXPECT_EQ(tokenizer_to_gguf(*t)["tokenizer.ggml.tokens"], meta["tokenizer.ggml.tokens"]);

  json g = {{"tokenizer.ggml.model", "gpt2"},
            {"tokenizer.ggml.pre", "mystery"},
            {"tokenizer.ggml.tokens", {"a"}},
            {"tokenizer.ggml.merges", json::array()}};
  m = error_of([&] { tokenizer_from_gguf(g, "y.gguf"); });
  EXPECT_NE(m.find("field 'tokenizer.ggml.pre': value 'mystery' unsupported"), std::string::npos)
      << m;
}

}  // namespace
}  // namespace edgellm
