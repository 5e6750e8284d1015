#include "hwsim/search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace edgellm::hwsim {

std::vector<int> iteration_exits(const ModelConfig& m, const TuneConfig& t,
                                 std::vector<int> exits) {
  t.validate(m);  // before the division by the window below (a zero window was a SIGFPE)
  if (t.method != Method::Alt) return {m.n_layers};
  if (!exits.empty()) {
    for (int e : exits)
      if (e < t.window || e > m.n_layers)
        fail("[hwsim] exit {} outside [{}, {}] (window {})", e, t.window, m.n_layers, t.window);
    return exits;
  }
  if (t.exit_layer > 0) return {t.exit_layer};
  // PAPER.md §2: T = L/m exits, exit i reads layer ceil((i+1)·L/T).
  const int n_exits = std::max(1, (m.n_layers + t.window - 1) / t.window);
  for (int i = 0; i < n_exits; ++i) exits.push_back(((i + 1) * m.n_layers + n_exits - 1) / n_exits);
  return exits;
}

namespace {

using Clock = std::chrono::steady_clock;

// A block with everything the inner loop needs, merged over identical blocks and exits.
struct FastBlock {
  BlockCoeffs c;
  double weight = 0;  // multiplicity / n_exits
  bool update = false;
};

bool same(const BlockCoeffs& a, const BlockCoeffs& b) {
  return a.phase == b.phase && a.comp_s == b.comp_s && a.weight == b.weight &&
         a.saved_w == b.saved_w && a.saved_r == b.saved_r && a.state_r == b.state_r &&
         a.state_w == b.state_w && a.dram_r == b.dram_r && a.dram_w == b.dram_w;
}

struct Prepared {
  std::vector<Trace> traces;  // per exit
  std::vector<FastBlock> blocks;
  double saved_peak = 0, transient = 0, weights = 0, state = 0;
};

Prepared prepare(const ModelConfig& m, const TuneConfig& t, const std::vector<int>& exits,
                 const Device& dev, int micro_batch, double tile_sram) {
  Prepared p;
  for (int e : exits) {
    TuneConfig te = t;
    te.batch = micro_batch;
    te.exit_layer = t.method == Method::Alt ? e : 0;
    p.traces.push_back(build_trace(m, te));
    const Trace& tr = p.traces.back();
    p.saved_peak = std::max(p.saved_peak, tr.saved_peak);
    p.weights = tr.weights_stored;
    p.state = tr.lora_state_stored;
    for (const auto& b : block_coeffs(tr, dev, tile_sram)) {
      p.transient = std::max(p.transient, b.transient_peak);
      auto it = std::find_if(p.blocks.begin(), p.blocks.end(),
                             [&](const FastBlock& f) { return same(f.c, b); });
      if (it == p.blocks.end()) {
        p.blocks.push_back({b, 0, b.phase == Phase::Update});
        it = p.blocks.end() - 1;
      }
      it->weight += 1.0 / exits.size();
    }
  }
  return p;
}

// Expected iteration time for one placement; negative when a capacity is exceeded. `traffic`
// receives the summed transfer seconds, the tie-breaker among equally fast schedules (a
// compute-bound iteration is indifferent to placement; prefer the one that moves least data).
double fast_time(const Prepared& p, const Device& dev, const Schedule& s, const Workload& wl,
                 double* traffic) {
  const auto& W = s.place.weights;
  const auto& A = s.place.acts;
  const auto& G = s.place.grads;
  const double nb = s.batches_per_block;
  const double groups = static_cast<double>(wl.samples_per_iteration) / (s.micro_batch * nb);
  const double alpha = dev.capacity_fraction;
  const double held = nb * p.saved_peak;
  // Capacity first: it is cheaper than the time and prunes most of the grid.
  const double resident = W[kSram] * p.weights + A[kSram] * held + G[kSram] * p.state;
  if (resident > s.sram_resident_share * alpha * dev.sram_bytes * (1 + 1e-12)) return -1;
  if (W[kSsd] * p.weights + A[kSsd] * held + G[kSsd] * p.state > alpha * dev.ssd_bytes) return -1;
  double dram_home = W[kDram] * p.weights + A[kDram] * held + G[kDram] * p.state + p.transient;
  if (dram_home > alpha * dev.dram_bytes) return -1;
  double staging = 0, total = 0, moved = 0;
  for (const auto& f : p.blocks) {
    const auto& b = f.c;
    const double k = f.update ? 1.0 : nb;
    const double rs = k *
                      (b.weight * (1 - W[kSram]) + b.dram_r + b.saved_r * (1 - A[kSram]) +
                       b.state_r * (1 - G[kSram])) /
                      dev.dram_bw;
    const double wd =
        k * (b.dram_w + b.saved_w * (1 - A[kSram]) + b.state_w * (1 - G[kSram])) / dev.dram_bw;
    const double ssd_in = b.weight * W[kSsd] + k * b.saved_r * A[kSsd] + b.state_r * G[kSsd];
    const double rd = ssd_in / dev.ssd_read_bw;
    const double ws = (k * b.saved_w * A[kSsd] + b.state_w * G[kSsd]) / dev.ssd_write_bw;
    staging = std::max(staging, ssd_in);
    moved += f.weight * (f.update ? 1.0 : groups) * (rs + wd + rd + ws);
    total += f.weight * (f.update ? 1.0 : groups) *
             combine(s.overlap, rs, wd, rd, ws, k * b.comp_s, nullptr);
  }
  if (dram_home + 2 * staging > alpha * dev.dram_bytes * (1 + 1e-12)) return -1;
  *traffic = moved;
  return total;
}

std::vector<int> default_micro_batches(int samples) {
  std::vector<int> v;
  for (int b = 1; b <= samples; b = b < 4 ? b + 1 : b * 2)
    if (samples % b == 0) v.push_back(b);
  return v;
}

SearchResult finish(const ModelConfig& m, const TuneConfig& t, const std::vector<int>& exits,
                    const Device& dev, const Workload& wl, const Schedule& s) {
  SearchResult r;
  r.best = s;
  r.found = true;
  for (int e : exits) {
    TuneConfig te = t;
    te.batch = s.micro_batch;
    te.exit_layer = t.method == Method::Alt ? e : 0;
    Trace tr = build_trace(m, te);
    ExitCost ec{e, evaluate(tr, dev, s, wl)};
    r.found = r.found && ec.cost.feasible;
    r.seconds += ec.cost.seconds / exits.size();
    r.tuning_bytes = std::max(r.tuning_bytes, s.batches_per_block * tr.saved_peak +
                                                  4.0 * t.state_bytes * tr.lora_params_trained);
    r.weights_bytes = tr.weights_stored;
    r.per_exit.push_back(std::move(ec));
  }
  return r;
}

}  // namespace

SearchResult evaluate_schedule(const ModelConfig& m, const TuneConfig& t,
                               const std::vector<int>& exits, const Device& dev, const Workload& wl,
                               const Schedule& s) {
  auto t0 = Clock::now();
  SearchResult r = finish(m, t, iteration_exits(m, t, exits), dev, wl, s);
  r.evaluated = 1;
  r.search_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return r;
}

SearchResult search(const ModelConfig& m, const TuneConfig& t, const std::vector<int>& exits_in,
                    const Device& dev, const Workload& wl, const SearchSpace& space) {
  auto t0 = Clock::now();
  const auto exits = iteration_exits(m, t, exits_in);
  if (wl.samples_per_iteration <= 0)
    fail("[hwsim] workload: samples_per_iteration must be positive, got {}",
         wl.samples_per_iteration);
  if (space.grid <= 0) fail("[hwsim] search: grid must be positive, got {}", space.grid);
  auto mbs = space.micro_batches.empty() ? default_micro_batches(wl.samples_per_iteration)
                                         : space.micro_batches;
  const std::vector<double> shares =
      space.sram_resident ? std::vector<double>{0.0, 0.5} : std::vector<double>{0.0};
  const double alpha = dev.capacity_fraction;
  double best = -1, best_row = -1, best_col = -1, best_moved = 0;
  Schedule best_s;
  long long evaluated = 0;
  for (int gbs : mbs) {
    if (gbs <= 0 || wl.samples_per_iteration % gbs != 0) continue;
    std::vector<int> nbs = space.batches_per_block;
    if (nbs.empty())
      for (int nb = 1; gbs * nb <= wl.samples_per_iteration; ++nb)
        if (wl.samples_per_iteration % (gbs * nb) == 0) nbs.push_back(nb);
    for (double share : shares) {
      const Prepared p = prepare(m, t, exits, dev, gbs, (1 - share) * alpha * dev.sram_bytes);
      for (int nb : nbs) {
        if (nb <= 0 || wl.samples_per_iteration % (gbs * nb) != 0) continue;
        Schedule s;
        s.micro_batch = gbs;
        s.batches_per_block = nb;
        s.overlap = space.overlap;
        s.sram_resident_share = share;
        const double held = nb * p.saved_peak;
        const double totals[3] = {p.weights, held, p.state};
        // Resident class: none when share == 0, else each class in turn.
        for (int cls = share > 0 ? 0 : -1; cls < (share > 0 ? 3 : 0); ++cls) {
          for (int iw = 0; iw <= space.grid; ++iw) {
            for (int ia = 0; ia <= space.grid; ++ia) {
              for (int ig = 0; ig <= space.grid; ++ig) {
                const double ssd[3] = {double(iw) / space.grid, double(ia) / space.grid,
                                       double(ig) / space.grid};
                Fractions* f[3] = {&s.place.weights, &s.place.acts, &s.place.grads};
                for (int c = 0; c < 3; ++c) {
                  double sram = 0;
                  if (c == cls && totals[c] > 0)
                    sram = std::min(1 - ssd[c], share * alpha * dev.sram_bytes / totals[c]);
                  *f[c] = {sram, std::max(0.0, 1 - ssd[c] - sram), ssd[c]};
                }
                ++evaluated;
                double moved = 0;
                const double tt = fast_time(p, dev, s, wl, &moved);
                if (tt < 0) continue;
                const bool tie = best >= 0 && std::abs(tt - best) <= 1e-9 * best;
                if (best < 0 || (tt < best && !tie) || (tie && moved < best_moved)) {
                  if (!tie || tt < best) best = tt;
                  best_s = s, best_moved = moved;
                }
                double& slot = nb == 1 ? best_row : best_col;
                if (slot < 0 || tt < slot) slot = tt;
              }
            }
          }
        }
      }
    }
  }
  SearchResult r;
  if (best >= 0) r = finish(m, t, exits, dev, wl, best_s);
  r.found = best >= 0;
  r.best_row_seconds = best_row;
  r.best_column_seconds = best_col;
  r.evaluated = evaluated;
  r.search_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return r;
}

nlohmann::json schedule_json(const Schedule& s) {
  auto fr = [](const Fractions& f) {
    return nlohmann::json{{"sram", f[kSram]}, {"dram", f[kDram]}, {"ssd", f[kSsd]}};
  };
  return {{"order", s.order()},
          {"micro_batch", s.micro_batch},
          {"batches_per_block", s.batches_per_block},
          {"overlap", overlap_name(s.overlap)},
          {"sram_resident_share", s.sram_resident_share},
          {"placement",
           {{"weights", fr(s.place.weights)},
            {"activations", fr(s.place.acts)},
            {"gradients", fr(s.place.grads)}}}};
}

nlohmann::json SearchResult::to_json(bool with_blocks) const {
  nlohmann::json j;
  j["found"] = found;
  j["iteration_seconds"] = seconds;
  j["schedule"] = schedule_json(best);
  j["best_row_by_row_seconds"] = best_row_seconds;
  j["best_column_by_column_seconds"] = best_column_seconds;
  j["tuning_memory_bytes"] = tuning_bytes;
  j["weights_bytes"] = weights_bytes;
  j["schedules_evaluated"] = evaluated;
  j["search_ms"] = search_ms;
  auto& pe = j["per_exit"] = nlohmann::json::array();
  for (const auto& e : per_exit) {
    nlohmann::json x = e.cost.to_json();
    x["exit"] = e.exit;
    if (!with_blocks) x.erase("blocks");
    // Why: how much of the iteration each term binds.
    nlohmann::json why = nlohmann::json::object();
    for (const auto& b : e.cost.blocks) {
      double cur = why.value(b.binding, 0.0);
      why[b.binding] = cur + b.time * b.repeat;
    }
    x["seconds_by_binding_term"] = why;
    pe.push_back(std::move(x));
  }
  return j;
}

}  // namespace edgellm::hwsim
