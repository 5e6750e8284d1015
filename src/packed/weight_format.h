// How one compressed linear weight W[rows, cols] (rows = output channels, cols = inputs) is
// stored: a descriptor of independent choices, not a closed enum of combinations, so that every
// (bits, group, scheme, sparsity) a policy picks has exactly one layout and one decoder.
//
// Quantization (bits 2..8): each row is cut into groups of `group` consecutive input columns
// (group 0 = the whole row, i.e. one scale per output channel as in LLM-QAT); the last group of
// a row keeps whatever is left when cols is not a multiple of `group`. Every group has an fp16
// scale s (and, asym only, a uint8 zero point z); a value is stored as an unsigned b-bit code c:
//   sym  (LLM-QAT):  ŵ = s·(c − (2^(b−1)−1)),  c ∈ [0, 2^b−2]   levels ±(2^(b−1)−1), 0 exact
//   asym (GPTQ):     ŵ = s·(c − z),            c ∈ [0, 2^b−1]   grid spans [min(w,0), max(w,0)]
// bits 16 means "not quantized": the code is the fp16 bit pattern of the value, no scales.
// Scales are rounded UP to fp16 when fitted, so the grid always covers the group's range and
// round-to-nearest errs by at most s/2 per value.
//
// Sparsity (which weights are stored):
//   None     every value has a code (pruned weights, if any, hold the code of 0).
//   Bitmask  a bit per weight (1 = kept) plus the codes of the kept weights only. Worth it when
//            (1−p)·b + 1 < b, e.g. 8-bit at p > 1/8 or 4-bit at p > 1/4.
//   NM       N:M semi-structure: at most N kept in every M consecutive columns. Each M-group
//            stores exactly N slots: a ceil(log2 M)-bit position and a code each (2:4 at 4 bits:
//            3 bits per weight). A last partial group of r < M columns also has N slots; slots
//            beyond its r columns hold position 0 and the code of 0.
// Why: N:M keeps a fixed stride per row (cheap to index, the shape hardware accelerates), the
// bitmask handles any unstructured mask; the packer stores a sparse format only when it is
// smaller than the dense one (packed_weight.h), and records what it chose here.
//
// Byte layout of each part (all little-endian, LSB-first bit packing):
//   codes    None:    row r at byte r·ceil(cols·b/8); code of column j at bit j·b of its row.
//                     Groups of 32/64/128 therefore start on byte boundaries for every b.
//            Bitmask: one bit stream over the whole matrix: the kept codes of row 0, then row 1,
//                     ... (no per-row padding, so its size depends only on the total kept count
//                     and a policy can predict bytes exactly); row starts are derived from the
//                     mask at load (PackedWeight::row_bit), not stored.
//            NM:      row r at byte r·ceil(ceil(cols/M)·N·b/8); slot k at bit k·b.
//   scales   fp16 [rows, n_groups]        (absent for bits 16)
//   zeros    uint8 [rows, n_groups]       (asym only)
//   index    Bitmask: [rows, ceil(cols/8)] bytes, column j = bit j%8 of byte j/8 of its row.
//            NM:      row r at byte r·ceil(ceil(cols/M)·N·ceil(log2 M)/8); slot k at bit k·ib.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"  // QuantScheme, shared with the per-linear LayerConfig record

namespace edgellm {

enum class SparseFormat : uint8_t { None, Bitmask, NM };

struct WeightFormat {
  int bits = 4;   // 2..8, or 16 = fp16 values (no quantization)
  int group = 0;  // input columns per scale; 0 = one per row
  QuantScheme scheme = QuantScheme::Sym;
  SparseFormat sparse = SparseFormat::None;
  int nm_n = 0, nm_m = 0;  // NM only: N kept of every M (1 <= N < M <= 16)

  bool quantized() const { return bits < 16; }
  // Columns per group in a row of `cols` (group 0: the whole row).
  int64_t group_cols(int64_t cols) const { return group > 0 ? group : cols; }
  int64_t n_groups(int64_t cols) const;
  // Bits of an N:M position index: ceil(log2 M).
  int index_bits() const;
  // The code that decodes to exactly 0 for a group with zero point z (asym) — pruned slots.
  uint32_t zero_code(uint8_t z) const;
  uint32_t max_code() const { return bits == 16 ? 0xffffu : (1u << bits) - 1; }

  // Throws Error "[format] <what>: ..." naming the offending field and value.
  void validate(const std::string& what) const;
  // Canonical text form, e.g. "b4-sym-g128", "b3-asym-row-nm2:4", "b16-bitmask"; parse() reads it
  // back (and is what metadata and the command line use).
  std::string name() const;
  static WeightFormat parse(const std::string& s, const std::string& what);

  bool operator==(const WeightFormat&) const = default;
};

const char* scheme_name(QuantScheme s);
const char* sparse_format_name(SparseFormat s);

}  // namespace edgellm
