// Alpaca instruction data (train/data.h load_dataset): the first input byte picks the layout
// (.json array or .jsonl records), the rest is the file. Every record must be accepted or refused
// with an Error naming the file, the record and the field.
#include "fuzz_input.h"
#include "seed_formats.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  if (size == 0) return 0;
  static const std::unique_ptr<Tokenizer> tok = [] {
    const std::string bin = fuzz::tokenizer_bin();
    return load_tokenizer(fuzz::input_file(reinterpret_cast<const uint8_t*>(bin.data()), bin.size(),
                                           "tokenizer.bin"));
  }();
  const char* name = data[0] & 1 ? "alpaca.jsonl" : "alpaca.json";
  const std::string p = fuzz::input_file(data + 1, size - 1, name);
  fuzz::refuse_cleanly([&] { load_dataset(p, *tok, 32, 0.25, 7); });
  return 0;
}
