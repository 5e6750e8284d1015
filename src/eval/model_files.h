// Finding the files that go with a model: the tokenizer beside a checkpoint, or inside it.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

// The tokenizer file for `model_path` when none is given: an HF directory's tokenizer.json /
// tokenizer.model (or a llama2.c tokenizer.bin / tok*.bin inside it, as `convert` leaves it);
// for a llama2.c .bin, tokenizer.bin or tok*.bin beside it. "" when there is none, and always
// for GGUF (its tokenizer is in the metadata). `searched` (optional) lists what was tried.
std::string find_tokenizer_file(const std::string& model_path, const Checkpoint& ck,
                                std::string* searched = nullptr);

// Copies tokenizer file `tok` (and tokenizer_config.json / special_tokens_map.json beside it)
// into HF directory `dir` under the name the loader looks for there, so the directory is
// self-contained. No-op for an empty `tok`.
void copy_tokenizer_into(const std::string& tok, const std::string& dir);

// Loads `tokenizer_path` (or the one found for the model) and checks it against the model's
// vocabulary: a tokenizer with more tokens than the model's embedding rows is an error naming
// both files and both sizes.
std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& m, const std::string& tokenizer_path);

}  // namespace edgellm
