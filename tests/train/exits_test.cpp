// Exit placement and the per-step exit schedule of adaptive layer tuning (train/exits.h).
#include "train/exits.h"

#include <gtest/gtest.h>

#include <vector>

#include "util/error.h"

namespace edgellm {
namespace {

TEST(Exits, DepthsAreCeilOfEvenSplits) {
  EXPECT_EQ(exit_depths(12, 4), (std::vector<int>{3, 6, 9, 12}));
  EXPECT_EQ(exit_depths(5, 4), (std::vector<int>{2, 3, 4, 5}));  // ceil(5/4), ceil(10/4), ...
  EXPECT_EQ(exit_depths(30, 4), (std::vector<int>{8, 15, 23, 30}));
  EXPECT_EQ(exit_depths(7, 1), (std::vector<int>{7}));
  EXPECT_EQ(exit_window(30, 4), 8);
  EXPECT_EQ(exit_window(12, 4), 3);
  EXPECT_THROW(exit_depths(3, 4), Error);
  EXPECT_THROW(exit_depths(3, 0), Error);
}

TEST(Exits, ParsedLayersAreValidated) {
  EXPECT_EQ(parse_exit_depths("3,6,9,12", 12), (std::vector<int>{3, 6, 9, 12}));
  EXPECT_THROW(parse_exit_depths("3,3", 12), Error);
  EXPECT_THROW(parse_exit_depths("0,3", 12), Error);
  EXPECT_THROW(parse_exit_depths("3,13", 12), Error);
  EXPECT_THROW(parse_exit_depths("3,x", 12), Error);
  EXPECT_THROW(parse_exit_depths("3,", 12), Error);
  EXPECT_THROW(parse_exit_depths("", 12), Error);
}

TEST(Exits, SchedulesPickAsSpecified) {
  ExitPicker p;
  p.depths = {2, 4, 6, 8};
  p.seed = 11;
  p.total_steps = 400;
  p.schedule = ExitSchedule::RoundRobin;
  for (int s = 0; s < 9; ++s) EXPECT_EQ(p.pick(s), s % 4);

  // Random: every exit about a quarter of 4000 draws; the same (seed, step) the same exit.
  p.schedule = ExitSchedule::Random;
  p.total_steps = 4000;
  std::vector<int> n(4, 0);
  for (int s = 0; s < 4000; ++s) ++n[p.pick(s)];
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(n[i], 1000, 150) << i;
  ExitPicker q = p;
  for (int s = 0; s < 50; ++s) EXPECT_EQ(q.pick(s), p.pick(s));
  q.seed = 12;
  int same = 0;
  for (int s = 0; s < 200; ++s) same += q.pick(s) == p.pick(s);
  EXPECT_LT(same, 100);  // another seed, another sequence (expected 50)

  // Curriculum: only the first exit in the first quarter; all four used in the last quarter.
  p.schedule = ExitSchedule::Curriculum;
  std::vector<int> last(4, 0);
  for (int s = 0; s < 4000; ++s) {
    const int e = p.pick(s);
    EXPECT_LT(e, 1 + s * 4 / 4000) << s;
    if (s >= 3000) ++last[e];
  }
  for (int i = 0; i < 4; ++i) EXPECT_GT(last[i], 150) << i;

  // Weighted by depth 2:4:6:8 (default) and by explicit weights with a zero.
  p.schedule = ExitSchedule::Weighted;
  std::fill(n.begin(), n.end(), 0);
  for (int s = 0; s < 4000; ++s) ++n[p.pick(s)];
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(n[i], 4000.0 * (2 * i + 2) / 20, 150) << i;
  p.weights = {0, 1, 0, 3};
  std::fill(n.begin(), n.end(), 0);
  for (int s = 0; s < 4000; ++s) ++n[p.pick(s)];
  EXPECT_EQ(n[0] + n[2], 0);
  EXPECT_NEAR(n[1], 1000, 150);
  p.weights = {1, 1};
  EXPECT_THROW(p.pick(0), Error);
}

}  // namespace
}  // namespace edgellm
