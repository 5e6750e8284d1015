// Where the shared design files (scalesim_vectors.csv) live for the hwsim tests.
#pragma once

#include <cstdlib>
#include <string>

namespace edgellm::testing {

inline std::string design_dir() {
  if (const char* d = std::getenv("EDGELLM_DESIGN")) return d;
  return std::string(EDGELLM_SOURCE_DIR) + "/../shared/design";
}

}  // namespace edgellm::testing
