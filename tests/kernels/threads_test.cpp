// parallel_ranges (kernels/threads.h), the decode GEMVs' pool: every index once, in contiguous
// ranges, the caller taking the first; serial inside OpenMP regions; correct across thread-count
// changes and after the workers went to sleep.
#include "kernels/threads.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace edgellm;

namespace {

struct Restore {
  int n = num_threads();
  ~Restore() { set_num_threads(n); }
};

// Runs parallel_ranges over n and checks the split; returns the number of ranges.
int check_split(int64_t n, int threads) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::pair<int64_t, int64_t> caller_range{-1, -1};
  const auto caller = std::this_thread::get_id();
  parallel_ranges(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    std::lock_guard<std::mutex> lk(mu);
    ranges.emplace_back(b, e);
    if (std::this_thread::get_id() == caller) caller_range = {b, e};
  });
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "i=" << i;
  for (const auto& [b, e] : ranges) EXPECT_LT(b, e) << "empty ranges are not run";
  if (n >= threads) {  // (with fewer indices than threads the first ranges are the empty ones)
    EXPECT_EQ(caller_range.first, 0) << "the caller takes the first range";
  }
  return static_cast<int>(ranges.size());
}

}  // namespace

TEST(ParallelRanges, EveryIndexOnceInOneRangePerThread) {
  Restore restore;
  for (int t : {1, 2, 3, 4}) {
    set_num_threads(t);
    for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
      const int ranges = check_split(n, t);
      EXPECT_EQ(ranges, n < 2 ? std::min<int64_t>(n, 1) : std::min<int64_t>(n, t))
          << "threads " << t << " n " << n;
    }
    if (t > 1) {
      EXPECT_EQ(range_pool_workers(), t - 1);
    }
  }
}

TEST(ParallelRanges, ManyShortJobsAndJobsAfterTheWorkersSlept) {
  Restore restore;
  set_num_threads(2);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 20000; ++rep) {
    parallel_ranges(64, [&](int64_t b, int64_t e) {
      int64_t s = 0;
      for (int64_t i = b; i < e; ++i) s += i;
      sum.fetch_add(s);
    });
    // Now and then a gap longer than any poll: the next job must wake sleeping workers.
    if (rep % 2000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  EXPECT_EQ(sum.load(), 20000 * (63 * 64 / 2));
}

TEST(ParallelRanges, SerialInsideAnOpenMpRegion) {
  Restore restore;
  set_num_threads(2);
  std::atomic<int> calls{0}, whole{0};
#pragma omp parallel num_threads(2)
  {
    parallel_ranges(100, [&](int64_t b, int64_t e) {
      calls.fetch_add(1);
      if (b == 0 && e == 100) whole.fetch_add(1);
    });
  }
  EXPECT_EQ(calls.load(), whole.load()) << "each region thread ran [0, 100) itself";
  EXPECT_GE(calls.load(), 1);
}
