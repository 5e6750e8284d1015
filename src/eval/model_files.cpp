#include "eval/model_files.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "util/error.h"

namespace edgellm {

namespace fs = std::filesystem;

std::string find_tokenizer_file(const std::string& model_path, const Checkpoint& ck) {
  if (ck.format == CheckpointFormat::Gguf) return "";
  std::vector<fs::path> candidates;
  if (ck.format == CheckpointFormat::HfSafetensors) {
    candidates = {fs::path(model_path) / "tokenizer.json",
                  fs::path(model_path) / "tokenizer.model"};
  } else {
    const fs::path dir = fs::path(model_path).parent_path().empty()
                             ? fs::path(".")
                             : fs::path(model_path).parent_path();
    candidates.push_back(dir / "tokenizer.bin");
    // tok*.bin (e.g. tok512.bin for stories260K), in name order for determinism.
    std::vector<fs::path> tok;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("tok", 0) == 0 && e.path().extension() == ".bin") tok.push_back(e.path());
    }
    std::sort(tok.begin(), tok.end());
    candidates.insert(candidates.end(), tok.begin(), tok.end());
  }
  std::string searched;
  for (const auto& p : candidates) {
    if (fs::is_regular_file(p)) return p.string();
    searched += (searched.empty() ? "" : ", ") + p.string();
  }
  fail("[tokenizer] no tokenizer found for model {} (looked for {}); pass --tokenizer", model_path,
       searched.empty() ? std::string("tokenizer.bin, tok*.bin") : searched);
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& m, const std::string& tokenizer_path) {
  const Checkpoint& ck = m.checkpoint();
  std::unique_ptr<Tokenizer> tok;
  std::string what = tokenizer_path;
  if (tokenizer_path.empty()) what = find_tokenizer_file(ck.path, ck);
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
