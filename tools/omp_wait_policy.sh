#!/usr/bin/env bash
# Shows why edgellm sets OMP_WAIT_POLICY=PASSIVE before libgomp loads (docs/reliability.md):
# 2,000 two-thread parallel regions separated by short serial work, run with the policy unset,
# set by setenv() inside main() (too late: libgomp read the environment when it was loaded),
# passive and active in the environment. The difference shows when other processes keep the
# cores busy (run it beside a CPU-bound job).
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/w.cpp" <<'CPP'
#include <omp.h>
#include <sys/resource.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
volatile double sink;
int main(int argc, char**) {
  if (argc > 1) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 0; it < 2000; ++it) {
#pragma omp parallel num_threads(2)
    { sink = omp_get_thread_num(); }
    double s = 0;
    for (int i = 0; i < 100000; ++i) s += i * 1e-9;
    sink = s;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  std::printf("wall %.3f s  cpu %.3f s\n", wall,
              u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec +
                  u.ru_stime.tv_usec * 1e-6);
}
CPP
g++ -O1 -fopenmp "$dir/w.cpp" -o "$dir/w"
echo -n "unset:                 "; env -u OMP_WAIT_POLICY "$dir/w"
echo -n "setenv() inside main:  "; env -u OMP_WAIT_POLICY "$dir/w" setenv
echo -n "passive (environment): "; OMP_WAIT_POLICY=passive "$dir/w"
echo -n "active (environment):  "; OMP_WAIT_POLICY=active "$dir/w"
