// FlexGen's own check value (HWSIM.md §3): OPT-30B, T4 constants → ≈645.8 s, ≈7.14 tok/s.
#include "hwsim/flexgen.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace edgellm::hwsim {
namespace {

TEST(FlexGen, ReproducesOpt30bCheckValueWithinOnePercent) {
  const FlexGenResult r = flexgen_cost(FlexGenCase{});
  EXPECT_NEAR(r.total_s, 645.8, 0.01 * 645.8);
  EXPECT_NEAR(r.tokens_per_s, 7.14, 0.01 * 7.14);
  // Prefill is compute-bound and decode is bound by CPU attention in this policy.
  EXPECT_DOUBLE_EQ(r.t_pre, r.comp_p);
  EXPECT_DOUBLE_EQ(r.t_gen, r.ctog_g + r.comp_g);
}

TEST(FlexGen, MoreWeightsOnDiskIsSlower) {
  FlexGenCase c;
  c.wg = 0.0;
  c.wc = 0.5;  // half the weights on disk
  EXPECT_GT(flexgen_cost(c).total_s, flexgen_cost(FlexGenCase{}).total_s);
}

TEST(FlexGen, RejectsBadFractions) {
  FlexGenCase c;
  c.wg = 0.7;
  c.wc = 0.7;
  EXPECT_THROW(flexgen_cost(c), Error);
}

}  // namespace
}  // namespace edgellm::hwsim
