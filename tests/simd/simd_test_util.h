// Shared by the per-target SIMD tests: run a check once on every target this CPU can execute.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "simd/target.h"

namespace edgellm::testing {

// Runs body once per target the machine can execute, then restores the best one.
template <typename F>
void for_each_target(F&& body) {
  const auto targets = simd::available_targets();
  ASSERT_FALSE(targets.empty());
  for (const auto& t : targets) {
    simd::set_target(t);
    ASSERT_EQ(simd::active_target(), t);
    SCOPED_TRACE("target " + t);
    body();
  }
  simd::set_target("best");
}

}  // namespace edgellm::testing
