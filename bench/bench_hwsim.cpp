// Times the simulator on the LLaMA-7B shape: one full tuning-iteration trace evaluated on one
// configuration (trace + array/tiling model + cost model), and full schedule searches.
// Prints JSON. Usage: bench_hwsim [repetitions]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "hwsim/paper.h"

using namespace edgellm;
using namespace edgellm::hwsim;

namespace {
template <typename F>
double ms_per_call(int reps, F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         reps;
}
}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  const ModelConfig m = ModelConfig::preset("llama-7b");
  const Device dev = Device::load("edge-accel");
  TuneConfig lora;
  lora.seq = 512;
  TuneConfig alt = lora;
  alt.method = Method::Alt;
  alt.window = 8;
  alt.bits = luc_bits(32, 4, 3);
  alt.sparsity.assign(32, 0.5);
  Schedule s;
  s.place.weights = {0, 0.5, 0.5};
  s.place.acts = {0, 0, 1};
  double sink = 0;
  size_t n_ops = 0;
  const double eval_ms = ms_per_call(reps, [&] {
    const Trace tr = build_trace(m, lora);
    n_ops = tr.ops.size();
    sink += evaluate(tr, dev, s, Workload{}).seconds;
  });
  SearchSpace sp;
  const double search_lora_ms =
      ms_per_call(3, [&] { sink += search(m, lora, {}, dev, Workload{}, sp).seconds; });
  const double search_alt_ms =
      ms_per_call(3, [&] { sink += search(m, alt, {}, dev, Workload{}, sp).seconds; });
  PaperOptions o;
  const double paper_ms =
      ms_per_call(1, [&] { sink += reproduce_paper(m, dev, o).memory_reduction; });
  nlohmann::json j{{"model", "llama-7b"},
                   {"device", dev.name},
                   {"trace_ops", n_ops},
                   {"trace_eval_ms", eval_ms},
                   {"search_lora_ms", search_lora_ms},
                   {"search_alt_4_exits_ms", search_alt_ms},
                   {"sim_paper_ms", paper_ms},
                   {"checksum", sink}};
  std::printf("%s\n", j.dump(2).c_str());
}
