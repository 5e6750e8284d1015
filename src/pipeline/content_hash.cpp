#include "pipeline/content_hash.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace fs = std::filesystem;

Hasher& Hasher::add(std::string_view bytes) {
  uint64_t h = h_;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h_ = h;
  return add_u64(bytes.size());  // length-prefix-free concatenations cannot collide trivially
}

Hasher& Hasher::add_u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h_ ^= (v >> (8 * i)) & 0xff;
    h_ *= 0x100000001b3ull;
  }
  return *this;
}

namespace {
void add_file(Hasher& h, const fs::path& p) {
  const uint64_t size = fs::file_size(p);
  if (size > kLargeFile) {
    const auto t = fs::last_write_time(p).time_since_epoch().count();
    h.add("large").add_u64(size).add_u64(static_cast<uint64_t>(t));
    return;
  }
  if (size == 0) {
    h.add("");
    return;
  }
  auto m = MappedFile::open(p.string());
  h.add(std::string_view(reinterpret_cast<const char*>(m->data()), m->size()));
}
}  // namespace

Hasher& Hasher::add_path(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) return add("missing");
  if (!fs::is_directory(p)) {
    add("file");
    add_file(*this, p);
    return *this;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  add("dir").add_u64(files.size());
  for (const fs::path& f : files) {
    add(fs::relative(f, p).generic_string());
    add_file(*this, f);
  }
  return *this;
}

std::string Hasher::hex() const { return fmt::format("{:016x}", h_); }

std::string hash_hex(std::string_view bytes) { return Hasher().add(bytes).hex(); }

}  // namespace edgellm::pipeline
