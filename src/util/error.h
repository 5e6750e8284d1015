// Errors and checks. Every user-facing failure is an edgellm::Error whose message names the
// operation in brackets, the file or field, and the offending value, e.g.
//   [gguf] model.gguf: tensor 'blk.3.attn_q.weight': type 41 unknown
// Internal invariants use EDGELLM_CHECK, which also throws (never aborts) so the CLI can report.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace edgellm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace edgellm

#define EDGELLM_CHECK(cond, ...)                                                            \
  do {                                                                                      \
    if (!(cond)) ::edgellm::fail("[check] {}:{}: {} ({})", __FILE__, __LINE__, #cond,        \
                                 ::fmt::format(__VA_ARGS__));                               \
  } while (0)
