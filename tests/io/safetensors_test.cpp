// The one safetensors reader (io/safetensors.h) against hostile headers, and the adapter and
// trainer-checkpoint paths that now go through it. CI runs this suite under ASan/UBSan too: a read
// outside the mapping is reported there even where the release build happens not to crash.
#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "io_test_util.h"
#include "model/lora.h"
#include "train/memory.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

using namespace ::edgellm::testing;
namespace fs = std::filesystem;

// A safetensors file from a header JSON string and `data_bytes` bytes of data (value i % 251).
std::string st_file(const std::string& path, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  put<uint64_t>(b, 0, header.size());
  b.insert(b.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<uint8_t>(i % 251));
  write_bytes(path, b);
  return path;
}

TEST(Safetensors, OffsetsNearTwoToThe64AreRefusedByEveryReader) {
  const std::string d = temp_dir("st_wrap");
  // end - begin = 8 = the size of [2] f32, and begin + (header end) wraps past 2^64 to a small
  // number: the old adapter reader's unsigned `base + end > size` check passed and it copied
  // from base + begin, far outside the mapping.
  const std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551600,18446744073709551608]}})";
  const std::string p = st_file(d + "/wrap.safetensors", h, 16);
  expect_error([&] { read_safetensors(p); }, {"wrap.safetensors", "tensor 'a'", "data_offsets",
                                              "18446744073709551600", "past the end"});
  expect_error([&] { read_safetensors_f32(p); }, {"wrap.safetensors", "past the end"});
  fs::remove_all(d);
}

TEST(Safetensors, CraftedAdapterWithWrappingOffsetsIsRefused) {
  const std::string d = temp_dir("st_adapter");
  const ModelConfig c = tiny_config(Arch::Llama);
  // A valid one-module adapter, then the same names with offsets near 2^64.
  LoraConfig lc;
  lc.rank = 2;
  lc.targets = 1u << static_cast<int>(LoraTarget::Q);
  lc.layers = {0};
  LoraAdapters ad(c, lc);
  ad.init_peft(1);
  ad.save(d + "/ok", "tiny");
  const LoraAdapters back = LoraAdapters::load(d + "/ok", c);
  EXPECT_EQ(back.params(), ad.params());

  fs::create_directories(d + "/bad");
  fs::copy_file(d + "/ok/adapter_config.json", d + "/bad/adapter_config.json");
  const std::string a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const std::string b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  // A [2, 64] f32 = 512 bytes, B [64, 2] = 512 bytes.
  const std::string h = R"({")" + a +
                        R"(":{"dtype":"F32","shape":[2,64],"data_offsets":[18446744073709551104,)"
                        R"(18446744073709551616]},")" +
                        b + R"(":{"dtype":"F32","shape":[64,2],"data_offsets":[0,512]}})";
  // 18446744073709551616 = 2^64 does not fit u64: JSON makes it a float, refused as such.
  st_file(d + "/bad/adapter_model.safetensors", h, 1024);
  expect_error([&] { LoraAdapters::load(d + "/bad", c); },
               {"adapter_model.safetensors", "data_offsets"});
  const std::string h2 = R"({")" + a +
                         R"(":{"dtype":"F32","shape":[2,64],"data_offsets":[18446744073709551104,)"
                         R"(18446744073709551615]},")" +
                         b + R"(":{"dtype":"F32","shape":[64,2],"data_offsets":[0,512]}})";
  st_file(d + "/bad/adapter_model.safetensors", h2, 1024);
  expect_error([&] { LoraAdapters::load(d + "/bad", c); },
               {"adapter_model.safetensors", "lora_A", "past the end"});
  fs::remove_all(d);
}

TEST(Safetensors, ShapeProductsAreOverflowChecked) {
  const std::string d = temp_dir("st_shape");
  // 2^32 · 2^32 · 16 · 4 bytes wraps a u64 to 0, which would "match" the empty range [0, 0].
  expect_error(
      [&] {
        read_safetensors(st_file(
            d + "/x.safetensors",
            R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0));
      },
      {"tensor 'a'", "overflows"});
  expect_error(
      [&] {
        read_safetensors(
            st_file(d + "/x.safetensors",
                    R"({"a":{"dtype":"F32","shape":[1099511627777],"data_offsets":[0,8]}})", 8));
      },
      {"tensor 'a'", "invalid dimension"});
  expect_error(
      [&] {
        read_safetensors(st_file(d + "/x.safetensors",
                                 R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8));
      },
      {"tensor 'a'", "invalid dimension", "2.5"});
  fs::remove_all(d);
}

TEST(Safetensors, DuplicateNamesAndBadMetadataAreRefused) {
  const std::string d = temp_dir("st_dup");
  // nlohmann keeps the last of two equal keys; the reader must not.
  expect_error(
      [&] {
        read_safetensors(st_file(d + "/x.safetensors",
                                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                 16));
      },
      {"x.safetensors", "key 'a' appears twice"});
  expect_error(
      [&] {
        read_safetensors(
            st_file(d + "/x.safetensors",
                    R"({"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8));
      },
      {"key 'dtype' appears twice"});
  expect_error(
      [&] {
        read_safetensors(st_file(d + "/x.safetensors", R"({"__metadata__":{"format":1}})", 0));
      },
      {"__metadata__.format", "not a string"});
  expect_error(
      [&] { read_safetensors(st_file(d + "/x.safetensors", R"({"__metadata__":[1]})", 0)); },
      {"__metadata__", "not an object"});
  fs::remove_all(d);
}

TEST(Safetensors, HeaderLengthAboveTheFormatLimitIsRefusedBeforeParsing) {
  const std::string d = temp_dir("st_big");
  // A sparse file just large enough to hold a 100,000,001-byte header: refused by the limit,
  // not by the file size, and without reading the header.
  const std::string p = d + "/big.safetensors";
  std::vector<uint8_t> b(8);
  put<uint64_t>(b, 0, 100000001);
  write_bytes(p, b);
  ASSERT_EQ(::truncate(p.c_str(), 8 + 100000001), 0);
  expect_error([&] { read_safetensors(p); }, {"big.safetensors", "100000001", "limit"});
  fs::remove_all(d);
}

TEST(Safetensors, F32LayerRoundTripsAndWidensHalfTypes) {
  const std::string d = temp_dir("st_f32");
  std::vector<NamedF32> ts = {
      {"x", {2, 3}, {1, -2, 3.5f, 0, 1e-30f, -7}}, {"scalar", {}, {42}}, {"empty", {0, 4}, {}}};
  write_safetensors_f32(d + "/a.safetensors", ts);
  std::vector<NamedF32> back = read_safetensors_f32(d + "/a.safetensors");
  ASSERT_EQ(back.size(), ts.size());
  auto by_name = [](const NamedF32& a, const NamedF32& b) { return a.name < b.name; };
  std::sort(ts.begin(), ts.end(), by_name);  // the reader returns tensors sorted by name
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(back[i].name, ts[i].name);
    EXPECT_EQ(back[i].shape, ts[i].shape);
    EXPECT_EQ(back[i].data, ts[i].data);
  }
  nlohmann::json meta;
  read_safetensors(d + "/a.safetensors", &meta);
  EXPECT_EQ(meta, nlohmann::json({{"format", "pt"}}));
  // F16 / BF16 files are widened: compare against the scalar conversions.
  const uint16_t h[3] = {0x3c00, 0xc000, 0x3555};  // 1, -2, 0.333...
  std::string hdr = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[6,12]}})";
  std::vector<uint8_t> bytes(8);
  put<uint64_t>(bytes, 0, hdr.size());
  bytes.insert(bytes.end(), hdr.begin(), hdr.end());
  for (int k = 0; k < 2; ++k)
    for (uint16_t v : h) bytes.push_back(v & 0xff), bytes.push_back(v >> 8);
  write_bytes(d + "/h.safetensors", bytes);
  const auto hb = read_safetensors_f32(d + "/h.safetensors");
  ASSERT_EQ(hb.size(), 2u);
  for (const NamedF32& t : hb)
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(t.data[i], t.name == "h" ? f16_to_f32(h[i]) : bf16_to_f32(h[i])) << t.name;
  fs::remove_all(d);
}

// Every truncation and many single-byte corruptions of a real adapter file: each read either
// succeeds or throws edgellm::Error (ASan/UBSan report anything else).
// A trainer checkpoint stores the optimizer state as one 1-D tensor of hundreds of MB (240 MB for
// a 7B-shape ALT run); the writer must not stage a copy of it (that copy lifted the run's peak
// RSS above its memory plan).
TEST(Safetensors, LargeOneDimensionalTensorIsWrittenWithoutAStagingCopy) {
  if (testing::kUnderAsan) GTEST_SKIP() << "RSS is meaningless under ASan's quarantine";
  const size_t n = size_t{32} << 20;  // 128 MiB of f32
  std::vector<float> big(n);
  for (size_t i = 0; i < n; ++i) big[i] = static_cast<float>(i % 1000) * 0.5f;
  const std::string dir = testing::temp_dir("st_big");
  const std::string path = dir + "/state.safetensors";
  const RssMark mark = start_rss_measurement();
  if (!mark.reset) GTEST_SKIP() << "the kernel's peak-RSS mark cannot be reset here";
  write_safetensors_f32(path, std::vector<F32View>{{"adam", {int64_t(n)}, big.data(), n}});
  const size_t growth = hwm_rss_bytes() - mark.rss;
  EXPECT_LT(growth, size_t{32} << 20) << "peak RSS grew by " << (growth >> 20) << " MiB";
  const std::vector<NamedF32> back = read_safetensors_f32(path);
  ASSERT_EQ(back.size(), 1u);
  ASSERT_EQ(back[0].data.size(), n);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), back[0].data.begin()));
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, TruncatedAndCorruptedAdaptersFailCleanly) {
  const std::string d = temp_dir("st_trunc");
  const ModelConfig c = tiny_config(Arch::Llama);
  LoraConfig lc;
  lc.rank = 1;
  lc.targets = 1u << static_cast<int>(LoraTarget::V);
  lc.layers = {1};
  LoraAdapters ad(c, lc);
  ad.init_peft(3);
  ad.save(d, "tiny");
  const std::vector<uint8_t> good = read_bytes(d + "/adapter_model.safetensors");
  const uint64_t hlen = [&] {
    uint64_t v;
    std::memcpy(&v, good.data(), 8);
    return v;
  }();
  int refused = 0, loaded = 0;
  auto attempt = [&](const std::vector<uint8_t>& bytes) {
    write_bytes(d + "/adapter_model.safetensors", bytes);
    try {
      LoraAdapters::load(d, c);
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
  };
  for (size_t n = 0; n < good.size(); n += (n < 8 + hlen ? 1 : 61))
    attempt(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(n)));
  for (size_t i = 0; i < 8 + hlen; ++i)
    for (uint8_t v : {uint8_t{'9'}, uint8_t{'-'}, uint8_t{'"'}, uint8_t{0xff}}) {
      std::vector<uint8_t> b = good;
      b[i] = v;
      attempt(b);
    }
  EXPECT_GT(refused, 0);
  attempt(good);
  EXPECT_GT(loaded, 0);
  fs::remove_all(d);
}

}  // namespace
}  // namespace edgellm
