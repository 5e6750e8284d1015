#include "util/scratch_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace edgellm {

ScratchFile::ScratchFile(const std::string& dir, const std::string& stem, const std::string& what) {
  std::string tmpl = dir + "/edgellm-" + stem + ".XXXXXX";
  fd_ = mkstemp(tmpl.data());
  if (fd_ < 0)
    fail("{} '{}': cannot create a scratch file there: {}", what, dir, std::strerror(errno));
  path_ = tmpl;
  unlink(path_.c_str());  // the open descriptor keeps it; nothing is left behind after the run
}

ScratchFile::~ScratchFile() { close(fd_); }

void ScratchFile::resize(uint64_t bytes) {
  if (ftruncate(fd_, static_cast<off_t>(bytes)) != 0)
    fail("scratch file {}: cannot set its length to {} bytes: {}", path_, bytes,
         std::strerror(errno));
}

bool ScratchFile::try_write(const void* src, size_t n, uint64_t offset) {
  const auto* s = static_cast<const uint8_t*>(src);
  size_t done = 0;
  while (done < n) {
    const ssize_t w = pwrite(fd_, s + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return false;
    }
    done += static_cast<size_t>(w);
  }
  return true;
}

void ScratchFile::write(const void* src, size_t n, uint64_t offset) {
  if (!try_write(src, n, offset))
    fail("scratch file {}: write of {} bytes at {} failed: {}", path_, n, offset,
         std::strerror(errno));
}

void ScratchFile::read(void* dst, size_t n, uint64_t offset) const {
  auto* d = static_cast<uint8_t*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = pread(fd_, d + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      fail("scratch file {}: read of {} bytes at {} failed: {}", path_, n, offset + done,
           r < 0 ? std::strerror(errno) : "end of file");
    done += static_cast<size_t>(r);
  }
}

}  // namespace edgellm
