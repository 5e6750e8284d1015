// Distortion of the compression formats on a real model: the attention projections (Wq, Wk, Wv)
// of every layer of stories260K, with their real inputs (256 tokens of tinystories_val through
// the model). For each format: true bits per weight (every stored byte), weight RMSE, and the
// relative layer-output error ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² summed over the linears.
//   build/release/bench_compress [data_dir]      (default ../shared/data)
#include <fmt/format.h>

#include <cmath>

#include "../tests/compress/real_layer.h"
#include "compress/compress_linear.h"

using namespace edgellm;

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : "../shared/data";
  auto m = Model::load(data + "/models/stories260K/stories260K.bin");
  const auto ids =
      calib_demo::text_tokens(data + "/text/tinystories/tinystories_val.txt",
                              data + "/models/stories260K/tok512.bin", 256, m->config().bos_id);
  const auto X = calib_demo::attention_inputs(*m, ids);
  struct Lin {
    std::vector<float> w;
    int64_t rows, cols;
    CalibStats st;
    double out_energy;  // ‖XWᵀ‖²/n
  };
  std::vector<Lin> lins;
  for (int l = 0; l < m->config().n_layers; ++l) {
    CalibStats st(m->config().dim);
    st.add(X[l].data(), static_cast<int64_t>(ids.size()));
    for (const WeightView* wv : {&m->layer(l).wq, &m->layer(l).wk, &m->layer(l).wv}) {
      auto w = calib_demo::dense_weight(*wv);
      const std::vector<float> zero(w.size(), 0.f);
      const double e = output_mse(w.data(), zero.data(), wv->rows, wv->cols, st.hessian());
      lins.push_back({std::move(w), wv->rows, wv->cols, st, e});
    }
  }
  fmt::print(
      "| format | quantizer | pruner | sparsity | bits/weight | weight RMSE | rel. output error "
      "|\n");
  fmt::print("|---|---|---|---|---|---|---|\n");
  auto run = [&](const CompressSpec& spec) {
    double bytes = 0, n = 0, se = 0, eo = 0, e0 = 0;
    std::string stored;
    for (const Lin& L : lins) {
      const auto c = compress_linear(L.w.data(), L.rows, L.cols, spec, &L.st);
      bytes += double(c.report.bytes.total());
      n += double(L.rows * L.cols);
      se += c.report.weight_mse * double(L.rows * L.cols);
      eo += c.report.output_mse;
      e0 += L.out_energy;
      stored = c.report.stored.name();
    }
    const std::string sp = spec.sparsity.nm()
                               ? fmt::format("{}:{}", spec.sparsity.n, spec.sparsity.m)
                               : fmt::format("{:.2f}", spec.sparsity.p);
    fmt::print("| {} | {} | {} | {} | {:.3f} | {:.5f} | {:.3e} |\n", stored,
               spec.bits == 16 ? "-" : quantizer_name(spec.quantizer), pruner_name(spec.pruner), sp,
               8 * bytes / n, std::sqrt(se / n), eo / e0);
  };
  for (int bits = 2; bits <= 8; ++bits)
    for (auto [group, sch] : {std::pair{0, QuantScheme::Sym}, std::pair{32, QuantScheme::Asym}})
      for (Quantizer q : {Quantizer::Rtn, Quantizer::Gptq}) {
        CompressSpec s;
        s.bits = bits;
        s.group = group;
        s.scheme = sch;
        s.quantizer = q;
        run(s);
      }
  for (SparsitySpec sp : {SparsitySpec{0.5, 0, 0}, SparsitySpec{0, 2, 4}})
    for (int bits : {16, 4})
      for (Pruner p : {Pruner::Magnitude, Pruner::Wanda, Pruner::SparseGpt}) {
        CompressSpec s;
        s.bits = bits;
        s.pruner = p;
        s.sparsity = sp;
        s.quantizer = bits < 16 && p == Pruner::SparseGpt ? Quantizer::Gptq : Quantizer::Rtn;
        run(s);
      }
  return 0;
}
