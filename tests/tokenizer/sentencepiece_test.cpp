// SentencePiece: libsentencepiece is the reference; the pure SPM-vocab BPE (used for GGUF "llama"
// vocabularies and llama2.c files) must give exactly its ids.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/spm_bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

std::vector<std::string> read_lines(const std::string& path, size_t max_lines) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string l;
  while (lines.size() < max_lines && std::getline(in, l)) lines.push_back(l);
  return lines;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

// Compares two tokenizers line by line; prints the first mismatches in full.
size_t count_mismatches(const Tokenizer& ref, const Tokenizer& got,
                        const std::vector<std::string>& lines, const std::string& what) {
  size_t bad = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto a = ref.encode(lines[i]);
    const auto b = got.encode(lines[i]);
    if (a != b && ++bad <= 5)
      ADD_FAILURE() << what << " line " << i + 1 << ": '" << lines[i] << "'\n  " << ref.kind()
                    << ": " << show(a) << "\n  " << got.kind() << ": " << show(b);
  }
  return bad;
}

const char* kLlama2Model = "models/llama2-tokenizer/tokenizer.model";
const char* kWiki = "text/wikitext-2-raw/wiki.test.raw";

TEST(SentencePiece, LoadsLlama2Model) {
  EDGELLM_REQUIRE_DATA(kLlama2Model);
  const auto tok = load_tokenizer(testing::data_path(kLlama2Model));
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const auto& info = dynamic_cast<const tok::SentencePieceTokenizer&>(*tok).info();
  EXPECT_EQ(info.model_type, 2);
  EXPECT_TRUE(info.byte_fallback);
  EXPECT_TRUE(info.add_dummy_prefix);
  EXPECT_FALSE(info.remove_extra_whitespaces);
  EXPECT_FALSE(info.has_charsmap);
  EXPECT_EQ(tok->decode(tok->encode("Hello world")), "Hello world");
}

TEST(SentencePiece, PureBpeMatchesLibsentencepieceOnWikiText) {
  EDGELLM_REQUIRE_DATA(kLlama2Model);
  EDGELLM_REQUIRE_DATA(kWiki);
  const auto lib = load_tokenizer(testing::data_path(kLlama2Model));
  const auto& sp = dynamic_cast<const tok::SentencePieceTokenizer&>(*lib);
  const auto pure = tok::spm_bpe_from_model(sp.info(), sp.path());
  // The same vocabulary exported to GGUF metadata and read back (the gguf-llama path).
  const auto gguf = tokenizer_from_gguf(tokenizer_to_gguf(*lib), "llama2.gguf");
  EXPECT_EQ(gguf->kind(), "gguf-llama");
  auto lines = read_lines(testing::data_path(kWiki), 2500);
  ASSERT_GE(lines.size(), 2500u);
  // Whole lines with their newline too, and blocks of several lines: byte fallback for "\n".
  for (size_t i = 0; i + 4 < 400; i += 4)
    lines.push_back(lines[i] + "\n" + lines[i + 1] + "\n" + lines[i + 2] + "\n");
  const size_t bad_pure = count_mismatches(*lib, *pure, lines, "spm-bpe");
  const size_t bad_gguf = count_mismatches(*lib, *gguf, lines, "gguf-llama");
  EXPECT_EQ(bad_pure, 0u) << "of " << lines.size();
  EXPECT_EQ(bad_gguf, 0u) << "of " << lines.size();
  size_t dec_bad = 0;
  for (const auto& l : lines) {
    const auto ids = lib->encode(l);
    if (pure->decode(ids) != lib->decode(ids) && ++dec_bad <= 3)
      ADD_FAILURE() << "decode differs for '" << l << "'";
  }
  EXPECT_EQ(dec_bad, 0u);
  std::cout << "[conformance] Llama-2 tokenizer.model vs libsentencepiece: " << lines.size()
            << " texts; spm-bpe " << bad_pure << " mismatches, gguf-llama " << bad_gguf
            << " mismatches, decode " << dec_bad << " mismatches\n";
}

TEST(SentencePiece, Llama2TokenizerBinMatchesModel) {
  // karpathy's tokenizer.bin is the same Llama-2 vocabulary in llama2.c's format.
  EDGELLM_REQUIRE_DATA(kLlama2Model);
  EDGELLM_REQUIRE_DATA("models/llama2-tokenizer/tokenizer.bin");
  EDGELLM_REQUIRE_DATA(kWiki);
  const auto lib = load_tokenizer(testing::data_path(kLlama2Model));
  const auto bin = load_tokenizer(testing::data_path("models/llama2-tokenizer/tokenizer.bin"));
  EXPECT_EQ(bin->vocab_size(), 32000);
  const auto lines = read_lines(testing::data_path(kWiki), 2000);
  EXPECT_EQ(count_mismatches(*lib, *bin, lines, "llama2c"), 0u);
}

TEST(SentencePiece, Tok512BinAgreesWithModel) {
  EDGELLM_REQUIRE_DATA("models/stories260K/tok512.model");
  EDGELLM_REQUIRE_DATA("models/stories260K/tok512.bin");
  EDGELLM_REQUIRE_DATA("text/tinystories/tinystories_val.txt");
  const auto lib = load_tokenizer(testing::data_path("models/stories260K/tok512.model"));
  const auto bin = load_tokenizer(testing::data_path("models/stories260K/tok512.bin"));
  const auto& sp = dynamic_cast<const tok::SentencePieceTokenizer&>(*lib);
  // tok512.model keeps the trainer default remove_extra_whitespaces=true (Llama-2 sets false):
  // libsentencepiece strips and squeezes spaces, llama2.c's encoder does not. They must agree on
  // text without leading/trailing/double spaces, which is all of TinyStories' lines.
  EXPECT_TRUE(sp.info().remove_extra_whitespaces);
  const auto lines = read_lines(testing::data_path("text/tinystories/tinystories_val.txt"), 3000);
  std::vector<std::string> clean;
  for (const auto& l : lines)
    if (!l.empty() && l.front() != ' ' && l.back() != ' ' && l.find("  ") == std::string::npos)
      clean.push_back(l);
  ASSERT_GE(clean.size(), 1000u);
  EXPECT_EQ(count_mismatches(*lib, *bin, clean, "tok512.bin"), 0u) << "of " << clean.size();
  // The pure BPE built from the .model honours remove_extra_whitespaces: it agrees everywhere.
  const auto pure = tok::spm_bpe_from_model(sp.info(), sp.path());
  std::vector<std::string> spaced = lines;
  for (const char* s : {"  two  spaces  ", " lead", "trail ", "   ", "a \t b", "tab\tin"})
    spaced.push_back(s);
  EXPECT_EQ(count_mismatches(*lib, *pure, spaced, "spm-bpe(tok512)"), 0u);
  // The documented difference itself.
  EXPECT_NE(lib->encode("a  b"), bin->encode("a  b"));
  EXPECT_EQ(lib->encode("a  b"), bin->encode("a b"));
}

TEST(SentencePiece, MalformedModelNamesField) {
  const std::string dir = testing::temp_dir("spm");
  const std::string p = dir + "/bad.model";
  // Field 1 (pieces), length 100, but only 3 bytes follow.
  std::ofstream(p, std::ios::binary) << std::string("\x0a\x64\x0a\x01\x61", 5);
  try {
    load_tokenizer(p);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("[tokenizer] " + p), std::string::npos) << m;
    EXPECT_NE(m.find("'pieces'"), std::string::npos) << m;
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
