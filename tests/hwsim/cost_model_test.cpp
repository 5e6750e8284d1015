#include "hwsim/cost_model.h"

#include <gtest/gtest.h>

#include "hwsim/search.h"
#include "util/error.h"

namespace edgellm::hwsim {
namespace {

TuneConfig lora8(int seq = 256) {
  TuneConfig t;
  t.seq = seq;
  return t;
}

TuneConfig alt4(int seq = 256) {
  TuneConfig t;
  t.method = Method::Alt;
  t.window = 8;
  t.seq = seq;
  t.bits.assign(32, 4);
  t.sparsity.assign(32, 0.5);
  return t;
}

TEST(CostModel, OverlapModels) {
  const char* why = nullptr;
  EXPECT_DOUBLE_EQ(combine(Overlap::Paper, 1, 2, 3, 4, 5, &why), 5);
  EXPECT_STREQ(why, "compute");
  EXPECT_DOUBLE_EQ(combine(Overlap::Paper, 1, 2, 6, 4, 5, &why), 6);
  EXPECT_STREQ(why, "r_to_dram");
  EXPECT_DOUBLE_EQ(combine(Overlap::FlexGen, 1, 2, 3, 4, 5, &why), 6);  // w_to_dram + w_to_ssd
  EXPECT_STREQ(why, "write_chain");
  EXPECT_DOUBLE_EQ(combine(Overlap::None, 1, 2, 3, 4, 5, &why), 15);
}

TEST(CostModel, PlacementFractionsMustSumToOne) {
  Placement p;
  p.acts = {0, 0.5, 0.4};
  try {
    p.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("activations"), std::string::npos) << e.what();
  }
  p.acts = {0, 1.2, -0.2};
  EXPECT_THROW(p.validate(), Error);
}

TEST(CostModel, PlacementExceedingACapacityIsRejected) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Device dev = Device::load("edge-accel");
  const Trace tr = build_trace(m, lora8());
  Schedule s;  // everything in DRAM: 6.7 GB of 8-bit weights + activations > 0.8 · 8 GiB
  IterationCost c = evaluate(tr, dev, s, Workload{});
  EXPECT_FALSE(c.feasible);
  EXPECT_NE(c.infeasible_reason.find("DRAM"), std::string::npos) << c.infeasible_reason;
  s.place.weights = {0, 0.5, 0.5};  // half the weights on SSD fits
  c = evaluate(tr, dev, s, Workload{});
  EXPECT_TRUE(c.feasible) << c.infeasible_reason;
  Device tiny = dev;
  tiny.ssd_bytes = 1e9;  // ... unless the SSD is too small
  c = evaluate(tr, tiny, s, Workload{});
  EXPECT_FALSE(c.feasible);
  EXPECT_NE(c.infeasible_reason.find("SSD"), std::string::npos) << c.infeasible_reason;
  s.place.weights = {0.01, 0.49, 0.5};  // resident SRAM without SRAM set aside for it
  c = evaluate(tr, dev, s, Workload{});
  EXPECT_FALSE(c.feasible);
  EXPECT_NE(c.infeasible_reason.find("SRAM"), std::string::npos) << c.infeasible_reason;
}

TEST(CostModel, ScheduleMustDivideTheIteration) {
  const ModelConfig m = ModelConfig::preset("stories260K");
  const Trace tr = build_trace(m, TuneConfig{});
  Schedule s;
  s.micro_batch = 3;
  EXPECT_THROW(evaluate(tr, Device::load("tx2"), s, Workload{}), Error);
}

TEST(CostModel, GemmTrafficNeverGrowsWithSram) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Trace tr = build_trace(m, lora8(512));
  const Device dev = Device::load("edge-accel");
  for (const auto& op : tr.ops) {
    if (op.kind != OpKind::Gemm) continue;
    double prev = -1;
    for (double kb : {16.0, 64.0, 256.0, 1024.0, 4096.0, 65536.0, 1048576.0}) {
      const double t = gemm_dram_traffic(op, dev, kb * 1024);
      if (prev >= 0) {
        EXPECT_LE(t, prev) << op.name << " at " << kb << " KB";
      }
      prev = t;
    }
    // With unbounded SRAM each operand crosses once.
    const double once = op.count * (op.a_elem_bytes * op.m * op.k + op.b_elem_bytes * op.k * op.n +
                                    op.a_elem_bytes * op.m * op.n);
    EXPECT_NEAR(prev, once, 1e-6 * once) << op.name;
  }
}

// Invariant: more SRAM, more DRAM/SSD bandwidth or more DRAM never increases the best time.
TEST(CostModel, MoreSramOrBandwidthNeverSlower) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Device base = Device::load("edge-accel");
  SearchSpace sp;
  sp.grid = 10;
  Workload wl;
  wl.samples_per_iteration = 4;
  for (const TuneConfig& t : {lora8(), alt4()}) {
    auto best = [&](const Device& d) {
      SearchResult r = search(m, t, {}, d, wl, sp);
      EXPECT_TRUE(r.found);
      return r.seconds;
    };
    double prev = -1;
    for (double kb : {64.0, 256.0, 1024.0, 4096.0, 16384.0}) {
      Device d = base;
      d.sram_bytes = kb * 1024;
      const double s = best(d);
      if (prev >= 0) {
        EXPECT_LE(s, prev * (1 + 1e-12)) << "SRAM " << kb << " KB";
      }
      prev = s;
    }
    prev = -1;
    for (double gbps : {5.0, 15.0, 59.7, 200.0}) {
      Device d = base;
      d.dram_bw = gbps * 1e9;
      const double s = best(d);
      if (prev >= 0) {
        EXPECT_LE(s, prev * (1 + 1e-12)) << "DRAM " << gbps << " GB/s";
      }
      prev = s;
    }
    prev = -1;
    for (double gbps : {0.1, 0.5, 2.0, 8.0}) {
      Device d = base;
      d.ssd_read_bw = d.ssd_write_bw = gbps * 1e9;
      const double s = best(d);
      if (prev >= 0) {
        EXPECT_LE(s, prev * (1 + 1e-12)) << "SSD " << gbps << " GB/s";
      }
      prev = s;
    }
    prev = -1;
    for (double gb : {8.0, 12.0, 16.0}) {
      Device d = base;
      d.dram_bytes = gb * (1ull << 30);
      const double s = best(d);
      if (prev >= 0) {
        EXPECT_LE(s, prev * (1 + 1e-12)) << "DRAM " << gb << " GB";
      }
      prev = s;
    }
  }
}

TEST(CostModel, SlowStorageMakesVanillaLoraSsdBound) {
  // 8-bit LLaMA-7B does not fit 8 GB next to its activations: part of it lives on SSD, and with
  // eMMC-class storage the SSD read is the binding term.
  const ModelConfig m = ModelConfig::preset("llama-7b");
  Device d = Device::load("edge-accel");
  d.ssd_read_bw = d.ssd_write_bw = 0.2e9;
  SearchSpace sp;
  sp.grid = 10;
  SearchResult r = search(m, lora8(), {}, d, Workload{}, sp);
  ASSERT_TRUE(r.found);
  double ssd = 0, total = 0;
  for (const auto& b : r.per_exit[0].cost.blocks) {
    total += b.time * b.repeat;
    if (std::string(b.binding) == "r_to_dram") ssd += b.time * b.repeat;
  }
  EXPECT_GT(ssd, 0.5 * total);
  EXPECT_GT(r.best.place.weights[kSsd], 0);
}

TEST(CostModel, OverlapIsNeverSlowerThanNoOverlap) {
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Device d = Device::load("edge-accel");
  SearchSpace sp;
  sp.grid = 10;
  Workload wl;
  wl.samples_per_iteration = 4;
  sp.overlap = Overlap::Paper;
  const double paper = search(m, alt4(), {}, d, wl, sp).seconds;
  sp.overlap = Overlap::FlexGen;
  const double flexgen = search(m, alt4(), {}, d, wl, sp).seconds;
  sp.overlap = Overlap::None;
  const double none = search(m, alt4(), {}, d, wl, sp).seconds;
  EXPECT_LE(paper, flexgen);
  EXPECT_LE(flexgen, none);
}

}  // namespace
}  // namespace edgellm::hwsim
