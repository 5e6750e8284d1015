// HF config.json (ModelConfig::from_hf_json). Text that is not JSON is the JSON library's to
// refuse (load_hf_dir turns that into an Error naming the file); everything parsed must be
// accepted or refused with an Error.
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const nlohmann::json j =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  fuzz::refuse_cleanly([&] { ModelConfig::from_hf_json(j, "config.json"); });
  return 0;
}
