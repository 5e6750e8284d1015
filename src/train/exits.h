// Where adaptive layer tuning's exits sit and which exit each optimizer step trains (PAPER.md
// §2, issue 9). Every step trains ONE exit: it forwards to that exit's layer, back-propagates
// through the window of m layers below it and through that exit's head.
//
// The exit of each step is a pure function of (seed, step), not a stream drawn from a running
// generator, so a resumed run picks exactly the exits the uninterrupted run would have: there is
// no schedule state to save.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm {

// Exits after layers ceil((i+1)·L/T), i = 0..T-1 (a depth: exit d reads layer d-1's output;
// the last exit is the model's own head, depth L).
std::vector<int> exit_depths(int L, int T);
// "3,6,9,12" -> depths, validated strictly increasing within 1..L (errors name the flag and
// the value).
std::vector<int> parse_exit_depths(const std::string& s, int L);
// The same checks on depths given as numbers (e.g. a config file's list); `what` names the source.
void check_exit_depths(const std::vector<int>& d, int L, const std::string& what);
// Window size m = ceil(L / T) for T exits: the layers one step back-propagates through.
int exit_window(int L, int T);

enum class ExitSchedule : uint8_t {
  Random,      // uniform over exits
  Curriculum,  // uniform over the first k exits, k growing linearly from 1 to T over the run
  RoundRobin,  // exit step mod T
  Weighted,    // probability ∝ weights[i] (default: the exit's depth, deeper exits more often)
};
ExitSchedule parse_exit_schedule(const std::string& s);  // random|curriculum|round-robin|weighted
const char* exit_schedule_name(ExitSchedule s);

struct ExitPicker {
  ExitSchedule schedule = ExitSchedule::Random;
  uint64_t seed = 0;
  int64_t total_steps = 1;      // of the run (curriculum)
  std::vector<double> weights;  // weighted; one per exit (empty: depths)
  std::vector<int> depths;      // exits

  // Index into depths of the exit trained at optimizer step `step` (0-based).
  int pick(int64_t step) const;
};

}  // namespace edgellm
