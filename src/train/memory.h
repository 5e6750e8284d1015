// Planned memory (DESIGN.md §7): every buffer of a training run belongs to one category and is
// carved out of that category's arena, allocated once before the first step. The plan is the
// arenas' sizes, known (and checkable against --mem-budget) before anything is allocated:
// arenas are first run in measuring mode through the same carving code that later hands out
// the real pointers, so plan and allocation cannot drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace edgellm {

enum class MemCategory : uint8_t {
  Weights,      // frozen base weights as stored (mmapped or owned), or the fp32 trainable copy
  Adapters,     // LoRA A/B
  Gradients,    // of every trainable parameter
  Optimizer,    // AdamW first and second moments
  Activations,  // values saved by the forward for the backward
  Scratch,      // per-step temporaries (logit chunks, backward buffers)
  // Buffers outside the arenas that a step needs: the kernels' workspaces (the bf16 GEMM's
  // activation copy and oneDNN scratchpad, decoded weight tiles; kernels/gemm_bf16.h
  // GemmWorkspace), the RoPE table, the step's token buffers when drawn from a corpus.
  Workspace,
  PrefixCache,  // ALT branch mode: cached frozen-prefix hidden states, at their cap
};
constexpr int kMemCategories = 8;
const char* mem_category_name(MemCategory c);

struct MemoryPlan {
  std::array<size_t, kMemCategories> bytes{};
  size_t& operator[](MemCategory c) { return bytes[static_cast<int>(c)]; }
  size_t operator[](MemCategory c) const { return bytes[static_cast<int>(c)]; }
  size_t total() const;
  std::string table() const;  // one line per category, MiB
  nlohmann::json to_json() const;
};

// Bump allocator of fp32 values. measuring: take() only counts (returns nullptr); allocate()
// then reserves exactly the counted size and the same take() sequence hands out real memory.
class Arena {
 public:
  float* take(size_t n);
  void allocate();  // zero-filled
  size_t bytes() const {
    return measuring_ ? counted_ * sizeof(float) : buf_.size() * sizeof(float);
  }
  bool measuring() const { return measuring_; }

 private:
  bool measuring_ = true;
  size_t counted_ = 0, used_ = 0;
  std::vector<float> buf_;
};

// "4G", "512M", "1.5GiB", "1000000" (bytes) -> bytes; throws naming `what`.
int64_t parse_bytes(const std::string& s, const std::string& what);
// Peak resident set size of this process (getrusage ru_maxrss).
size_t peak_rss_bytes();
// Resident set size now (/proc/self/statm; 0 where unavailable).
size_t current_rss_bytes();
// Start of a measurement of what comes next: returns the heap's free pages to the kernel (glibc
// keeps freed memory resident until a later free trims it, which would hide or fake growth) and
// restarts the kernel's peak-RSS mark (/proc/self/clear_refs 5). `rss` is the RSS after that;
// `reset` whether the mark could be restarted (else the peak includes what came before).
struct RssMark {
  size_t rss = 0;
  bool reset = false;
};
RssMark start_rss_measurement();
// The kernel's peak-RSS mark (VmHWM of /proc/self/status; 0 where unavailable).
size_t hwm_rss_bytes();

}  // namespace edgellm
