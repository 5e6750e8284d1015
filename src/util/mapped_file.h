// Read-only memory-mapped file. Checkpoints are mapped, not read, so that F32/quantized weights
// cost page cache instead of heap and a 4 GB model loads instantly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace edgellm {

class MappedFile {
 public:
  // Throws Error naming `path` if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Drops the whole pages inside [p, p+n) from this process's resident set (MADV_PAGEOUT) once
// their bytes have been copied elsewhere, so peak RSS holds one copy, not two. It never loses
// data: file-mapped pages are re-read on the next access, and anonymous memory is at most moved
// to swap (without swap the call does nothing to it).
void drop_resident_pages(const void* p, size_t n);

// Bounds-checked little-endian reader over a byte range; every read past the end throws an
// Error naming the file, the field being read and the offset.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  void seek(size_t pos, const char* field);
  const uint8_t* take(size_t n, const char* field);  // returns pointer to n bytes, advances

  template <typename T>
  T read(const char* field) {
    T v;
    const uint8_t* p = take(sizeof(T), field);
    __builtin_memcpy(&v, p, sizeof(T));
    return v;
  }
  std::string read_string(size_t n, const char* field);
  const std::string& what() const { return what_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
};

// Whole-file read into a string (small files: JSON, text). Throws naming the path.
std::string read_file(const std::string& path);

// Atomic write: writes `path`.tmp.<pid>, fsyncs, renames over `path`. A crash never leaves a
// half-written output behind; what it does leave (its `*.tmp.<pid>`) is removed by the next
// AtomicWriter in the same directory (remove_dead_temporaries).
class AtomicWriter {
 public:
  explicit AtomicWriter(std::string path);
  ~AtomicWriter();  // removes the temp file unless commit() succeeded
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void pad_to(uint64_t alignment);
  uint64_t offset() const { return offset_; }
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, const std::string& content);

// Removes the files and directories in `dir` named `<anything>.tmp.<pid>` whose process no longer
// exists: what atomic writers killed mid-write (SIGKILL, power loss) left behind. Those of live
// processes (another run writing now) are kept.
void remove_dead_temporaries(const std::string& dir);

}  // namespace edgellm
