// llama2.c model files (.bin).
#include "fuzz_input.h"
#include "io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "model.bin");
  fuzz::refuse_cleanly([&] { check_finite_tensors(load_llama2c(p)); });
  return 0;
}
