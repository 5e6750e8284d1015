// Finding the files that go with a model: the tokenizer beside a checkpoint, or inside it.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

// The tokenizer for `model_path` when none is given: GGUF metadata; an HF directory's
// tokenizer.json / tokenizer.model; for a llama2.c .bin, tokenizer.bin or tok*.bin beside it.
// Returns "" for GGUF (use the metadata) and throws naming what was searched if none is found.
std::string find_tokenizer_file(const std::string& model_path, const Checkpoint& ck);

// Loads `tokenizer_path` (or the one found for the model) and checks it against the model's
// vocabulary: a tokenizer with more tokens than the model's embedding rows is an error naming
// both files and both sizes.
std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& m, const std::string& tokenizer_path);

}  // namespace edgellm
