#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "model/lora.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

void register_ppl(CLI::App& app) {
  auto* cmd = app.add_subcommand("ppl", "perplexity of a text file");
  struct Args : ModelArgs {
    std::string text, protocol = "standard", adapter;
    PplOptions o;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--text", a->text, "UTF-8 text file, evaluated as-is")->required();
  cmd->add_option("--ctx", a->o.ctx, "window length in tokens")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--protocol", a->protocol,
                  "standard | llamacpp | edgellm-paper (see docs/eval.md)");
  cmd->add_option("--max-tokens", a->o.max_tokens,
                  "evaluate only the first N tokens (BOS included)");
  cmd->add_option("--adapter", a->adapter,
                  "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), "
                  "applied unmerged");
  cmd->callback([a] {
    apply_threads(*a);
    a->o.protocol = ppl_protocol_from_name(a->protocol);
    auto m = load_model(*a);
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    std::unique_ptr<LoraAdapters> adapter;
    if (!a->adapter.empty()) {
      adapter = std::make_unique<LoraAdapters>(LoraAdapters::load(a->adapter, m->config()));
      a->o.adapter = adapter.get();
    }
    const std::string text = read_file(a->text);
    const std::vector<int32_t> tokens = ppl_tokens(*tok, text, a->o.max_tokens);
    PplResult r = perplexity(*m, tokens, a->o);
    add_bits_per_byte(r, *tok, tokens);
    if (a->json) {
      print_json({{"model", a->model},
                  {"text", a->text},
                  {"adapter", a->adapter},
                  {"protocol", r.protocol},
                  {"ctx", r.ctx},
                  {"tokens", r.tokens},
                  {"windows", r.windows},
                  {"predictions", r.predictions},
                  {"mean_nll", r.mean_nll},
                  {"ppl", r.ppl},
                  {"bytes", r.bytes},
                  {"bpb", r.bpb},
                  {"seconds", r.seconds}});
    } else {
      fmt::print(
          "{}: ppl {:.4f} (mean NLL {:.4f} nats, {:.4f} bits/byte) over {} predictions, {} "
          "tokens, {} windows of {} [{}], {:.2f} s\n",
          a->text, r.ppl, r.mean_nll, r.bpb, r.predictions, r.tokens, r.windows, r.ctx, r.protocol,
          r.seconds);
    }
  });
}

}  // namespace edgellm::cli
