#include "hwsim/device.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "util/error.h"
#include "util/json_field.h"
#include "util/mapped_file.h"

namespace edgellm::hwsim {
namespace {

std::string preset_file(const std::string& name) {
  return std::string(EDGELLM_SOURCE_DIR) + "/presets/devices/" + name + ".json";
}

std::string error_of(const nlohmann::json& j) {
  try {
    Device::from_json(j, "dev.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Device, PresetsLoadAndMatchTheirFiles) {
  ASSERT_EQ(Device::preset_names().size(), 4u);
  for (const auto& name : Device::preset_names()) {
    SCOPED_TRACE(name);
    const Device d = Device::load(name);
    EXPECT_EQ(d.name, name);
    EXPECT_GT(d.peak_macs_per_s(), 0);
    EXPECT_EQ(d.sources.size(), 7u);  // every section says where its figures came from
    ASSERT_TRUE(std::filesystem::exists(preset_file(name))) << preset_file(name);
    EXPECT_EQ(nlohmann::json::parse(read_file(preset_file(name))),
              nlohmann::json::parse(Device::preset_json(name)))
        << "run presets/devices/embed.sh";
    // Loading the file directly gives the same device.
    EXPECT_EQ(Device::load(preset_file(name)).to_json(), d.to_json());
  }
  const Device p = Device::load("edge-accel");
  EXPECT_EQ(p.sram_bytes, 1 << 20);             // paper: 1 MB SRAM
  EXPECT_EQ(p.dram_bytes, 8.0 * (1ull << 30));  // paper: 8 GB LPDDR4
}

TEST(Device, MissingFieldNamesFileAndField) {
  auto j = nlohmann::json::parse(Device::preset_json("tx2"));
  j["dram"].erase("bandwidth_GBps");
  const std::string e = error_of(j);
  EXPECT_NE(e.find("dev.json"), std::string::npos) << e;
  EXPECT_NE(e.find("dram.bandwidth_GBps"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

TEST(Device, NegativeFieldNamesValue) {
  auto j = nlohmann::json::parse(Device::preset_json("tx2"));
  j["sram"]["bytes"] = -4096;
  const std::string e = error_of(j);
  EXPECT_NE(e.find("sram.bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("-4096"), std::string::npos) << e;
  j = nlohmann::json::parse(Device::preset_json("tx2"));
  j["array"]["rows"] = 0;
  EXPECT_NE(error_of(j).find("array.rows"), std::string::npos);
  j = nlohmann::json::parse(Device::preset_json("tx2"));
  j["array"]["cols"] = 12.5;
  EXPECT_NE(error_of(j).find("integer"), std::string::npos);
}

TEST(Device, EveryFigureNeedsASource) {
  auto j = nlohmann::json::parse(Device::preset_json("phone"));
  j["ssd"].erase("source");
  EXPECT_NE(error_of(j).find("ssd.source"), std::string::npos);
}

TEST(Device, MissingSectionAndBadDataflow) {
  auto j = nlohmann::json::parse(Device::preset_json("phone"));
  j.erase("array");
  EXPECT_NE(error_of(j).find("missing section 'array'"), std::string::npos);
  j = nlohmann::json::parse(Device::preset_json("phone"));
  j["array"]["dataflow"] = "rs";
  EXPECT_NE(error_of(j).find("'rs'"), std::string::npos);
}

TEST(Device, UnknownNameAndBadFile) {
  try {
    Device::load("no-such-device");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("edge-accel"), std::string::npos) << e.what();
  }
  const std::string dir = testing::temp_dir("hwsim_dev");
  const std::string bad = dir + "/bad.json";
  std::ofstream(bad) << "{ not json";
  try {
    Device::load(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// Fuzzer finding (fuzz_device_preset): a number the JSON parser cannot hold throws out_of_range,
// not parse_error, and escaped as a raw library exception. Now an Error naming the file, here
// and in every whole-file JSON reader (util/json_field.h read_json_file).
TEST(Device, NumberOverflowIsAnErrorNamingTheFile) {
  const std::string dir = testing::temp_dir("hwsim_dev_overflow");
  const std::string bad = dir + "/overflow.json";
  std::ofstream(bad) << "{\n  \"name\":3333333333e33333333333l\",\n}\n";
  for (int reader = 0; reader < 2; ++reader) {
    try {
      if (reader == 0)
        Device::load(bad);
      else
        read_json_file(bad, "test");
      FAIL() << reader;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad + ": not valid JSON"), std::string::npos)
          << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

// Fuzzer findings (fuzz_device_preset): an integer field far beyond int64 was converted to an
// integer before its range check (UBSan); a non-string name threw a raw library exception. Now
// both are refused with the field and the value.
TEST(Device, HugeIntegerFieldIsRefusedBeforeConversion) {
  nlohmann::json j = nlohmann::json::parse(Device::preset_json("orin-nano"));
  j["array"]["cols"] = 5.555e77;
  try {
    Device::from_json(j, "huge.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("array.cols"), std::string::npos) << e.what();
  }
  // And a name that is not a string (json::value threw a raw type_error).
  j = nlohmann::json::parse(Device::preset_json("orin-nano"));
  j["name"] = {{"bytes", 1}};
  try {
    Device::from_json(j, "name.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("field 'name' must be a string"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace edgellm::hwsim
