// Shared helpers for tests: where the real data lives, and skipping when it is absent.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"

namespace edgellm::testing {

// Built with AddressSanitizer: its allocator keeps freed memory in a quarantine and pads every
// allocation, so resident-memory measurements say nothing about the program's own footprint;
// tests that assert on RSS skip those assertions there (the release suite runs them).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAsan = true;
#else
inline constexpr bool kUnderAsan = false;
#endif
#else
inline constexpr bool kUnderAsan = false;
#endif

// EDGELLM_DATA, else ../shared/data relative to the source tree.
inline std::string data_dir() {
  if (const char* d = std::getenv("EDGELLM_DATA")) return d;
  return std::string(EDGELLM_SOURCE_DIR) + "/../shared/data";
}
inline std::string data_path(const std::string& rel) { return data_dir() + "/" + rel; }
// The data files many suites read (relative to data_dir()).
inline constexpr const char* kStories260KBin = "models/stories260K/stories260K.bin";
inline constexpr const char* kShakespeare = "text/tinyshakespeare/input.txt";
inline std::string stories260k_path() { return data_path(kStories260KBin); }
inline std::string cli_path() { return EDGELLM_CLI; }
// The CLI as the start of a shell command: under a cross build, prefixed with its emulator.
inline std::string cli_command() {
  const std::string launcher = EDGELLM_CLI_LAUNCHER;
  return launcher.empty() ? cli_path() : launcher + " " + cli_path();
}

// Runs the CLI with `args` through a shell (env assignments may precede it in `env`); stdout, or
// stdout and stderr together with `merge`. code: the exit status, -1 if killed by a signal.
struct CliOutput {
  int code;
  std::string out;
};
inline CliOutput run_cli(const std::string& args, bool merge = true, const std::string& env = "") {
  const std::string cmd = (env.empty() ? "" : env + " ") + cli_command() + " " + args +
                          (merge ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed: " + cmd};
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A fresh temporary directory per call, removed by the caller if wanted.
inline std::string temp_dir(const std::string& tag) {
  auto base = std::filesystem::temp_directory_path() /
              ("edgellm_test_" + tag + "_" + std::to_string(::getpid()) + "_" +
               std::to_string(std::rand()));
  std::filesystem::create_directories(base);
  return base.string();
}

// The message of the edgellm::Error that f() throws; "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Resident file-backed memory of this process in bytes (RssFile in /proc/self/status; -1 if the
// kernel does not report it).
inline int64_t rss_file_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  int64_t kb = -1;
  while (in >> key)
    if (key == "RssFile:") {
      in >> kb;
      return kb * 1024;
    }
  return -1;
}

}  // namespace edgellm::testing

#define EDGELLM_REQUIRE_DATA(rel)                                                 \
  do {                                                                            \
    if (!std::filesystem::exists(::edgellm::testing::data_path(rel)))             \
      GTEST_SKIP() << "data file missing: " << ::edgellm::testing::data_path(rel) \
                   << " (set EDGELLM_DATA)";                                      \
  } while (0)
