#include "hwsim/flexgen.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "hwsim/cost_model.h"
#include "util/error.h"

namespace edgellm::hwsim {

FlexGenResult flexgen_cost(const FlexGenCase& c, const FlexGenConstants& k) {
  if (c.s <= 0 || c.n <= 0 || c.l <= 0 || c.h1 <= 0 || c.h2 <= 0 || c.gbs <= 0 || c.nb <= 0)
    fail("[hwsim] flexgen: sizes must be positive (s {}, n {}, l {}, h1 {}, h2 {}, gbs {}, nb {})",
         c.s, c.n, c.l, c.h1, c.h2, c.gbs, c.nb);
  const double wn = 1 - c.wg - c.wc, cn = 1 - c.cg - c.cc, hn = 1 - c.hg - c.hc;
  if (wn < -1e-9 || cn < -1e-9 || hn < -1e-9)
    fail("[hwsim] flexgen: GPU+CPU fractions exceed 1 (w {}+{}, cache {}+{}, hidden {}+{})", c.wg,
         c.wc, c.cg, c.cc, c.hg, c.hc);
  const double s = c.s, n = c.n, h1 = c.h1, h2 = c.h2;
  const double bls = static_cast<double>(c.gbs) * c.nb;  // sequences per block
  const double wi = 8 * h1 * h1 + 4 * h1 * h2;           // fp16 bytes of one OPT layer
  const double hidden_p = 2 * s * h1 * bls;              // fp16 hidden states of a block
  FlexGenResult r;
  // Prefill, per layer: weights and hidden states stream in, KV cache and hidden stream out.
  r.ctog_p = (wi * (c.wc + wn) + hidden_p * (c.hc + hn)) / k.ctog_bw;
  r.gtoc_p = 4 * (s + 1) * h1 * bls * (c.cc + cn) / k.gtoc_bw_cache +
             hidden_p * (c.hc + hn) / k.gtoc_bw_hidden;
  r.dtoc_p = (wi * wn + hidden_p * hn) / k.dtoc_bw;
  r.ctod_p = 4 * bls * (s + 1) * h1 * cn / k.ctod_bw_cache_p + hidden_p * hn / k.ctod_bw_hidden_p;
  r.comp_p = bls * (8 * s * h1 * h1 + 4 * s * h1 * h2) / k.mm_flops_p +
             4 * bls * s * s * h1 / k.bmm_flops_p;
  // FlexGen's prefill overlap is our FlexGen variant: the read chain (ctog + dtoc) and the write
  // chain (gtoc + ctod) each share one path.
  r.t_pre = combine(Overlap::FlexGen, r.ctog_p, r.gtoc_p, r.dtoc_p, r.ctod_p, r.comp_p, nullptr);
  // Decode, per layer and token.
  const double hidden_g = 2 * h1 * bls;
  r.ctog_g = (wi * (c.wc + wn) + hidden_g * (c.hc + hn)) / k.ctog_bw;
  r.gtoc_g = hidden_g * (c.hc + hn) / k.gtoc_bw_hidden;
  r.dtoc_g =
      (4 * bls * (s + n / 2) * h1 * cn + hidden_g * hn) / k.dtoc_bw + wi * wn / (k.dtoc_bw * 0.95);
  r.ctod_g = (4 * bls * h1 * cn + hidden_g * hn) / k.ctod_bw_g;
  // CPU attention efficiency falls for small GPU batches and small hidden sizes (FlexGen's fit).
  const double lb = std::max(0.0, std::log2(64.0 / c.gbs)),
               lh = std::max(0.0, std::log2(4096.0 / h1));
  const double cpu_flops = k.cpu_flops * std::max(0.1, 1 + k.c1 * lb * lh - k.c2 * lb - k.c3 * lh);
  r.comp_g = bls * (8 * h1 * h1 + 4 * h1 * h2) / k.mm_flops_g +
             4 * bls * (s + n / 2) * h1 * c.cg / k.bmm_flops_g +
             4 * bls * (s + n / 2) * h1 * (c.cc + cn) / cpu_flops;
  // Decode: weight loading is not overlapped with the rest (FlexGen's ctog + max(...)).
  r.t_gen = r.ctog_g + std::max({r.gtoc_g, r.dtoc_g, r.ctod_g, r.comp_g});
  r.total_s = r.t_pre * c.l + r.t_gen * (c.n - 1) * c.l;
  r.tokens_per_s = bls * c.n / r.total_s;
  return r;
}

nlohmann::json FlexGenResult::to_json() const {
  return {{"prefill_per_layer_s",
           {{"ctog", ctog_p},
            {"gtoc", gtoc_p},
            {"dtoc", dtoc_p},
            {"ctod", ctod_p},
            {"comp", comp_p},
            {"T", t_pre}}},
          {"decode_per_layer_s",
           {{"ctog", ctog_g},
            {"gtoc", gtoc_g},
            {"dtoc", dtoc_g},
            {"ctod", ctod_g},
            {"comp", comp_g},
            {"T", t_gen}}},
          {"total_s", total_s},
          {"tokens_per_s", tokens_per_s}};
}

}  // namespace edgellm::hwsim
