// Reproduction of the Edge-LLM paper's hardware results (PAPER.md §4, HWSIM.md §5): speedups of
// adaptive layer tuning (ALT), ALT + 50% pruning and LUC 4-/5-bit + ALT over vanilla LoRA at
// 8 bit on a LLaMA-7B-shaped trace, the memory per iteration, and a sweep over SRAM size, DRAM
// bandwidth and bit-width. Every number comes from the trace, the array model and the search.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "hwsim/search.h"

namespace edgellm::hwsim {

struct PaperOptions {
  int seq = 512;              // S: tokens per sequence
  int samples = 16;           // sequences per optimizer step (paper code: batch 1 × accum 16)
  int window = 8;             // m = L/T with T = 4 exits (LLaMA-7B: exits after 8, 16, 24, 32)
  double sparsity = 0.5;      // the paper's 50% unstructured sparsity
  int luc_extra_layers = -1;  // layers given one extra bit by LUC; -1: round(0.1·L) → x.1 bits
  Overlap overlap = Overlap::Paper;
  int grid = 20;  // placement grid of the search
};

// LUC bit allocation without measured sensitivities: `bits` everywhere plus one bit on `extra`
// layers taken alternately from both ends (first and last layers are the most sensitive ones in
// the paper's Fig. 2), so the average is bits + extra/L (4.1 for 4-bit on LLaMA-7B).
std::vector<int> luc_bits(int n_layers, int bits, int extra);

struct PaperCase {
  std::string key;    // alt, alt_prune, luc4_alt, luc5_alt (and "lora" for the baseline)
  std::string label;  // human-readable
  TuneConfig tune;
  SearchResult result;
  double speedup = 0;  // lora seconds / this seconds
  double paper = 0;    // the paper's speedup (0 for the baseline)
};

struct PaperReport {
  std::string device;
  PaperOptions opts;
  std::vector<PaperCase> cases;  // lora first
  // Memory per iteration at micro-batch 1: saved activations + trained LoRA state (params,
  // grads, AdamW moments). Frozen weights are excluded: the paper's 0.25× is the same for
  // 3/4/5-bit models, so it cannot include them. With weights reported alongside.
  double lora_tuning_bytes = 0, alt_tuning_bytes = 0;
  double lora_total_bytes = 0, edge_total_bytes = 0;  // + frozen weights (LoRA 8-bit, LUC4+ALT)
  double memory_reduction = 0;
  double paper_memory_reduction = 4.0;
  double search_ms = 0;
  nlohmann::json to_json() const;
  std::string table() const;
};

PaperReport reproduce_paper(const ModelConfig& m, const Device& dev, const PaperOptions& o);

struct SweepPoint {
  std::string axis;         // "sram_bytes" | "dram_GBps" | "bits"
  double x = 0;             // value on that axis
  double lora_seconds = 0;  // vanilla LoRA 8-bit
  double edge_seconds = 0;  // LUC (bits, default 4) + ALT
  double speedup = 0;
  std::string lora_binding, edge_binding;  // the term binding most of the iteration
};

std::vector<SweepPoint> sweep(const ModelConfig& m, const Device& dev, const PaperOptions& o);
std::string sweep_table(const std::vector<SweepPoint>& pts);
// Four panels (iteration time vs SRAM, vs DRAM bandwidth; speedup vs bits, vs array size),
// plain SVG.
std::string sweep_svg(const std::vector<SweepPoint>& pts, const std::string& device);

}  // namespace edgellm::hwsim
