// GGUF model files: load_gguf, then the tokenizer built from the file's tokenizer.* metadata.
#include "fuzz_input.h"
#include "io/checkpoint.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "model.gguf");
  fuzz::refuse_cleanly([&] {
    const Checkpoint ck = load_gguf(p);
    check_finite_tensors(ck);
    if (!ck.gguf_tokenizer.is_null()) {
      auto tok = tokenizer_from_gguf(ck.gguf_tokenizer, p);
      tok->decode(tok->encode("Hello world, 12 cats!"));
    }
  });
  return 0;
}
