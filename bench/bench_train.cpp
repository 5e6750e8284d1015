// Training benchmark: vanilla LoRA (r 8, alpha 16, all 7 linears of every layer, frozen fp32
// base, batch 1) on a random model of a named shape, random tokens. Reports seconds per
// iteration (forward + backward + AdamW), tokens/s, the memory plan and peak RSS (getrusage).
//   bench_train [shape=134M] [seq=512] [iters=3] [ckpt=0] [base=f32|bf16|f16|q8_0...]
//   threads: OMP_NUM_THREADS
#include <fmt/format.h>
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/tensor_walk.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/rng.h"

using namespace edgellm;

int main(int argc, char** argv) {
  // Large blocks straight from (and back to) the OS: glibc's adaptive mmap threshold otherwise
  // keeps the freed fp32 staging tensors of the random model on the heap, inflating peak RSS.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const std::string shape = argc > 1 ? argv[1] : "134M";
  const int64_t seq = argc > 2 ? std::atoll(argv[2]) : 512;
  const int iters = argc > 3 ? std::atoi(argv[3]) : 3;
  const bool ckpt = argc > 4 && std::atoi(argv[4]) != 0;
  // Storage type of the frozen base's matrices (f32 = the setup; bf16 halves the
  // weights' memory and streams them through the tile-decode GEMM path).
  const DType base = argc > 5 ? dtype_from_name(argv[5], "base dtype") : DType::F32;
  try {
    ModelConfig c = ModelConfig::preset(shape);
    Checkpoint ck;
    ck.config = c;
    ck.path = "random-" + shape;
    Rng r(1);
    for (const TensorSpec& s : model_tensor_specs(c)) {
      Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
      auto* p = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
      const bool norm = s.role == TensorRole::Norm;
      // uniform(-a, a) with a = 0.02·√3 (std 0.02): cheap to draw for a billion weights
      for (int64_t i = 0; i < t.numel(); ++i)
        p[i] = norm ? 1.f : static_cast<float>((2 * r.uniform() - 1) * 0.0346);
      if (base != DType::F32 && !norm) t = convert_tensor(t, base);
      ck.tensors.add(std::move(t));
    }
    Model m(std::move(ck));
    Dataset d;
    d.source = "random tokens";
    for (int i = 0; i < iters + 1; ++i) {
      Example e;
      for (int64_t t = 0; t <= seq; ++t)
        e.tokens.push_back(static_cast<int32_t>(r.next() % c.vocab_size));
      e.targets.assign(e.tokens.begin() + 1, e.tokens.end());
      e.tokens.pop_back();
      d.train.push_back(std::move(e));
    }
    TuneOptions o;
    o.steps = iters + 1;
    o.seq = seq;
    o.lora.rank = 8;
    o.lora.alpha = 16;
    o.checkpoint_activations = ckpt;
    Trainer tr(m, d, o);
    std::fprintf(stderr, "[bench_train] %s seq %lld, plan:\n%s", shape.c_str(),
                 static_cast<long long>(seq), tr.plan().table().c_str());
    double total = 0;
    tr.run([&](const StepLog& s) {
      std::fprintf(stderr, "  step %lld: %.3f s, loss %.4f\n", static_cast<long long>(s.step),
                   s.seconds, s.loss);
      if (s.step > 1) total += s.seconds;  // step 1 warms caches and oneDNN's JIT
    });
    const double spi = total / iters;
    std::printf(
        "{\"shape\": \"%s\", \"base\": \"%s\", \"seq\": %lld, \"checkpoint_activations\": %s, "
        "\"s_per_iter\": %.4f, "
        "\"tokens_per_s\": %.1f, \"peak_rss_mb\": %.1f, \"plan_mb\": %.1f}\n",
        shape.c_str(), dtype_name(base), static_cast<long long>(seq), ckpt ? "true" : "false", spi,
        seq / spi, peak_rss_bytes() / 1048576.0, tr.plan().total() / 1048576.0);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
