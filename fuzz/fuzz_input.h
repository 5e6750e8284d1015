// Shared by the libFuzzer harnesses (fuzz/*_fuzz.cpp): the readers take paths (they map files),
// so each input is written to one per-process file first. Only edgellm::Error may escape a
// reader; any other exception (a raw JSON-library error, std::bad_alloc, std::out_of_range) is
// a finding and is left to abort the run, like a crash.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "util/error.h"

namespace edgellm::fuzz {

// Writes the input to $TMPDIR/edgellm_fuzz_<pid>/<name> and returns the path.
inline std::string input_file(const uint8_t* data, size_t size, const std::string& name) {
  static const std::string dir = [] {
    const char* t = std::getenv("TMPDIR");
    std::string d = std::string(t ? t : "/tmp") + "/edgellm_fuzz_" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0700);
    return d;
  }();
  const std::string p = dir + "/" + name;
  FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return p;
}

// Runs fn, swallowing only edgellm::Error (a clean refusal).
template <typename F>
void refuse_cleanly(F&& fn) {
  try {
    fn();
  } catch (const Error&) {
  }
}

}  // namespace edgellm::fuzz
