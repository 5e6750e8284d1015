// A scratch file for state that may live on storage instead of in memory (the ALT prefix cache,
// offloaded optimizer moments): created by mkstemp in a directory the user names and unlinked at
// once, so it lives exactly as long as its owner and a killed run leaves nothing behind. Reads
// and writes are positioned (pread/pwrite), so the file never needs a mapping that would count
// its pages in the process's resident set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgellm {

class ScratchFile {
 public:
  // `what` names the file's user in errors (e.g. "--prefix-cache-dir"); the file is
  // DIR/edgellm-STEM.XXXXXX. Throws, naming the directory, if it cannot be created.
  ScratchFile(const std::string& dir, const std::string& stem, const std::string& what);
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Sets the length to `bytes`; bytes never written read as zero (the file stays sparse).
  void resize(uint64_t bytes);
  // Writes n bytes at offset; false (errno set) if the storage refused them, e.g. a full disk.
  bool try_write(const void* src, size_t n, uint64_t offset);
  // The same, throwing an error naming the file, the size and the offset on failure.
  void write(const void* src, size_t n, uint64_t offset);
  // Reads n bytes at offset; throws, naming the file, if fewer are there.
  void read(void* dst, size_t n, uint64_t offset) const;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;  // of the unlinked file, for messages
};

}  // namespace edgellm
