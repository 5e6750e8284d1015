// PEFT adapter_config.json beside a fixed, valid adapter_model.safetensors for a tiny model.
#include <sys/stat.h>

#include <filesystem>

#include "fuzz_input.h"
#include "model/lora.h"

namespace {
edgellm::ModelConfig tiny() {
  edgellm::ModelConfig c;
  c.dim = 64, c.hidden_dim = 96, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
  c.head_dim = 16, c.vocab_size = 40, c.max_seq_len = 128;
  c.layers.assign(2, {});
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  static const ModelConfig c = tiny();
  const std::string cfg = fuzz::input_file(data, size, "adapter_config.json.in");
  static const std::string dir = std::filesystem::path(cfg).parent_path().string() + "/adapter";
  static const bool once = [&] {
    std::filesystem::create_directories(dir);
    edgellm::LoraConfig lc;
    lc.rank = 2;
    LoraAdapters ad(c, lc);
    ad.init_peft(1);
    ad.save(dir, "tiny");  // writes adapter_model.safetensors (and a config we overwrite)
    return true;
  }();
  (void)once;
  std::filesystem::rename(cfg, dir + "/adapter_config.json");
  fuzz::refuse_cleanly([&] { LoraAdapters::load(dir, c); });
  return 0;
}
