// MMLU subject CSV files (eval/mmlu.h read_mmlu_csv): both layouts (header row with an answer
// index 0-3, and hendrycks' headerless rows with an answer letter), quoted fields, CRLF.
#include "eval/mmlu.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm;
  const std::string p = fuzz::input_file(data, size, "subject_test.csv");
  fuzz::refuse_cleanly([&] {
    for (const MmluQuestion& q : read_mmlu_csv(p)) (void)mmlu_question_text(q);
  });
  return 0;
}
