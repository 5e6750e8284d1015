// PEFT adapter directories with options edgellm does not implement are refused with a message
// naming the option (loading them as plain LoRA would silently compute a different model), and
// adapter_config.json numbers are range-checked at full width.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "model/lora.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

class PeftOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("peft");
    c_ = tiny_config(Arch::Llama);
    LoraConfig lc;
    lc.rank = 2;
    LoraAdapters ad(c_, lc);
    ad.init_peft(7);
    ad.save(dir_, "tiny");
    params_ = ad.params();
    cfg_ = nlohmann::json::parse(read_file(dir_ + "/adapter_config.json"));
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Loads the adapter with `key` set to `value` in adapter_config.json.
  void load_with(const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = cfg_;
    j[key] = value;
    write_file_atomic(dir_ + "/adapter_config.json", j.dump());
    LoraAdapters::load(dir_, c_);
  }
  std::string dir_;
  ModelConfig c_;
  std::vector<float> params_;
  nlohmann::json cfg_;
};

TEST_F(PeftOptions, PlainLoraLoadsAndDefaultsOfUnsupportedOptionsAreAccepted) {
  EXPECT_EQ(LoraAdapters::load(dir_, c_).params(), params_);
  // What PEFT writes for a plain adapter: false / empty / null values of the same options.
  for (auto [k, v] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"use_dora", false},
           {"fan_in_fan_out", false},
           {"use_rslora", false},
           {"rank_pattern", nlohmann::json::object()},
           {"alpha_pattern", nlohmann::json::object()},
           {"modules_to_save", nullptr},
           {"bias", "none"}}) {
    load_with(k, v);
    EXPECT_EQ(LoraAdapters::load(dir_, c_).params(), params_) << k;
  }
}

TEST_F(PeftOptions, UnsupportedOptionsAreRefusedByName) {
  expect_error([&] { load_with("use_dora", true); }, {"adapter_config.json", "use_dora", "DoRA"});
  expect_error([&] { load_with("fan_in_fan_out", true); },
               {"adapter_config.json", "fan_in_fan_out", "not supported"});
  expect_error(
      [&] {
        load_with("rank_pattern", {{"q_proj", 4}});
      },
      {"rank_pattern", "q_proj", "not supported"});
  expect_error(
      [&] {
        load_with("alpha_pattern", {{"v_proj", 32}});
      },
      {"alpha_pattern", "v_proj", "not supported"});
  expect_error([&] { load_with("use_rslora", true); }, {"use_rslora", "not supported"});
  expect_error([&] { load_with("modules_to_save", {"lm_head"}); }, {"modules_to_save", "lm_head"});
  expect_error([&] { load_with("bias", "lora_only"); }, {"bias", "lora_only"});
  expect_error([&] { load_with("peft_type", "IA3"); }, {"peft_type", "IA3"});
}

TEST_F(PeftOptions, NumbersAreCheckedAtFullWidthBeforeAnythingIsAllocated) {
  // 2^32 + 2 would narrow to r = 2, the rank of the stored tensors.
  expect_error([&] { load_with("r", 4294967298ull); }, {"field 'r'", "4294967298"});
  expect_error([&] { load_with("r", 2.5); }, {"field 'r'", "integer", "2.5"});
  expect_error([&] { load_with("r", 0); }, {"field 'r'", "0"});
  // A large but in-range r sizes nothing: the tensors' shapes disagree first.
  expect_error([&] { load_with("r", 1 << 20); }, {"lora_A", "shape [2, 64]", "[1048576, 64]"});
  expect_error([&] { load_with("lora_dropout", 1.5); }, {"lora_dropout", "1.5"});
  expect_error(
      [&] {
        load_with("layers_to_transform", {0, 7});
      },
      {"layers_to_transform[1]", "7", "[0, 1]"});
  expect_error([&] { load_with("layers_to_transform", nlohmann::json::array()); },
               {"layers_to_transform", "empty"});
  expect_error([&] { load_with("target_modules", {"q_proj", 3}); }, {"target_modules", "3"});
}

TEST_F(PeftOptions, NonFiniteAdapterWeightsAreReportedWithTheTensorName) {
  std::vector<NamedF32> ts = read_safetensors_f32(dir_ + "/adapter_model.safetensors");
  ASSERT_FALSE(ts.empty());
  NamedF32* victim = nullptr;
  for (NamedF32& t : ts)
    if (t.name == "base_model.model.model.layers.1.mlp.up_proj.lora_A.weight") victim = &t;
  ASSERT_NE(victim, nullptr);
  victim->data[37] = std::nanf("");
  write_safetensors_f32(dir_ + "/adapter_model.safetensors", ts);
  expect_error([&] { LoraAdapters::load(dir_, c_); },
               {"layers.1.mlp.up_proj.lora_A.weight", "non-finite", "index 37"});
  victim->data[37] = -INFINITY;
  write_safetensors_f32(dir_ + "/adapter_model.safetensors", ts);
  expect_error([&] { LoraAdapters::load(dir_, c_); }, {"up_proj.lora_A", "-inf"});
}

}  // namespace
}  // namespace edgellm
