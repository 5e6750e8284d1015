#include "hwsim/cost_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace edgellm::hwsim {

const char* overlap_name(Overlap o) {
  switch (o) {
    case Overlap::Paper:
      return "paper";
    case Overlap::FlexGen:
      return "flexgen";
    case Overlap::None:
      return "none";
  }
  return "?";
}

Overlap parse_overlap(const std::string& s) {
  if (s == "paper") return Overlap::Paper;
  if (s == "flexgen") return Overlap::FlexGen;
  if (s == "none") return Overlap::None;
  fail("[hwsim] overlap model '{}' unknown (paper, flexgen, none)", s);
}

void Placement::validate() const {
  auto check = [](const Fractions& f, const char* what) {
    double sum = 0;
    for (double x : f) {
      if (!(x >= 0 && x <= 1)) fail("[hwsim] placement: {} fraction {} outside [0, 1]", what, x);
      sum += x;
    }
    if (std::abs(sum - 1) > 1e-6)
      fail("[hwsim] placement: {} fractions (sram {}, dram {}, ssd {}) sum to {}, not 1", what,
           f[0], f[1], f[2], sum);
  };
  check(weights, "weights");
  check(acts, "activations");
  check(grads, "gradients");
}

double combine(Overlap o, double r_to_sram, double w_to_dram, double r_to_dram, double w_to_ssd,
               double comp, const char** binding) {
  struct Term {
    const char* name;
    double v;
  };
  const Term t[] = {{"r_to_sram", r_to_sram},
                    {"w_to_dram", w_to_dram},
                    {"r_to_dram", r_to_dram},
                    {"w_to_ssd", w_to_ssd},
                    {"compute", comp}};
  auto largest = [](const Term* b, const Term* e) {
    return std::max_element(b, e, [](auto& x, auto& y) { return x.v < y.v; });
  };
  if (o == Overlap::FlexGen) {
    const Term chains[] = {{"read_chain", r_to_sram + r_to_dram},
                           {"write_chain", w_to_dram + w_to_ssd},
                           {"compute", comp}};
    const Term* best = largest(chains, chains + 3);
    if (binding) *binding = best->name;
    return best->v;
  }
  const Term* best = largest(t, t + 5);
  if (binding) *binding = best->name;
  // No overlap: the terms add up; the binding term is still the largest of them.
  if (o == Overlap::None) return r_to_sram + w_to_dram + r_to_dram + w_to_ssd + comp;
  return best->v;
}

double op_cycles(const Op& op, const Device& dev) {
  if (op.kind == OpKind::Elementwise)
    return static_cast<double>(op.elements) / static_cast<double>(dev.vector_lanes);
  const auto r = systolic_gemm(dev.array_rows, dev.array_cols, dev.dataflow, {op.m, op.n, op.k});
  const double rate =
      op.precision_scaled ? mac_rate(op.weight_bits, dev.base_bits, dev.granularity_bits) : 1.0;
  return static_cast<double>(op.count) * static_cast<double>(r.total_cycles + 1) / rate;
}

double gemm_dram_traffic(const Op& op, const Device& dev, double sram_bytes) {
  const double M = op.m, N = op.n, K = op.k, ea = op.a_elem_bytes, eb = op.b_elem_bytes;
  const double ec = op.a_elem_bytes;
  const double tk = std::min<double>(K, dev.array_rows);
  // Candidate tile edges: array multiples doubling up to the full dimension.
  auto edges = [](double full, double unit) {
    std::vector<double> v;
    for (double t = std::min(unit, full); t < full; t *= 2) v.push_back(t);
    v.push_back(full);
    return v;
  };
  double best = -1;
  double fallback = -1;
  for (double tm : edges(M, dev.array_rows)) {
    for (double tn : edges(N, dev.array_cols)) {
      const double traffic =
          ea * M * K * std::ceil(N / tn) + eb * K * N * std::ceil(M / tm) + ec * M * N;
      const double footprint = 2 * (tm * tk * ea + tk * tn * eb) + tm * tn * 4;
      if (fallback < 0) fallback = traffic;  // smallest tiles: the floor when nothing fits
      if (footprint <= sram_bytes && (best < 0 || traffic < best)) best = traffic;
    }
  }
  return static_cast<double>(op.count) * (best < 0 ? fallback : best);
}

std::vector<BlockCoeffs> block_coeffs(const Trace& tr, const Device& dev, double tile_sram_bytes) {
  std::vector<BlockCoeffs> out;
  std::map<std::pair<int, int>, size_t> index;
  const double clock = dev.clock_hz;
  // Tensors that fit in half of the tile SRAM stay on chip between producer and consumer.
  const double on_chip = 0.5 * tile_sram_bytes;
  for (const auto& op : tr.ops) {
    auto key = std::make_pair(op.layer, static_cast<int>(op.phase));
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, out.size()).first;
      BlockCoeffs b;
      b.layer = op.layer;
      b.phase = op.phase;
      const std::string where = op.layer < 0                  ? "embed"
                                : op.layer == tr.n_layers     ? "head"
                                : op.layer == tr.n_layers + 1 ? "opt"
                                                              : fmt::format("L{}", op.layer);
      b.name = where + "." + phase_name(op.phase);
      out.push_back(b);
    }
    BlockCoeffs& b = out[it->second];
    b.comp_s += op_cycles(op, dev) / clock;
    b.weight += op.weight_read;
    b.saved_w += op.saved_write;
    b.saved_r += op.saved_read;
    b.state_r += op.state_read;
    b.state_w += op.state_write;
    const double tr_r = op.transient_read > on_chip ? op.transient_read : 0;
    const double tr_w = op.transient_write > on_chip ? op.transient_write : 0;
    b.dram_r += tr_r;
    b.dram_w += tr_w;
    b.transient_peak = std::max(b.transient_peak, op.transient_read + op.transient_write);
    if (op.kind == OpKind::Gemm) {
      b.macs += static_cast<double>(op.macs());
      // Re-fetches beyond one pass over each operand always come from DRAM.
      const double one_pass = static_cast<double>(op.count) *
                              (op.a_elem_bytes * op.m * op.k + op.b_elem_bytes * op.k * op.n +
                               op.a_elem_bytes * op.m * op.n);
      b.dram_r += std::max(0.0, gemm_dram_traffic(op, dev, tile_sram_bytes) - one_pass);
    }
  }
  return out;
}

IterationCost evaluate(const Trace& tr, const std::vector<BlockCoeffs>& coeffs, const Device& dev,
                       const Schedule& sched, const Workload& wl) {
  sched.place.validate();
  const int gbs = sched.micro_batch, nb = sched.batches_per_block;
  if (gbs <= 0 || nb <= 0)
    fail("[hwsim] schedule: micro_batch {} and batches_per_block {} must be positive", gbs, nb);
  if (wl.samples_per_iteration % (gbs * nb) != 0)
    fail(
        "[hwsim] schedule: micro_batch {} x batches_per_block {} does not divide the {} samples "
        "of an iteration",
        gbs, nb, wl.samples_per_iteration);
  if (!(sched.sram_resident_share >= 0 && sched.sram_resident_share <= 1))
    fail("[hwsim] schedule: sram_resident_share {} outside [0, 1]", sched.sram_resident_share);
  const auto& W = sched.place.weights;
  const auto& A = sched.place.acts;
  const auto& G = sched.place.grads;
  IterationCost ic;
  ic.groups = static_cast<double>(wl.samples_per_iteration) / (gbs * nb);
  const double n = nb;
  double staging = 0, transient = 0;
  for (const auto& b : coeffs) {
    const bool upd = b.phase == Phase::Update;
    const double k = upd ? 1.0 : n;  // the update runs once per iteration, not per micro-batch
    BlockCost c;
    c.name = b.name;
    c.repeat = upd ? 1.0 : ic.groups;
    c.r_to_sram = k *
                  (b.weight * (1 - W[kSram]) + b.dram_r + b.saved_r * (1 - A[kSram]) +
                   b.state_r * (1 - G[kSram])) /
                  dev.dram_bw;
    c.w_to_dram =
        k * (b.dram_w + b.saved_w * (1 - A[kSram]) + b.state_w * (1 - G[kSram])) / dev.dram_bw;
    // Weights and LoRA state come up from SSD once per block group and are reused by its nb
    // micro-batches; saved activations are per micro-batch.
    const double ssd_in = b.weight * W[kSsd] + k * b.saved_r * A[kSsd] + b.state_r * G[kSsd];
    c.r_to_dram = ssd_in / dev.ssd_read_bw;
    c.w_to_ssd = (k * b.saved_w * A[kSsd] + b.state_w * G[kSsd]) / dev.ssd_write_bw;
    c.comp = k * b.comp_s;
    c.time = combine(sched.overlap, c.r_to_sram, c.w_to_dram, c.r_to_dram, c.w_to_ssd, c.comp,
                     &c.binding);
    ic.seconds += c.time * c.repeat;
    ic.blocks.push_back(std::move(c));
    staging = std::max(staging, ssd_in);
    transient = std::max(transient, b.transient_peak);
  }
  // Capacities. Saved activations of all nb micro-batches of a block group are alive at once.
  ic.saved_held = n * tr.saved_peak;
  const double Wt = tr.weights_stored, At = ic.saved_held, Gt = tr.lora_state_stored;
  const double alpha = dev.capacity_fraction;
  auto& m = ic.mem;
  m.sram_cap = alpha * dev.sram_bytes;
  m.dram_cap = alpha * dev.dram_bytes;
  m.ssd_cap = alpha * dev.ssd_bytes;
  const double resident = W[kSram] * Wt + A[kSram] * At + G[kSram] * Gt;
  m.sram = resident + (1 - sched.sram_resident_share) * m.sram_cap;
  // DRAM: resident data, the largest op working set and a double buffer for data coming up from
  // SSD (FlexGen's "working" term).
  m.dram = W[kDram] * Wt + A[kDram] * At + G[kDram] * Gt + transient + 2 * staging;
  m.ssd = W[kSsd] * Wt + A[kSsd] * At + G[kSsd] * Gt;
  ic.feasible = true;
  auto reject = [&](const char* level, double use, double cap) {
    if (ic.feasible && use > cap * (1 + 1e-12)) {
      ic.feasible = false;
      ic.infeasible_reason =
          fmt::format("{} needs {:.3f} GB but {:.3f} GB is usable", level, use / 1e9, cap / 1e9);
    }
  };
  reject("SRAM (resident tensors)", resident, sched.sram_resident_share * m.sram_cap);
  reject("DRAM", m.dram, m.dram_cap);
  reject("SSD", m.ssd, m.ssd_cap);
  return ic;
}

IterationCost evaluate(const Trace& tr, const Device& dev, const Schedule& sched,
                       const Workload& wl) {
  const double tile = (1 - sched.sram_resident_share) * dev.capacity_fraction * dev.sram_bytes;
  return evaluate(tr, block_coeffs(tr, dev, tile), dev, sched, wl);
}

nlohmann::json IterationCost::to_json() const {
  nlohmann::json j;
  j["feasible"] = feasible;
  if (!feasible) j["infeasible_reason"] = infeasible_reason;
  j["seconds"] = seconds;
  j["groups"] = groups;
  j["saved_activation_bytes_held"] = saved_held;
  j["memory"] = {{"sram_bytes", mem.sram}, {"sram_usable_bytes", mem.sram_cap},
                 {"dram_bytes", mem.dram}, {"dram_usable_bytes", mem.dram_cap},
                 {"ssd_bytes", mem.ssd},   {"ssd_usable_bytes", mem.ssd_cap}};
  auto& arr = j["blocks"] = nlohmann::json::array();
  for (const auto& b : blocks)
    arr.push_back({{"block", b.name},
                   {"repeat", b.repeat},
                   {"seconds", b.time},
                   {"binding", b.binding},
                   {"r_to_sram_s", b.r_to_sram},
                   {"w_to_dram_s", b.w_to_dram},
                   {"r_to_dram_s", b.r_to_dram},
                   {"w_to_ssd_s", b.w_to_ssd},
                   {"compute_s", b.comp}});
  return j;
}

}  // namespace edgellm::hwsim
