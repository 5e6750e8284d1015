// Content hashes for the pipeline's skip/resume decisions: a stage is skipped when the hash of
// its inputs (its config section, the files it reads, its upstream stages' output hashes) equals
// the one recorded when it last finished. FNV-1a 64 over the bytes: change detection, not
// security. Files above kLargeFile are hashed by path, size and modification time instead of
// content, so a multi-gigabyte checkpoint does not cost a full read on every run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace edgellm::pipeline {

constexpr uint64_t kLargeFile = 256ull << 20;

class Hasher {
 public:
  Hasher& add(std::string_view bytes);
  Hasher& add_u64(uint64_t v);
  // A file's content (or, above kLargeFile, its size and mtime), or for a directory every
  // regular file below it in sorted relative-path order (names included). A missing path hashes
  // as "missing", so its appearance changes the hash.
  Hasher& add_path(const std::string& path);
  uint64_t value() const { return h_; }
  std::string hex() const;

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

std::string hash_hex(std::string_view bytes);

}  // namespace edgellm::pipeline
