// Simulator device descriptions (hwsim/device.h Device::load): a JSON file given to `sim
// --device FILE`. Every value is range-checked; a parsed device must also describe itself.
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "hwsim/device.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "device.json");
  fuzz::refuse_cleanly([&] { (void)hwsim::Device::load(p).to_json().dump(); });
  return 0;
}
