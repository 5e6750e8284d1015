
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/model_files.h"
#include "train/trainer.h"
#include "util/atomic_dir.h"
#include "util/error.h"

namespace edgellm::cli {

void register_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "fold a LoRA adapter into the base weights");
  struct Args : ModelArgs {
    std::string adapter, out;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a, /*with_tokenizer=*/false);
  cmd->add_option("--adapter", a->adapter, "PEFT adapter directory")->required();
  cmd->add_option("--out", a->out, "output HF directory (fp32 safetensors)")->required();
  cmd->callback([a] {
    apply_threads(*a);
    auto m = load_model(*a);
    const LoraAdapters ad = LoraAdapters::load(a->adapter, m->config());
    AtomicDir out(a->out);
    merge_adapter(*m, ad, out.path());
    // Carry the tokenizer along so the merged directory is self-contained.
    copy_tokenizer_into(find_tokenizer_file(a->model, m->checkpoint()), out.path());
    out.commit();
    if (a->json)
      print_json({{"model", a->model}, {"adapter", a->adapter}, {"out", a->out}});
    else
      std::printf("merged %s + %s -> %s\n", a->model.c_str(), a->adapter.c_str(), a->out.c_str());
  });
}

}  // namespace edgellm::cli
