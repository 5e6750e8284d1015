// edgellm convert: any readable checkpoint -> HF safetensors directory or GGUF file.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/model_files.h"
#include "io/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "util/atomic_dir.h"
#include "util/error.h"

namespace edgellm::cli {

void register_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "convert a checkpoint to safetensors (HF dir) or GGUF");
  struct Args {
    ModelArgs m;
    std::string to, out, dtype = "f32";
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, a->m);
  cmd->add_option("--to", a->to, "output format")
      ->required()
      ->check(CLI::IsMember({"safetensors", "gguf"}));
  cmd->add_option("--out,-o", a->out, "output directory (safetensors) or file (gguf)")->required();
  cmd->add_option("--dtype", a->dtype,
                  "matrix storage type: f32|f16|bf16 (safetensors), also q8_0|q4_0|q4_k|q6_k "
                  "(gguf; rows that do not fit a block fall back, see docs/formats.md). Packed "
                  "(compressed) linears stay packed in safetensors and become the nearest GGUF "
                  "type keeping their bits in gguf");
  cmd->callback([a] {
    apply_threads(a->m);
    const DType dt = dtype_from_name(a->dtype, "--dtype");
    Checkpoint ck = load_checkpoint(a->m.model);
    const std::string tok =
        a->m.tokenizer.empty() ? find_tokenizer_file(a->m.model, ck) : a->m.tokenizer;
    std::string tok_note = "none";
    if (a->to == "gguf") {
      nlohmann::json meta = ck.gguf_tokenizer;
      if (!tok.empty()) {
        meta = tokenizer_to_gguf(*load_tokenizer(tok));
        tok_note = tok;
      } else if (meta.is_object()) {
        tok_note = "from GGUF metadata";
      }
      save_gguf(ck, a->out, dt, meta.is_object() ? meta : nlohmann::json());
    } else {
      AtomicDir out(a->out);
      save_hf_dir(ck, out.path(), dt);
      if (!tok.empty()) {
        copy_tokenizer_into(tok, out.path());
        tok_note = tok;
      }
      out.commit();
    }
    nlohmann::json j = {{"input", ck.path},        {"input_format", format_name(ck.format)},
                        {"output", a->out},        {"output_format", a->to},
                        {"dtype", dtype_name(dt)}, {"tensors", ck.tensors.size()},
                        {"tokenizer", tok_note}};
    if (a->m.json) return print_json(j);
    fmt::print("converted {} ({}, {} tensors) -> {} ({}, {}); tokenizer: {}\n", ck.path,
               format_name(ck.format), ck.tensors.size(), a->out, a->to, dtype_name(dt), tok_note);
  });
}

}  // namespace edgellm::cli
