// Pipeline configuration: the embedded defaults equal presets/pipelines/default.json, TOML and
// JSON read the same, unknown names are errors naming them, every ready preset parses.
#include "pipeline/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "pipeline/stage.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::pipeline {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string p = ::testing::TempDir() + "/" + name;
  std::ofstream(p) << text;
  return p;
}

std::string error_of(const std::string& path) {
  try {
    load_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineConfig, DefaultPresetEqualsEmbeddedDefaults) {
  const PipelineConfig c =
      load_config(std::string(EDGELLM_SOURCE_DIR) + "/presets/pipelines/default.json");
  EXPECT_EQ(c.to_json(), PipelineConfig{}.to_json());
  EXPECT_EQ(c.model.path, "models/edgellm-tiny");
}

TEST(PipelineConfig, TomlAndJsonAgree) {
  const std::string t = write("cfg.toml", R"(name = "t"
[tune]
steps = 7
lr = 0.01
exits = [4, 8]
[task]
families = ["copy", "sort"]
)");
  const std::string j = write("cfg.json", R"({"name": "t", "tune": {"steps": 7, "lr": 0.01,
    "exits": [4, 8]}, "task": {"families": ["copy", "sort"]}})");
  const PipelineConfig a = load_config(t), b = load_config(j);
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.tune.steps, 7);
  EXPECT_FLOAT_EQ(a.tune.lr, 0.01f);
  EXPECT_EQ(a.tune.exits, (std::vector<int>{4, 8}));
  EXPECT_EQ(a.tune.rank, PipelineConfig{}.tune.rank);  // absent fields keep their defaults
}

TEST(PipelineConfig, UnknownNamesAndWrongTypesAreErrors) {
  EXPECT_NE(error_of(write("u1.json", R"({"tune": {"stepz": 3}})")).find("unknown field 'stepz'"),
            std::string::npos);
  EXPECT_NE(error_of(write("u2.json", R"({"tuning": {}})")).find("unknown section 'tuning'"),
            std::string::npos);
  const std::string e = error_of(write("u3.json", R"({"tune": {"steps": "many"}})"));
  EXPECT_NE(e.find("'steps'"), std::string::npos) << e;
  EXPECT_NE(e.find("u3.json"), std::string::npos) << e;
  EXPECT_NE(error_of(write("u4.toml", "[tune\nsteps = 1\n")).find("u4.toml"), std::string::npos);
}

TEST(PipelineConfig, DataVariableExpands) {
  setenv("EDGELLM_DATA", "/data/here", 1);
  EXPECT_EQ(expand_vars("${EDGELLM_DATA}/mmlu"), "/data/here/mmlu");
  unsetenv("EDGELLM_DATA");
  EXPECT_EQ(expand_vars("${EDGELLM_DATA}/x"), "../shared/data/x");
  EXPECT_EQ(expand_vars("plain"), "plain");
}

TEST(PipelineConfig, EveryReadyPresetParses) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(EDGELLM_SOURCE_DIR) +
                                                           "/presets/pipelines")) {
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(load_config(e.path().string()));
    ++n;
  }
  EXPECT_GE(n, 3);
}

TEST(PipelineConfig, StagesInOrder) {
  std::vector<std::string> names;
  for (const Stage& s : pipeline_stages()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"profile", "compress", "tune", "evaluate", "plan",
                                             "report"}));
  EXPECT_THROW(find_stage("deploy"), Error);
}

}  // namespace
}  // namespace edgellm::pipeline
