#include "eval/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "model/forward.h"
#include "util/rng.h"

namespace edgellm {

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux reports kilobytes
}

BenchResult bench_forward(const Model& m, const BenchOptions& o) {
  const ModelConfig& c = m.config();
  Rng rng(42);
  std::vector<int32_t> ids(std::max(o.pp, o.tg));
  for (auto& id : ids) id = static_cast<int32_t>(rng.next() % c.vocab_size);
  InferenceState st(m, std::max(o.pp, o.tg));
  using clock = std::chrono::steady_clock;
  auto time = [](auto&& f) {
    auto t0 = clock::now();
    f();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  BenchResult r;
  r.pp_seconds = r.tg_seconds = 1e30;
  for (int rep = 0; rep <= o.reps; ++rep) {  // rep 0 warms caches and page-faults the weights
    if (o.pp > 0) {
      st.reset();
      double s = time([&] { st.forward_last_logits(ids.data(), o.pp); });
      if (rep > 0) r.pp_seconds = std::min(r.pp_seconds, s);
    }
    if (o.tg > 0) {
      st.reset();
      double s = time([&] {
        for (int64_t i = 0; i < o.tg; ++i) st.forward_last_logits(&ids[i], 1);
      });
      if (rep > 0) r.tg_seconds = std::min(r.tg_seconds, s);
    }
  }
  if (o.pp > 0) r.pp_tokens_per_s = o.pp / r.pp_seconds;
  if (o.tg > 0) r.tg_tokens_per_s = o.tg / r.tg_seconds;
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

}  // namespace edgellm
