// On the real stories260K: the attention projections of every layer, with their real inputs
// (tinystories text through the model), compress with lower output error under GPTQ than RTN and
// under SparseGPT than magnitude, at equal bits / sparsity; and the packed result computes the
// same outputs as its dequantized weights.
#include "real_layer.h"

#include <gtest/gtest.h>

#include "compress/compress_linear.h"
#include "kernels/gemm_bf16.h"
#include "kernels/packed_matmul.h"
#include "packed/packed_kernels.h"
#include "packed/random_packed.h"
#include "test_util.h"

namespace edgellm {
namespace {

const char* kTok = "models/stories260K/tok512.bin";
const char* kText = "text/tinystories/tinystories_val.txt";

TEST(RealLayer, Stories260kGptqAndSparseGptBeatBaselines) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  EDGELLM_REQUIRE_DATA(kText);
  auto m = Model::load(testing::stories260k_path());
  const auto ids = calib_demo::text_tokens(testing::data_path(kText), testing::data_path(kTok), 256,
                                           m->config().bos_id);
  ASSERT_EQ(ids.size(), 256u);
  const auto X = calib_demo::attention_inputs(*m, ids);
  double e_rtn = 0, e_gptq = 0, e_mag = 0, e_sgpt = 0;
  for (int l = 0; l < m->config().n_layers; ++l) {
    CalibStats st(m->config().dim);
    st.add(X[l].data(), static_cast<int64_t>(ids.size()));
    for (const WeightView* wv : {&m->layer(l).wq, &m->layer(l).wk, &m->layer(l).wv}) {
      const auto w = calib_demo::dense_weight(*wv);
      CompressSpec spec;
      spec.bits = 3;
      e_rtn += compress_linear(w.data(), wv->rows, wv->cols, spec, &st).report.output_mse;
      spec.quantizer = Quantizer::Gptq;
      const auto g = compress_linear(w.data(), wv->rows, wv->cols, spec, &st);
      e_gptq += g.report.output_mse;
      // Packed GEMM over the real inputs == X·Ŵᵀ with the dequantized weights.
      const int64_t T = 16;
      std::vector<float> y(T * wv->rows), y_ref(T * wv->rows, 0.f);
      packed_matmul(X[l].data(), g.packed.view(), y.data(), T);
      const auto wq = g.q.dequantize();
      // On the bf16 path (kernels/gemm_bf16.h) the product of the bf16-rounded operands.
      const std::vector<double> yb = bf16_gemm_path() == Bf16GemmPath::Dnnl
                                         ? bf16_packed_matmul_ref(X[l].data(), g.packed.view(), T)
                                         : std::vector<double>{};
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < wv->rows; ++r) {
          double s = 0;
          for (int64_t k = 0; k < wv->cols; ++k)
            s += double(X[l][t * wv->cols + k]) * wq[r * wv->cols + k];
          if (!yb.empty()) s = yb[t * wv->rows + r];
          EXPECT_NEAR(y[t * wv->rows + r], s, 1e-3 * (1 + std::abs(s)));
        }
      spec = CompressSpec{};
      spec.bits = 16;
      spec.pruner = Pruner::Magnitude;
      spec.sparsity.p = 0.5;
      e_mag += compress_linear(w.data(), wv->rows, wv->cols, spec, &st).report.output_mse;
      spec.pruner = Pruner::SparseGpt;
      e_sgpt += compress_linear(w.data(), wv->rows, wv->cols, spec, &st).report.output_mse;
    }
  }
  EXPECT_LT(e_gptq, 0.9 * e_rtn);
  EXPECT_LT(e_sgpt, 0.9 * e_mag);
}

}  // namespace
}  // namespace edgellm
