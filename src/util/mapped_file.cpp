#include "util/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "util/error.h"

namespace edgellm {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("[io] {}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("[io] {}: cannot stat: {}", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("[io] {}: is a directory, expected a file", path);
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("[io] {}: mmap failed: {}", path, std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

void drop_resident_pages(const void* p, size_t n) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_PAGEOUT);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void ByteReader::seek(size_t pos, const char* field) {
  if (pos > size_)
    fail("[io] {}: {} at offset {} is past end of file ({} bytes)", what_, field, pos, size_);
  pos_ = pos;
}

const uint8_t* ByteReader::take(size_t n, const char* field) {
  if (n > size_ - pos_)
    fail("[io] {}: truncated: reading {} ({} bytes at offset {}) but only {} bytes remain", what_,
         field, n, pos_, size_ - pos_);
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

std::string ByteReader::read_string(size_t n, const char* field) {
  const uint8_t* p = take(n, field);
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("[io] {}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("[io] {}: read error", path);
  return ss.str();
}

void remove_dead_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string n = e.path().filename().string();
    const size_t at = n.rfind(".tmp.");
    if (at == std::string::npos) continue;
    const std::string digits = n.substr(at + 5);
    if (digits.empty() || digits.size() > 10 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long long pid = std::strtoll(digits.c_str(), nullptr, 10);
    const bool dead = pid <= 0 || pid > std::numeric_limits<pid_t>::max() ||
                      (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
    if (dead) {
      std::error_code rm;
      fs::remove_all(e.path(), rm);
    }
  }
}

AtomicWriter::AtomicWriter(std::string path) : path_(std::move(path)) {
  remove_dead_temporaries(std::filesystem::path(path_).parent_path().string());
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("[io] {}: cannot create: {}", tmp_, std::strerror(errno));
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(
          "[io] {}: write failed (at byte {} of its temporary file {}): {}; the previous {} "
          "is left as it was",
          path_, offset_, tmp_, std::strerror(errno), path_);
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset_ += static_cast<uint64_t>(w);
  }
}

void AtomicWriter::pad_to(uint64_t alignment) {
  static const char zeros[64] = {};
  while (offset_ % alignment != 0) {
    uint64_t n = alignment - offset_ % alignment;
    write(zeros, n < sizeof(zeros) ? n : sizeof(zeros));
  }
}

void AtomicWriter::commit() {
  if (::fsync(fd_) != 0) fail("[io] {}: fsync of {} failed: {}", path_, tmp_, std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("[io] {}: rename to {} failed: {}", tmp_, path_, std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicWriter w(path);
  w.write(content);
  w.commit();
}

}  // namespace edgellm
