#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/checkpoint.h"
#include "util/error.h"

namespace edgellm {

namespace {
Checkpoint load_any(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("[checkpoint] {}: no such file or directory", path);
  if (fs::is_directory(path)) return load_hf_dir(path);
  // A single .safetensors file stands for its directory (config.json lives beside it).
  if (fs::path(path).extension() == ".safetensors")
    return load_hf_dir(fs::path(path).parent_path().string());
  char magic[4] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("[checkpoint] {}: cannot open", path);
  f.read(magic, 4);
  if (f.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return load_gguf(path);
  return load_llama2c(path);
}
}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint ck = load_any(path);
  fill_linear_formats(ck);
  return ck;
}

}  // namespace edgellm
