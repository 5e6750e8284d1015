// ALT's branch-mode prefix cache (PAPER.md §2, docs/alt.md): below the window the frozen base runs
// with no adapter, so the hidden state entering the window's first layer l0 depends on the
// training sequence and l0 only, and can be kept across epochs instead of recomputed. Entries are
// kept first come, first kept, under a byte cap, in one of three encodings:
//   f32   exact: a hit changes no loss (the default);
//   bf16  2 bytes per value, rounded to nearest even (relative error ≤ 2^-8);
//   int8  per token row one fp32 scale absmax/127 and C codes round(x/scale): C + 4 bytes per
//         row, error ≤ scale/2 per value.
// bf16 and int8 hold 2× and ~4× the sequences in the same cap; the window then trains on the
// rounded input, on a hit and on a miss alike (round_trip), so the cache changes no loss in any
// encoding (docs/alt.md measures what the rounding itself does).
//
// In memory (the default) the cap is process memory. On disk (a directory given) the entries go
// to one file there and the cap is disk bytes: the process keeps only the index and reads an
// entry back with one pread, so the cache grows with the storage, not with the RAM. The file is
// unlinked as soon as it is created (it lives while the cache does, and a killed run leaves
// nothing behind); a resumed run starts with an empty cache, which changes no loss (every window
// input is rounded the same way, hit or miss).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/scratch_file.h"

namespace edgellm {

enum class PrefixCacheDType { F32, BF16, Int8 };
PrefixCacheDType prefix_cache_dtype_from_name(const std::string& s);  // f32 | bf16 | int8
const char* prefix_cache_dtype_name(PrefixCacheDType t);
// Stored bytes of one [T, C] entry.
size_t prefix_cache_entry_bytes(PrefixCacheDType t, int64_t T, int64_t C);

class PrefixCache {
 public:
  PrefixCache(PrefixCacheDType t, size_t cap_bytes) : t_(t), cap_(cap_bytes) {}
  // On disk: entries in a file created (and unlinked at once) in directory `dir`.
  PrefixCache(PrefixCacheDType t, size_t cap_bytes, const std::string& dir);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;
  // Keeps x [T, C] under `key` if it fits under the cap; false if it does not (or is present).
  bool put(uint64_t key, const float* x, int64_t T, int64_t C);
  // Decodes the entry of `key` into out [T, C]; false if there is none. Throws if the entry was
  // stored with another shape.
  bool get(uint64_t key, float* out, int64_t T, int64_t C) const;
  // x [T, C] ← what put then get would give back (in place; nothing is stored). Branch mode rounds
  // every window input this way, cached or not, so a hit, a miss, a full cache and a resumed run
  // all train on the same values.
  void round_trip(float* x, int64_t T, int64_t C) const;
  size_t bytes() const { return bytes_; }  // entry bytes held (in memory, or in the file)
  bool on_disk() const { return file_ != nullptr; }
  int64_t entries() const { return static_cast<int64_t>(map_.size()); }
  PrefixCacheDType dtype() const { return t_; }

 private:
  struct Entry {
    int64_t T = 0, C = 0;
    std::vector<uint8_t> data;  // in memory
    size_t offset = 0;          // on disk: where the entry starts in the file
  };
  PrefixCacheDType t_;
  size_t cap_, bytes_ = 0;
  std::unique_ptr<ScratchFile> file_;   // on disk: the entries' file
  mutable std::vector<uint8_t> stage_;  // one encoded entry (round_trip; on disk, put/get)
  std::unordered_map<uint64_t, Entry> map_;
};

}  // namespace edgellm
