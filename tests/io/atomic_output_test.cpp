// Outputs appear complete or not at all: AtomicDir swaps a whole directory in, leaves the old one
// whole when the new one is abandoned, and cleans up after dead runs; a write that fails (file
// size limit, as a full disk would) is an Error naming the output and leaves the previous file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "util/atomic_dir.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(AtomicDir, AppearsOnlyAtCommitAndReplacesTheOldOutputWhole) {
  const fs::path root = testing::temp_dir("atomic_dir");
  const fs::path out = root / "model";
  {
    AtomicDir d(out.string());
    write_file_atomic(d.path() + "/a", "first");
    EXPECT_FALSE(fs::exists(out));
    d.commit();
  }
  EXPECT_EQ(slurp(out / "a"), "first");
  {
    AtomicDir d(out.string());
    write_file_atomic(d.path() + "/b", "second");
    EXPECT_EQ(slurp(out / "a"), "first");  // the old output is intact until commit
    d.commit();
  }
  EXPECT_FALSE(fs::exists(out / "a"));  // replaced whole, not merged
  EXPECT_EQ(slurp(out / "b"), "second");
  {
    AtomicDir d(out.string());
    write_file_atomic(d.path() + "/c", "abandoned");
  }  // no commit: an error happened while writing
  EXPECT_EQ(slurp(out / "b"), "second");
  EXPECT_FALSE(fs::exists(out / "c"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root)) ++entries;
  EXPECT_EQ(entries, 1u) << "temporary directories left behind";
  fs::remove_all(root);
}

TEST(AtomicDir, RemovesTemporaryDirectoriesOfDeadRunsOnly) {
  const fs::path root = testing::temp_dir("atomic_dir_stale");
  const fs::path out = root / "model";
  // A pid that cannot exist (above pid_max) stands for a run killed with SIGKILL; our own
  // parent's pid for a run still going.
  const fs::path dead = root / "model.tmp.2147483600";
  const fs::path alive = root / ("model.tmp." + std::to_string(::getppid()));
  fs::create_directories(dead);
  fs::create_directories(alive);
  {
    AtomicDir d(out.string());
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(alive));
  }
  fs::remove_all(root);
}

TEST(AtomicDir, RefusesAFileWhereTheDirectoryShouldBe) {
  const fs::path root = testing::temp_dir("atomic_dir_file");
  write_file_atomic((root / "model").string(), "x");
  try {
    AtomicDir d((root / "model").string());
    FAIL() << "accepted a regular file as the output directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

// In a child process limited to 64 KiB per file (SIGXFSZ ignored, so write() fails with EFBIG
// as it does on a full disk): an overwrite of an existing file fails with an Error naming it.
TEST(AtomicWriter, FailedWriteNamesTheOutputAndKeepsThePreviousFile) {
  const fs::path root = testing::temp_dir("atomic_write_fail");
  const fs::path out = root / "model.safetensors";
  write_file_atomic(out.string(), "previous");
  const fs::path msg = root / "message";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{64 << 10, 64 << 10};
    setrlimit(RLIMIT_FSIZE, &lim);
    try {
      write_file_atomic(out.string(), std::string(1 << 20, 'x'));
      _exit(2);  // the limit did not bite
    } catch (const Error& e) {
      std::ofstream(msg) << e.what();
      _exit(0);
    } catch (...) {
      _exit(3);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "2: no error; 3: not an edgellm::Error";
  const std::string m = slurp(msg);
  EXPECT_NE(m.find(out.string() + ": write failed"), std::string::npos) << m;
  EXPECT_NE(m.find("File too large"), std::string::npos) << m;
  EXPECT_EQ(slurp(out), "previous");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root)) ++entries;
  EXPECT_EQ(entries, 2u) << "the temporary file was left behind";
  fs::remove_all(root);
}

}  // namespace
}  // namespace edgellm
