// One threading model for the whole engine: OpenMP (oneDNN's GEMM runs on the same pool).
// Kernels take row ranges and are parallelised here, high up, never nested.
//
// One exception, for the decode GEMVs: parallel_ranges. A token's decode is ~8 short parallel
// regions per layer (tens of microseconds each), and edgellm runs OpenMP with the passive wait
// policy (docs/reliability.md: spinning workers are tens of times slower when another process
// holds a core), under which libgomp's fork and join cost ~30% of a TinyLlama Q4_0 decode.
// parallel_ranges runs on a small pool of its own: the workers sleep on a condition variable
// between jobs (a polling worker, even for 20 us, made decode beside a busy loop 1.5x slower: it
// looks CPU-bound to the scheduler), and the caller, once its own range is done, polls for theirs
// with sched_yield() unless a late poll showed that the machine is contended, then it sleeps too.
#pragma once

#include <cstdint>
#include <utility>

namespace edgellm {

void set_num_threads(int n);  // n <= 0: leave the OpenMP default (OMP_NUM_THREADS / cores)
int num_threads();

namespace detail {
using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);
void run_ranges(int64_t n, RangeFn fn, void* ctx);
}  // namespace detail

// f(begin, end) over [0, n) cut into num_threads() contiguous ranges, one per thread (the caller
// takes the first), returning when all are done. Serial inside an OpenMP parallel region, with
// one thread, or when n < 2. f must not throw.
template <class F>
void parallel_ranges(int64_t n, F&& f) {
  detail::run_ranges(
      n,
      [](void* ctx, int64_t b, int64_t e) {
        (*static_cast<std::remove_reference_t<F>*>(ctx))(b, e);
      },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// parallel_ranges when the work is worth the hand-off (`worth_it`), else f(0, n) on this thread.
template <class F>
void parallel_ranges_if(bool worth_it, int64_t n, F&& f) {
  if (worth_it)
    parallel_ranges(n, f);
  else
    f(int64_t{0}, n);
}

// Workers of parallel_ranges now (0 before its first use); for tests.
int range_pool_workers();

}  // namespace edgellm
