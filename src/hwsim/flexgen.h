// FlexGen's own cost model for OPT inference with offloading (Sheng et al., ICML 2023; the
// formulas of its experimental/cost_model.py, re-derived here), used to check that our
// overlap/placement machinery reproduces FlexGen's published estimate: OPT-30B, prompt 512,
// 32 generated tokens, GPU batch 48 × 3 batches, weights 20% GPU / 80% CPU, KV cache and
// activations on CPU, T4 constants → ≈645.8 s, ≈7.14 tok/s (FlexGen measured 7.32).
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace edgellm::hwsim {

// Hardware constants FlexGen fitted on a Google Cloud T4 VM (bytes/s and FLOP/s; FlexGen's
// GB is 2^30 bytes and its T is 1e12).
struct FlexGenConstants {
  double ctog_bw = 12.89 * (1ull << 30);          // CPU -> GPU
  double gtoc_bw_cache = 0.97 * (1ull << 30);     // GPU -> CPU, KV cache
  double gtoc_bw_hidden = 4.82 * (1ull << 30);    // GPU -> CPU, hidden states
  double dtoc_bw = 0.473 * (1ull << 30);          // disk -> CPU
  double ctod_bw_cache_p = 0.746 * (1ull << 30);  // CPU -> disk, cache in prefill
  double ctod_bw_hidden_p = 2.015 * (1ull << 30);
  double ctod_bw_g = 2.015 * (1ull << 30);
  double mm_flops_p = 21.24e12;  // GPU matmul, prefill
  double mm_flops_g = 4.3e12;    // GPU matmul, decode
  double bmm_flops_p = 9.97e12;  // GPU batched matmul (attention), prefill
  double bmm_flops_g = 0.079e12;
  double cpu_flops = 0.0123e12;  // CPU attention in decode (delegated when cache is on CPU)
  double c1 = 0.0168, c2 = 0.0328, c3 = 0.0621;  // CPU efficiency vs batch and hidden size
};

struct FlexGenCase {
  int s = 512, n = 32;                         // prompt and generated lengths
  int l = 48, h1 = 7168, h2 = 28672, nh = 56;  // OPT-30B: layers, hidden, FFN, heads
  int gbs = 48, nb = 3;                        // GPU batch size, batches per block
  double wg = 0.2, wc = 0.8;                   // weights on GPU / CPU (rest on disk)
  double cg = 0.0, cc = 1.0;                   // KV cache
  double hg = 0.0, hc = 1.0;                   // activations (hidden states)
};

struct FlexGenResult {
  // Per-layer terms (seconds) of prefill (p) and of one decode step (g).
  double ctog_p = 0, gtoc_p = 0, dtoc_p = 0, ctod_p = 0, comp_p = 0, t_pre = 0;
  double ctog_g = 0, gtoc_g = 0, dtoc_g = 0, ctod_g = 0, comp_g = 0, t_gen = 0;
  double total_s = 0;       // T = t_pre·l + t_gen·(n−1)·l
  double tokens_per_s = 0;  // gbs·nb·n / T
  nlohmann::json to_json() const;
};

FlexGenResult flexgen_cost(const FlexGenCase& c, const FlexGenConstants& k = {});

}  // namespace edgellm::hwsim
