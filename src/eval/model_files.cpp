#include "eval/model_files.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "util/error.h"

namespace edgellm {

namespace fs = std::filesystem;

std::string find_tokenizer_file(const std::string& model_path, const Checkpoint& ck,
                                std::string* searched) {
  if (ck.format == CheckpointFormat::Gguf) return "";
  std::vector<fs::path> candidates;
  fs::path dir = fs::path(model_path);
  if (ck.format == CheckpointFormat::HfSafetensors) {
    candidates = {dir / "tokenizer.json", dir / "tokenizer.model"};
  } else {
    dir = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  }
  // llama2.c tokenizers: tokenizer.bin or tok*.bin (e.g. tok512.bin for stories260K) beside a
  // .bin, or inside an HF directory converted from one; tok*.bin in name order.
  candidates.push_back(dir / "tokenizer.bin");
  std::vector<fs::path> tok;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("tok", 0) == 0 && e.path().extension() == ".bin" && n != "tokenizer.bin")
      tok.push_back(e.path());
  }
  std::sort(tok.begin(), tok.end());
  candidates.insert(candidates.end(), tok.begin(), tok.end());
  for (const auto& p : candidates) {
    if (fs::is_regular_file(p)) return p.string();
    if (searched) *searched += (searched->empty() ? "" : ", ") + p.string();
  }
  return "";
}

void copy_tokenizer_into(const std::string& tok, const std::string& dir) {
  if (tok.empty()) return;
  const fs::path src(tok);
  const std::string ext = src.extension().string();
  const char* name = ext == ".json"    ? "tokenizer.json"
                     : ext == ".model" ? "tokenizer.model"
                                       : "tokenizer.bin";
  std::error_code ec;
  fs::copy_file(src, fs::path(dir) / name, fs::copy_options::overwrite_existing, ec);
  if (ec) fail("[tokenizer] cannot copy {} into {}: {}", tok, dir, ec.message());
  for (const char* extra : {"tokenizer_config.json", "special_tokens_map.json"})
    if (fs::exists(src.parent_path() / extra))
      fs::copy_file(src.parent_path() / extra, fs::path(dir) / extra,
                    fs::copy_options::overwrite_existing);
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& m, const std::string& tokenizer_path) {
  const Checkpoint& ck = m.checkpoint();
  std::unique_ptr<Tokenizer> tok;
  std::string what = tokenizer_path;
  std::string searched;
  if (tokenizer_path.empty()) {
    what = find_tokenizer_file(ck.path, ck, &searched);
    if (what.empty() && ck.format != CheckpointFormat::Gguf)
      fail(
          "[tokenizer] no tokenizer found for model {} (looked for {}, tok*.bin); pass "
          "--tokenizer",
          ck.path, searched);
  }
  if (what.empty()) {
    tok = tokenizer_from_gguf(ck.gguf_tokenizer, ck.path);
    what = ck.path + " (GGUF metadata)";
  } else {
    tok = load_tokenizer(what);
  }
  if (tok->vocab_size() > m.config().vocab_size)
    fail("[tokenizer] {}: vocab size {} disagrees with model {} (vocab_size {})", what,
         tok->vocab_size(), ck.path, m.config().vocab_size);
  return tok;
}

}  // namespace edgellm
