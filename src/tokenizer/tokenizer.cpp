// load_tokenizer dispatch, llama2.c tokenizer.bin reading, and GGUF tokenizer metadata in and out.
#include "tokenizer/tokenizer.h"

#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "tokenizer/hf_bpe.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/spm_bpe.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using json = nlohmann::json;
using tok::PieceType;

// llama2.c tokenizer.bin: int32 max_token_length, then until EOF per token: float32 score,
// int32 len, len bytes. The file has no count; llama2.c takes the vocabulary size from the
// checkpoint, so every entry up to EOF is a token and a partial entry is an error.
std::unique_ptr<Tokenizer> load_llama2c(const std::string& path) {
  const auto file = MappedFile::open(path);
  const uint8_t* d = file->data();
  const size_t n = file->size();
  size_t pos = 0;
  auto need = [&](size_t bytes, const std::string& field) {
    if (n - pos < bytes)
      fail("[tokenizer] {}: field '{}': truncated (needs {} bytes at offset {}, {} remain)", path,
           field, bytes, pos, n - pos);
  };
  auto rd_i32 = [&](const std::string& field) {
    need(4, field);
    int32_t v;
    std::memcpy(&v, d + pos, 4);
    pos += 4;
    return v;
  };
  const int32_t max_len = rd_i32("max_token_length");
  if (max_len <= 0 || max_len > 4096)
    fail("[tokenizer] {}: field 'max_token_length': value {} out of range 1..4096", path, max_len);
  tok::ScoredVocab v;
  while (pos < n) {
    const size_t i = v.pieces.size();
    need(4, fmt::format("token {}: score", i));
    float score;
    std::memcpy(&score, d + pos, 4);
    pos += 4;
    const int32_t len = rd_i32(fmt::format("token {}: len", i));
    if (len < 0 || len > max_len)
      fail("[tokenizer] {}: field 'token {}: len': value {} outside 0..max_token_length {}", path,
           i, len, max_len);
    need(static_cast<size_t>(len), fmt::format("token {}: bytes", i));
    std::string piece(reinterpret_cast<const char*>(d + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    // llama2.c's export writes <unk>, "\n<s>\n", "\n</s>\n" and <0xNN> byte pieces verbatim; give
    // them SentencePiece's types so they never take part in merges.
    PieceType type = PieceType::kNormal;
    if (piece == "<unk>")
      type = PieceType::kUnknown;
    else if (piece == "\n<s>\n" || piece == "\n</s>\n" || piece == "<s>" || piece == "</s>")
      type = PieceType::kControl;
    else if (tok::parse_byte_piece(piece) >= 0)
      type = PieceType::kByte;
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  if (v.pieces.size() < 3)
    fail("[tokenizer] {}: only {} tokens (need <unk>, BOS, EOS)", path, v.pieces.size());
  tok::SpmOptions opt;
  opt.kind = "llama2c";
  opt.space.assign(1, ' ');  // llama2.c's pieces hold real spaces where SentencePiece has "▁"
  return std::make_unique<tok::SpmBpeTokenizer>(std::move(v), opt, path);
}

bool looks_like_json(const std::string& path) {
  const auto f = MappedFile::open(path);
  for (size_t i = 0; i < f->size(); ++i) {
    const char c = static_cast<char>(f->data()[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return false;
}

std::unique_ptr<Tokenizer> load_hf_json(const std::string& path) {
  json doc;
  try {
    doc = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail("[tokenizer] {}: invalid JSON: {}", path, e.what());
  }
  json config;
  const auto cfg = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg)) {
    try {
      config = json::parse(read_file(cfg.string()));
    } catch (const json::exception& e) {
      fail("[tokenizer] {}: invalid JSON: {}", cfg.string(), e.what());
    }
  }
  return tok::hf_bpe_from_json(doc, config, path);
}

// GGUF metadata helpers: every failure names the source file and the key.
struct Meta {
  const json& m;
  const std::string& src;
  const json& get(const std::string& key) const {
    const auto it = m.find(key);
    if (it == m.end()) fail("[tokenizer] {}: field '{}': missing", src, key);
    return *it;
  }
  const json& array(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_array())
      fail("[tokenizer] {}: field '{}': expected an array, got {}", src, key, v.type_name());
    return v;
  }
  int int_or(const std::string& key, int def) const {
    const auto it = m.find(key);
    if (it == m.end() || it->is_null()) return def;
    if (!it->is_number_integer())
      fail("[tokenizer] {}: field '{}': value {} is not an integer", src, key, it->dump());
    return it->get<int>();
  }
  bool bool_or(const std::string& key, bool def) const {
    const auto it = m.find(key);
    if (it == m.end() || it->is_null()) return def;
    if (!it->is_boolean())
      fail("[tokenizer] {}: field '{}': value {} is not a boolean", src, key, it->dump());
    return it->get<bool>();
  }
};

std::vector<std::string> string_list(const Meta& meta, const std::string& key) {
  const json& a = meta.array(key);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string())
      fail("[tokenizer] {}: field '{}[{}]': value {} is not a string", meta.src, key, i,
           a[i].dump());
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

std::vector<int> token_types(const Meta& meta, size_t n) {
  std::vector<int> types(n, 1);
  if (!meta.m.contains("tokenizer.ggml.token_type")) return types;
  const json& a = meta.array("tokenizer.ggml.token_type");
  if (a.size() != n)
    fail("[tokenizer] {}: field 'tokenizer.ggml.token_type': {} entries for {} tokens", meta.src,
         a.size(), n);
  for (size_t i = 0; i < n; ++i) {
    if (!a[i].is_number_integer() || a[i].get<int>() < 1 || a[i].get<int>() > 6)
      fail("[tokenizer] {}: field 'tokenizer.ggml.token_type[{}]': value {} unknown", meta.src, i,
           a[i].dump());
    types[i] = a[i].get<int>();
  }
  return types;
}

json scored_to_gguf(const tok::ScoredVocab& v, const tok::SpmOptions& o, bool llama2c) {
  json tokens = json::array(), scores = json::array(), types = json::array();
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    std::string p = v.pieces[i];
    if (llama2c) {
      // llama2.c's export decorates BOS/EOS with newlines and spells "▁" as a space.
      if (p == "\n<s>\n") p = "<s>";
      if (p == "\n</s>\n") p = "</s>";
      if (v.types[i] != PieceType::kByte) p = tok::replace_all(p, " ", tok::kSpmSpace);
    } else if (o.space != tok::kSpmSpace) {
      p = tok::replace_all(p, o.space, tok::kSpmSpace);
    }
    tokens.push_back(std::move(p));
    scores.push_back(v.scores[i]);
    types.push_back(static_cast<int>(v.types[i]));
  }
  return json{{"tokenizer.ggml.model", "llama"},
              {"tokenizer.ggml.tokens", std::move(tokens)},
              {"tokenizer.ggml.scores", std::move(scores)},
              {"tokenizer.ggml.token_type", std::move(types)},
              {"tokenizer.ggml.bos_token_id", o.bos},
              {"tokenizer.ggml.eos_token_id", o.eos},
              {"tokenizer.ggml.unknown_token_id", o.unk},
              {"tokenizer.ggml.add_bos_token", o.add_bos},
              {"tokenizer.ggml.add_eos_token", false},
              {"tokenizer.ggml.add_space_prefix", o.add_dummy_prefix},
              {"tokenizer.ggml.remove_extra_whitespaces", o.remove_extra_whitespaces}};
}

std::string steps_signature(const std::vector<tok::PreTokStep>& pre,
                            const std::vector<tok::NormStep>& norm) {
  std::string s;
  for (const auto& p : pre) s += p.signature() + ";";
  s += "|";
  for (const auto& n : norm) s += n.signature() + ";";
  return s;
}

json hf_to_gguf(const tok::HfBpeTokenizer& t) {
  const auto& spec = t.spec();
  if (!t.byte_level())
    fail(
        "[tokenizer] GGUF export: only byte-level BPE maps to tokenizer.ggml.model 'gpt2'; this "
        "tokenizer.json is not byte-level");
  std::string pre_name;
  const std::string sig = steps_signature(spec.pre, spec.normalizer);
  for (const auto& p : tok::gguf_pre_table())
    if (steps_signature(p.pre, p.normalizer) == sig && p.ignore_merges == spec.ignore_merges)
      pre_name = p.name;
  if (pre_name.empty())
    fail(
        "[tokenizer] GGUF export: pre-tokenizer/normalizer '{}' matches no known "
        "tokenizer.ggml.pre (llama-bpe, qwen2, gpt-2, smollm)",
        sig);
  const int n = t.vocab_size();
  std::vector<int> types(n, 1);
  json tokens = json::array(), type_arr = json::array(), merges = json::array();
  for (const auto& a : spec.added) types[a.id] = a.special ? 3 : 4;
  for (int i = 0; i < n; ++i) {
    std::string s = t.token(i);
    if (s.empty()) {
      s = fmt::format("[PAD{}]", i);  // ids the file never assigned (llama.cpp's convention)
      types[i] = 5;
    }
    tokens.push_back(std::move(s));
    type_arr.push_back(types[i]);
  }
  for (const auto& [a, b] : spec.merges) merges.push_back(a + " " + b);
  return json{{"tokenizer.ggml.model", "gpt2"},
              {"tokenizer.ggml.pre", pre_name},
              {"tokenizer.ggml.tokens", std::move(tokens)},
              {"tokenizer.ggml.token_type", std::move(type_arr)},
              {"tokenizer.ggml.merges", std::move(merges)},
              {"tokenizer.ggml.bos_token_id", spec.bos},
              {"tokenizer.ggml.eos_token_id", spec.eos},
              {"tokenizer.ggml.add_bos_token", spec.add_bos},
              {"tokenizer.ggml.add_eos_token", false}};
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("[tokenizer] {}: no such file or directory", path);
  if (fs::is_directory(path, ec)) {
    // tokenizer.model first: where both exist (Llama-2, TinyLlama, Mistral) libsentencepiece is
    // the reference; tokenizer.json is the only file for Llama-3, Qwen, SmolLM.
    for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer.bin"}) {
      const fs::path p = fs::path(path) / name;
      if (fs::is_regular_file(p, ec)) return load_tokenizer(p.string());
    }
    fail("[tokenizer] {}: directory holds none of tokenizer.model, tokenizer.json, tokenizer.bin",
         path);
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return load_hf_json(path);
  if (ext == ".model") return std::make_unique<tok::SentencePieceTokenizer>(path);
  if (ext == ".bin") return load_llama2c(path);
  // Unknown extension: JSON is recognisable by content; anything else is tried as a
  // SentencePiece protobuf (whose errors name the file).
  if (looks_like_json(path)) return load_hf_json(path);
  return std::make_unique<tok::SentencePieceTokenizer>(path);
}

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const json& m, const std::string& source) {
  if (!m.is_object()) fail("[tokenizer] {}: tokenizer metadata: expected an object", source);
  const Meta meta{m, source};
  const json& model_v = meta.get("tokenizer.ggml.model");
  if (!model_v.is_string())
    fail("[tokenizer] {}: field 'tokenizer.ggml.model': value {} is not a string", source,
         model_v.dump());
  const std::string model = model_v.get<std::string>();
  std::vector<std::string> tokens = string_list(meta, "tokenizer.ggml.tokens");
  const std::vector<int> types = token_types(meta, tokens.size());

  if (model == "llama") {
    tok::ScoredVocab v;
    v.scores.assign(tokens.size(), 0.0f);
    if (m.contains("tokenizer.ggml.scores")) {
      const json& s = meta.array("tokenizer.ggml.scores");
      if (s.size() != tokens.size())
        fail("[tokenizer] {}: field 'tokenizer.ggml.scores': {} entries for {} tokens", source,
             s.size(), tokens.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (!s[i].is_number())
          fail("[tokenizer] {}: field 'tokenizer.ggml.scores[{}]': value {} is not a number",
               source, i, s[i].dump());
        v.scores[i] = s[i].get<float>();
      }
    }
    for (int t : types) v.types.push_back(static_cast<PieceType>(t));
    v.pieces = std::move(tokens);
    tok::SpmOptions o;
    o.kind = "gguf-llama";
    o.bos = meta.int_or("tokenizer.ggml.bos_token_id", 1);
    o.eos = meta.int_or("tokenizer.ggml.eos_token_id", 2);
    o.unk = meta.int_or("tokenizer.ggml.unknown_token_id", 0);
    o.add_bos = meta.bool_or("tokenizer.ggml.add_bos_token", true);
    o.add_dummy_prefix = meta.bool_or("tokenizer.ggml.add_space_prefix", true);
    o.remove_extra_whitespaces = meta.bool_or("tokenizer.ggml.remove_extra_whitespaces", false);
    return std::make_unique<tok::SpmBpeTokenizer>(std::move(v), o, source);
  }
  if (model == "gpt2") {
    const std::string pre = m.contains("tokenizer.ggml.pre") && m["tokenizer.ggml.pre"].is_string()
                                ? m["tokenizer.ggml.pre"].get<std::string>()
                                : "default";
    // llama.cpp's aliases for the same pre-tokenizers.
    const std::string canon = pre == "llama3" || pre == "llama-v3" ? "llama-bpe"
                              : pre == "default" || pre == "gpt2"  ? "gpt-2"
                                                                   : pre;
    const tok::GgufPre* p = nullptr;
    for (const auto& e : tok::gguf_pre_table())
      if (e.name == canon) p = &e;
    if (p == nullptr)
      fail(
          "[tokenizer] {}: field 'tokenizer.ggml.pre': value '{}' unsupported (llama-bpe, qwen2, "
          "gpt-2, smollm)",
          source, pre);
    tok::HfBpeSpec spec;
    spec.pre = p->pre;
    spec.normalizer = p->normalizer;
    spec.ignore_merges = p->ignore_merges;
    tok::DecodeStep bl{};
    bl.kind = tok::DecodeStep::Kind::kByteLevel;
    spec.decoder.push_back(bl);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto id = static_cast<int32_t>(i);
      if (types[i] == 3 || types[i] == 4) {
        // Control and user-defined tokens are HF added tokens, matched whole in raw text.
        spec.added.push_back({tokens[i], id, types[i] == 3, false, false, false, false});
      } else if (types[i] != 5) {
        spec.vocab.emplace(tokens[i], id);
      }
    }
    for (const auto& s : string_list(meta, "tokenizer.ggml.merges")) {
      const size_t sp = s.find(' ');
      if (sp == std::string::npos)
        fail("[tokenizer] {}: field 'tokenizer.ggml.merges': value '{}' is not 'a b'", source, s);
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
    spec.bos = meta.int_or("tokenizer.ggml.bos_token_id", -1);
    spec.eos = meta.int_or("tokenizer.ggml.eos_token_id", -1);
    spec.add_bos = meta.bool_or("tokenizer.ggml.add_bos_token", false);
    return std::make_unique<tok::HfBpeTokenizer>(std::move(spec), "gguf-gpt2", source);
  }
  fail("[tokenizer] {}: field 'tokenizer.ggml.model': value '{}' unsupported (llama, gpt2)", source,
       model);
}

json tokenizer_to_gguf(const Tokenizer& t) {
  if (const auto* s = dynamic_cast<const tok::SpmBpeTokenizer*>(&t))
    return scored_to_gguf(s->vocab(), s->options(), s->kind() == "llama2c");
  if (const auto* s = dynamic_cast<const tok::SentencePieceTokenizer*>(&t)) {
    const auto bpe = tok::spm_bpe_from_model(s->info(), s->path());
    return scored_to_gguf(bpe->vocab(), bpe->options(), false);
  }
  if (const auto* h = dynamic_cast<const tok::HfBpeTokenizer*>(&t)) return hf_to_gguf(*h);
  fail("[tokenizer] GGUF export: tokenizer kind '{}' unsupported", t.kind());
}

}  // namespace edgellm
