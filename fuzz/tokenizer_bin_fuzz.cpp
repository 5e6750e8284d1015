// llama2.c tokenizer.bin files, then an encode/decode round on a fixed text.
#include "fuzz_input.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "tokenizer.bin");
  fuzz::refuse_cleanly([&] {
    auto tok = load_tokenizer(p);
    tok->decode(tok->encode("Once upon a time, \xC3\xA9t\xC3\xA9 42\n"));
  });
  return 0;
}
