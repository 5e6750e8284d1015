#include "util/atomic_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2, RENAME_EXCHANGE (glibc, _GNU_SOURCE)
#include <cstring>
#include <filesystem>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& p, bool dir) {
  const int fd = ::open(p.c_str(), (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail("[io] {}: cannot open to sync: {}", p.string(), std::strerror(errno));
  const int r = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (r != 0) fail("[io] {}: fsync failed: {}", p.string(), std::strerror(e));
}

}  // namespace

AtomicDir::AtomicDir(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) fail("[io] output directory: empty path");
  const fs::path d(dir_);
  std::error_code ec;
  if (d.has_parent_path()) fs::create_directories(d.parent_path(), ec);
  if (ec) fail("[io] {}: cannot create the parent directory: {}", dir_, ec.message());
  if (fs::exists(d, ec) && !fs::is_directory(d, ec))
    fail("[io] {}: exists and is not a directory", dir_);
  remove_dead_temporaries(d.has_parent_path() ? d.parent_path().string() : ".");
  tmp_ = dir_ + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp_, ec);
  fs::create_directory(tmp_, ec);
  if (ec) fail("[io] {}: cannot create the temporary directory: {}", tmp_, ec.message());
}

AtomicDir::~AtomicDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void AtomicDir::commit() {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(tmp_))
    if (e.is_regular_file()) fsync_path(e.path(), false);
  fsync_path(tmp_, true);
  const fs::path d(dir_);
  const fs::path parent = d.has_parent_path() ? d.parent_path() : fs::path(".");
  if (fs::exists(d, ec)) {
    // Swap in one step, then drop the old output (now at tmp_).
    if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;
      fsync_path(parent, true);
      fs::remove_all(tmp_, ec);
      return;
    }
    if (errno != EINVAL && errno != ENOSYS)
      fail("[io] {}: cannot replace it with {}: {}", dir_, tmp_, std::strerror(errno));
    // A filesystem without the exchange: move the old output aside first (DIR is missing for
    // the instant between the two renames; the old output stays whole beside it).
    const std::string old = dir_ + ".old.tmp." + std::to_string(::getpid());
    fs::remove_all(old, ec);
    if (::rename(dir_.c_str(), old.c_str()) != 0)
      fail("[io] {}: cannot move it aside to {}: {}", dir_, old, std::strerror(errno));
    if (::rename(tmp_.c_str(), dir_.c_str()) != 0) {
      const int e = errno;
      ::rename(old.c_str(), dir_.c_str());
      fail("[io] {}: rename to {} failed: {}", tmp_, dir_, std::strerror(e));
    }
    committed_ = true;
    fsync_path(parent, true);
    fs::remove_all(old, ec);
    return;
  }
  if (::rename(tmp_.c_str(), dir_.c_str()) != 0)
    fail("[io] {}: rename to {} failed: {}", tmp_, dir_, std::strerror(errno));
  committed_ = true;
  fsync_path(parent, true);
}

}  // namespace edgellm
