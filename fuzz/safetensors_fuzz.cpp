// safetensors files (models, adapters, trainer checkpoints all use this reader).
#include "fuzz_input.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "model.safetensors");
  fuzz::refuse_cleanly([&] {
    nlohmann::json meta;
    read_safetensors(p, &meta);
  });
  fuzz::refuse_cleanly([&] { read_safetensors_f32(p); });
  return 0;
}
