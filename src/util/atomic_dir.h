// Output directories that appear complete or not at all (issue 11, "never half-written").
//
// Everything is written into DIR.tmp.<pid> beside DIR; commit() fsyncs every file and the
// directory, then renames it to DIR. When DIR already exists, renameat2(RENAME_EXCHANGE) swaps
// the two in one step and the previous output is removed only afterwards, so at every instant DIR
// is either the whole old output or the whole new one. A run that dies (SIGKILL, power loss)
// leaves only its DIR.tmp.<pid>; the next AtomicDir or AtomicWriter in the same parent directory
// removes those whose process is gone (remove_dead_temporaries, util/mapped_file.h).
#pragma once

#include <string>

namespace edgellm {

class AtomicDir {
 public:
  explicit AtomicDir(std::string dir);
  ~AtomicDir();  // removes the temporary directory unless commit() succeeded
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  // Where the output is written until commit().
  const std::string& path() const { return tmp_; }
  void commit();

 private:
  std::string dir_, tmp_;
  bool committed_ = false;
};

}  // namespace edgellm
