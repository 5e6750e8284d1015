#include "kernels/threads.h"

#include <omp.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace edgellm {

void set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

namespace {

using Clock = std::chrono::steady_clock;
int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

// How long an idle worker polls (sched_yield) for the next job before it sleeps: decode's gaps
// between GEMVs (attention, norms) are well below it.
constexpr auto kPollWindow = std::chrono::microseconds(1000);
// Every thread of the pool checks this often how often it was preempted (involuntary context
// switches: another runnable thread took its core, which sched_yield() also counts when it hands
// the core over); kPreemptedAt or more in one interval means the machine is contended, and the
// pool only sleeps, for kContendedFor, before it polls again. Measured over 5 ms intervals of a
// TinyLlama decode: 0-2 on the idle machine (kernel threads, the engine's OpenMP threads), ~20
// for the thread that shares its core with a busy process.
constexpr auto kProbeEvery = std::chrono::milliseconds(5);
constexpr int64_t kPreemptedAt = 4;
constexpr auto kContendedFor = std::chrono::milliseconds(100);

// This thread's involuntary context switches so far.
int64_t preemptions() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}

// One thread's view of contention: probe() reads its preemption count at most every kProbeEvery
// and says whether it grew by kPreemptedAt or more since the last read.
struct PreemptProbe {
  Clock::time_point at{};
  int64_t count = -1;
  bool probe(Clock::time_point now) {
    if (count >= 0 && now - at < kProbeEvery) return false;
    const int64_t c = preemptions();
    // An interval much longer than kProbeEvery (the thread did other work, or slept) says
    // little about now: it only restarts the count.
    const bool grew = count >= 0 && now - at < 4 * kProbeEvery && c - count >= kPreemptedAt;
    at = now;
    count = c;
    return grew;
  }
};

// A pool of `parts - 1` workers; the caller of run() takes part 0. One run at a time (run_ranges
// holds g_run_mu).
class RangePool {
 public:
  explicit RangePool(int parts) : parts_(parts) {
    for (int i = 1; i < parts; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~RangePool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    gen_.fetch_add(1);
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int parts() const { return parts_; }

  void run(int64_t n, detail::RangeFn fn, void* ctx) {
    n_ = n;
    fn_ = fn;
    ctx_ = ctx;
    pending_.store(parts_ - 1);
    // seq_cst: a worker that did not see this increment has already counted itself in sleepers_
    // (it increments sleepers_ before its last look at gen_), so it is woken below.
    gen_.fetch_add(1);
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lk(mu_); }
      cv_.notify_all();
    }
    part(0);
    // The caller polls for the workers' ranges, or sleeps while the machine is contended.
    thread_local PreemptProbe caller_probe;
    if (polling(caller_probe)) {
      while (pending_.load() != 0) sched_yield();
      return;
    }
    std::unique_lock<std::mutex> lk(mu_);
    caller_sleeps_.store(true);
    done_cv_.wait(lk, [&] { return pending_.load() == 0; });
    caller_sleeps_.store(false);
  }

 private:
  // Whether a thread may poll now: not while the pool counts as contended. A polling thread looks
  // CPU-bound to the scheduler: beside a busy process it loses the wake-up preference that a
  // sleeping thread has, and the load balancer packs the busy process onto the core of the thread
  // doing the work (measured: a worker polling even 20 us made decode beside a busy loop 1.5x
  // slower than OpenMP's passive waits).
  bool polling(PreemptProbe& p) {
    const auto now = Clock::now();
    if (p.probe(now)) contended_until_.store(ticks(now + kContendedFor), std::memory_order_relaxed);
    return ticks(now) >= contended_until_.load(std::memory_order_relaxed);
  }

  void part(int i) {
    const int64_t b = n_ * i / parts_, e = n_ * (i + 1) / parts_;
    if (b < e) fn_(ctx_, b, e);
  }

  void work(int i) {
    uint64_t seen = 0;
    PreemptProbe probe;
    for (;;) {
      if (polling(probe)) {
        const auto t0 = Clock::now();
        while (gen_.load() == seen && Clock::now() - t0 < kPollWindow) sched_yield();
      }
      if (gen_.load() == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return gen_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
      seen = gen_.load();
      if (stop_) return;
      part(i);
      // The last worker wakes a sleeping caller (seq_cst, as with sleepers_ in run()).
      if (pending_.fetch_sub(1) == 1 && caller_sleeps_.load()) {
        { std::lock_guard<std::mutex> lk(mu_); }
        done_cv_.notify_one();
      }
    }
  }

  const int parts_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeps_{false};
  std::atomic<int64_t> contended_until_{0};  // Clock ticks
  std::mutex mu_;
  std::condition_variable cv_;       // workers wait here for a job
  std::condition_variable done_cv_;  // the caller waits here for the workers
  std::atomic<bool> stop_{false};
  // The job, written by run() before gen_'s increment, read by workers after they see it.
  int64_t n_ = 0;
  detail::RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
};

std::mutex g_run_mu;
std::unique_ptr<RangePool> g_pool;  // under g_run_mu

}  // namespace

void detail::run_ranges(int64_t n, RangeFn fn, void* ctx) {
  const int nt = omp_in_parallel() ? 1 : num_threads();
  if (nt <= 1 || n < 2) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  // Callers on other threads (an OpenMP region excepted above) take turns; decode has one.
  std::lock_guard<std::mutex> lk(g_run_mu);
  if (!g_pool || g_pool->parts() != nt) {
    g_pool.reset();  // joins the old workers first
    g_pool = std::make_unique<RangePool>(nt);
  }
  g_pool->run(n, fn, ctx);
}

int range_pool_workers() {
  std::lock_guard<std::mutex> lk(g_run_mu);
  return g_pool ? g_pool->parts() - 1 : 0;
}

}  // namespace edgellm
