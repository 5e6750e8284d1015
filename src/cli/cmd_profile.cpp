// edgellm profile: per-layer (and per-linear) sensitivity to quantization and pruning
// (eval/sensitivity.h), written as sens.json (docs/compression.md) and plotted like the paper's
// Fig. 3.
#include <fmt/format.h>

#include <cstdio>

#include "cli/calib_args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/model_files.h"
#include "eval/sensitivity.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

void register_profile(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "profile", "per-layer sensitivity to quantization and pruning (sens.json for compress)");
  struct Args : ModelArgs {
    CalibOptions calib;
    ProfileOptions o;
    std::string pruner = "sparsegpt", scheme = "sym", out, plot;
    bool no_per_linear = false;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  add_calib_args(cmd, a->calib);
  cmd->add_option("--bits", a->o.bits, "RTN bit-widths to measure (2..8), e.g. 3,4,5,8")
      ->delimiter(',');
  cmd->add_option("--sparsity", a->o.sparsity, "sparsities to measure, e.g. 0.1,0.3,0.5,0.7")
      ->delimiter(',');
  cmd->add_option("--pruner", a->pruner, "magnitude | wanda | sparsegpt");
  cmd->add_option("--scheme", a->scheme, "RTN grid: sym | asym");
  cmd->add_option("--group", a->o.group, "RTN group (0 = per output row)");
  cmd->add_flag("--no-per-linear", a->no_per_linear,
                "skip the per-linear entries (8x fewer layer runs)");
  cmd->add_option("--out,-o", a->out, "write the profile here (sens.json)");
  cmd->add_option("--plot", a->plot, "write the Fig.-3-style plot here (SVG)");
  cmd->callback([a] {
    apply_threads(*a);
    if (a->calib.source.empty()) fail("[profile] --calib FILE|data-free is required");
    if (a->scheme != "sym" && a->scheme != "asym")
      fail("[profile] --scheme '{}': expected sym or asym", a->scheme);
    a->o.scheme = a->scheme == "sym" ? QuantScheme::Sym : QuantScheme::Asym;
    a->o.pruner = pruner_from_name(a->pruner, "--pruner");
    a->o.per_linear = !a->no_per_linear;
    // Profile reads the model one layer at a time: mapped, with each finished layer's pages
    // dropped, the peak holds one layer of it instead of a whole copy.
    a->mmap = true;
    auto m = load_model(*a);
    std::unique_ptr<Tokenizer> tok;
    if (a->calib.source != "data-free") tok = load_tokenizer_for(*m, a->tokenizer);
    const Calibration cal = load_calibration(*m, tok.get(), a->calib);
    a->o.progress = [&](int l, int L) {
      if (!a->json) std::fprintf(stderr, "[profile] layer %d/%d\n", l, L);
    };
    SensitivityProfile p = profile_sensitivity(*m, cal.windows, a->o);
    p.model = a->model;
    p.calibration = cal.provenance;
    p.calibration.erase("starts");  // reproducible from the rest; long for many windows
    const nlohmann::json j = p.to_json();
    if (!a->out.empty()) write_file_atomic(a->out, j.dump(2) + "\n");
    if (!a->plot.empty()) write_file_atomic(a->plot, sensitivity_svg(p));
    if (a->json) return print_json(j);
    fmt::print("sensitivity of {} ({} windows x {} tokens, {}): output MSE per layer\n", a->model,
               cal.windows.size(), a->calib.len, a->calib.source);
    fmt::print("{:>5} {:>10}", "layer", "out ms");
    for (int b : p.bits) fmt::print(" {:>10}", fmt::format("{}-bit", b));
    for (double s : p.sparsity) fmt::print(" {:>10}", fmt::format("p={:.2f}", s));
    fmt::print("\n");
    for (int l = 0; l < p.n_layers(); ++l) {
      fmt::print("{:>5} {:>10.3e}", l, p.layers[l].output_ms);
      for (double v : p.layers[l].quant) fmt::print(" {:>10.3e}", v);
      for (double v : p.layers[l].prune) fmt::print(" {:>10.3e}", v);
      fmt::print("\n");
    }
    if (!a->out.empty()) fmt::print("wrote {}\n", a->out);
    if (!a->plot.empty()) fmt::print("wrote {}\n", a->plot);
  });
}

}  // namespace edgellm::cli
