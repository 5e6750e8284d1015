// Pipeline configs (pipeline/config.h load_config): the first input byte picks the syntax (.json
// or .toml through toml++), the rest is the file. A loaded config must also serialize.
#include "fuzz_input.h"
#include "pipeline/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  if (size == 0) return 0;
  const char* name = data[0] & 1 ? "pipeline.toml" : "pipeline.json";
  const std::string p = fuzz::input_file(data + 1, size - 1, name);
  fuzz::refuse_cleanly([&] { (void)pipeline::load_config(p).to_json().dump(); });
  return 0;
}
