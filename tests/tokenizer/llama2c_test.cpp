// llama2.c tokenizer.bin: the stories260K golden (SOURCES.md), encode/decode round trips, and
// errors on malformed files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "test_util.h"
#include "tokenizer/spm_bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace edgellm {
namespace {

const std::vector<int32_t> kGolden = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                                      421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
                                      419, 292, 411, 322, 265, 282, 295, 433, 426, 385};
const char* kGoldenText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's "
    "mom said,";

TEST(Llama2cTokenizer, GoldenDecodeAndEncode) {
  EDGELLM_REQUIRE_DATA("models/stories260K/tok512.bin");
  const auto tok = load_tokenizer(testing::data_path("models/stories260K/tok512.bin"));
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  std::vector<int32_t> with_bos = {1};
  with_bos.insert(with_bos.end(), kGolden.begin(), kGolden.end());
  const std::string text = tok->decode(with_bos);
  // The 32 ids cover the first sentences of the documented generation.
  EXPECT_EQ(text,
            "Once upon a time, there was a little girl named Lily. She loved to play outside in "
            "the park. One");
  EXPECT_EQ(std::string(kGoldenText).rfind(text, 0), 0u) << text;
  // Without BOS the first piece's dummy-prefix space is still removed: decode(encode(t)) == t.
  EXPECT_EQ(tok->decode(kGolden), text);
  EXPECT_EQ(tok->encode(text), kGolden) << text;
}

TEST(Llama2cTokenizer, ByteFallbackAndRoundTrip) {
  EDGELLM_REQUIRE_DATA("models/stories260K/tok512.bin");
  const auto tok = load_tokenizer(testing::data_path("models/stories260K/tok512.bin"));
  EXPECT_TRUE(tok->encode("").empty());
  // "你" (E4 BD A0) is not a piece of the 512 vocabulary: its UTF-8 bytes become ids byte + 3.
  EXPECT_EQ(tok->encode("\xE4\xBD\xA0"), (std::vector<int32_t>{410, 0xE4 + 3, 0xBD + 3, 0xA0 + 3}));
  EXPECT_EQ(tok->encode("\xC3\xA9"), (std::vector<int32_t>{410, 485}));  // " ", "é" are pieces
  for (const std::string t : {"Hello world!", "  two  spaces ", "tab\there\nnew line",
                              "\xE4\xBD\xA0\xE5\xA5\xBD 42", "<s> is not BOS", "x"}) {
    const auto e = tok->encode(t);
    for (int32_t id : e) {
      EXPECT_NE(id, 1) << t;
      EXPECT_NE(id, 2) << t;
    }
    EXPECT_EQ(tok->decode(e), t);
  }
}

// llama2.c's own encoder, transcribed as the specification: O(n^2) rescans, first best pair.
std::vector<int32_t> llama2c_reference(const tok::ScoredVocab& v, const std::string& text) {
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < v.pieces.size(); ++i)
    if (v.types[i] == tok::PieceType::kNormal) index.emplace(v.pieces[i], static_cast<int>(i));
  auto lookup = [&](const std::string& s) {
    const auto it = index.find(s);
    return it == index.end() ? -1 : it->second;
  };
  std::vector<int32_t> t;
  if (text.empty()) return t;
  t.push_back(lookup(" "));
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (i + n < text.size() && (static_cast<uint8_t>(text[i + n]) & 0xC0) == 0x80 && n < 4) ++n;
    const int id = lookup(text.substr(i, n));
    if (id >= 0) {
      t.push_back(id);
    } else {
      for (size_t k = 0; k < n; ++k) t.push_back(static_cast<uint8_t>(text[i + k]) + 3);
    }
    i += n;
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1, best_i = -1;
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      const int id = lookup(v.pieces[t[i]] + v.pieces[t[i + 1]]);
      if (id >= 0 && v.scores[id] > best)
        best = v.scores[id], best_id = id, best_i = static_cast<int>(i);
    }
    if (best_i < 0) break;
    t[best_i] = best_id;
    t.erase(t.begin() + best_i + 1);
  }
  return t;
}

TEST(Llama2cTokenizer, MatchesLlama2cReferenceOnTinyStories) {
  EDGELLM_REQUIRE_DATA("models/stories260K/tok512.bin");
  EDGELLM_REQUIRE_DATA("text/tinystories/tinystories_val.txt");
  const auto tok = load_tokenizer(testing::data_path("models/stories260K/tok512.bin"));
  const auto& v = dynamic_cast<const tok::SpmBpeTokenizer&>(*tok).vocab();
  std::ifstream in(testing::data_path("text/tinystories/tinystories_val.txt"));
  std::string line;
  int n = 0;
  while (n < 300 && std::getline(in, line)) {
    if (line.empty()) continue;
    ASSERT_EQ(tok->encode(line), llama2c_reference(v, line)) << "line: " << line;
    ++n;
  }
  EXPECT_EQ(n, 300);
}

std::string write_bytes(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string le32(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string lef(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

void expect_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    load_tokenizer(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[tokenizer]"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(Llama2cTokenizer, MalformedFilesNameTheField) {
  const std::string dir = testing::temp_dir("tokbin");
  const std::string good = le32(7) + lef(0) + le32(5) + "<unk>" + lef(0) + le32(5) + "\n<s>\n" +
                           lef(0) + le32(6) + "\n</s>\n" + lef(-1) + le32(1) + "a";
  EXPECT_EQ(load_tokenizer(write_bytes(dir, "ok.bin", good))->vocab_size(), 4);
  expect_error(write_bytes(dir, "short.bin", "\x07\x00"), {"max_token_length", "truncated"});
  expect_error(write_bytes(dir, "zero.bin", le32(0)), {"max_token_length", "value 0"});
  expect_error(write_bytes(dir, "trunc.bin", good.substr(0, good.size() - 3)),
               {"token 3: len", "truncated"});
  expect_error(write_bytes(dir, "truncbytes.bin", good + lef(0) + le32(4) + "ab"),
               {"token 4: bytes", "truncated"});
  expect_error(write_bytes(dir, "neg.bin", good + lef(0) + le32(-3)), {"token 4: len", "value -3"});
  expect_error(write_bytes(dir, "big.bin", good + lef(0) + le32(1 << 30)),
               {"token 4: len", "value 1073741824", "max_token_length 7"});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
