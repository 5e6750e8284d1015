// Compressed model directories (io/packed_tensors.h): the input is model.safetensors with packed
// parts (.qcodes/.qscales/.qzeros/.qindex) and the "edgellm.compression" record, beside a fixed
// config.json. Loading assembles and checks every packed tensor against its format; a loaded
// model must also summarise its storage and pass the finite-value check or refuse cleanly.
#include <filesystem>
#include <fstream>

#include "fuzz_input.h"
#include "io/checkpoint.h"
#include "io/packed_tensors.h"
#include "seed_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string in = fuzz::input_file(data, size, "compressed.safetensors.in");
  static const std::string dir = [&] {
    const std::string d = std::filesystem::path(in).parent_path().string() + "/compressed";
    std::filesystem::create_directories(d);
    std::ofstream(d + "/config.json") << fuzz::compressed_seed_config().to_hf_json().dump();
    return d;
  }();
  std::filesystem::rename(in, dir + "/model.safetensors");
  fuzz::refuse_cleanly([&] {
    const Checkpoint ck = load_hf_dir(dir);
    check_finite_tensors(ck);
    (void)storage_summary(ck).dump();
  });
  return 0;
}
