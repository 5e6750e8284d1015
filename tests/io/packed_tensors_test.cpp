// Compressed checkpoints in safetensors (io/packed_tensors.h): packed linears of every layout
// round-trip byte for byte through an HF directory, are stored in the HF row order (checked on the
// file's own bytes, not only by a round trip), and malformed parts or records fail by name.
#include "io/packed_tensors.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/model_writer.h"
#include "io/safetensors.h"
#include "io/tensor_walk.h"
#include "io_test_util.h"
#include "packed/packed_kernels.h"
#include "packed/random_packed.h"

namespace edgellm {
namespace {

using testing::expect_error;
using testing::temp_dir;
namespace fs = std::filesystem;

// A different layout for each linear, cycling through every sparse layout and scheme.
WeightFormat format_for(int i) {
  WeightFormat f;
  f.bits = 2 + i % 7;
  f.group = (i % 3) * 32;
  f.scheme = i % 2 ? QuantScheme::Asym : QuantScheme::Sym;
  switch (i % 4) {
    case 1:
      f.sparse = SparseFormat::Bitmask;
      break;
    case 2:
      f.sparse = SparseFormat::NM, f.nm_n = 2, f.nm_m = 4;
      break;
    case 3:
      f.sparse = SparseFormat::NM, f.nm_n = 3, f.nm_m = 8;
      break;
    default:
      break;
  }
  if (i % 9 == 8) f = WeightFormat{16, 0, QuantScheme::Sym, SparseFormat::Bitmask, 0, 0};
  return f;
}

// A random tiny model whose linears are all packed (random codes in varied formats).
Checkpoint packed_model(const std::string& dir, Arch arch) {
  const ModelConfig c = testing::tiny_config(arch);
  write_hf_dir(c, random_source(5), dir + "/dense", DType::F32);
  Checkpoint ck = load_checkpoint(dir + "/dense");
  Rng rng(17);
  int i = 0;
  for (const TensorSpec& s : model_tensor_specs(c)) {
    if (s.role != TensorRole::Linear) continue;
    const QuantizedMatrix q = random_q(format_for(i++), s.shape[0], s.shape[1], 0.6, rng);
    auto w = std::make_shared<const PackedWeight>(pack(q));
    ck.tensors.mutable_get(s.name) = make_packed_tensor(s.name, w, q.nnz());
  }
  ck.compression = {{"policy", {{"name", "test"}}}};
  return ck;
}

std::vector<float> decoded(const Tensor& t, int64_t r) {
  std::vector<float> row(static_cast<size_t>(t.cols()));
  decode_tensor_row(t, r, row.data());
  return row;
}

TEST(PackedTensors, PermuteRowsMovesWholeRowsOfEveryLayout) {
  Rng rng(3);
  for (int i = 0; i < 12; ++i) {
    const QuantizedMatrix q = random_q(format_for(i), 24, 37, 0.5, rng);
    const PackedWeight p = pack(q);
    auto map = [](int64_t r) { return (r * 7 + 3) % 24; };
    const PackedWeight m = permute_packed_rows(p.view(), map);
    m.validate("permuted");
    std::vector<float> a(37), b(37);
    for (int64_t r = 0; r < 24; ++r) {
      packed_decode_row(m.view(), r, a.data());
      packed_decode_row(p.view(), map(r), b.data());
      ASSERT_EQ(a, b) << p.fmt.name() << " row " << r;
    }
    EXPECT_EQ(m.bytes().total(), p.bytes().total()) << p.fmt.name();
  }
}

TEST(PackedTensors, HfDirectoryRoundTripsBitExactInHfRowOrder) {
  for (Arch arch : {Arch::Llama, Arch::Qwen2}) {
    const std::string d = temp_dir("packed_hf");
    const Checkpoint ck = packed_model(d, arch);
    save_hf_dir(ck, d + "/packed");
    const Checkpoint re = load_checkpoint(d + "/packed");
    ASSERT_EQ(re.tensors.size(), ck.tensors.size());
    for (const Tensor& t : ck.tensors.all()) {
      const Tensor& u = re.tensors.get(t.name, "reloaded");
      ASSERT_EQ(u.dtype, t.dtype) << t.name;
      ASSERT_EQ(u.nbytes, t.nbytes) << t.name;
      if (t.dtype != DType::Packed) continue;
      EXPECT_EQ(u.packed->format(), t.packed->format()) << t.name;
      EXPECT_EQ(u.packed->kept(), t.packed->kept()) << t.name;
      for (int64_t r = 0; r < t.rows(); ++r) ASSERT_EQ(decoded(u, r), decoded(t, r)) << t.name;
    }
    // Per-layer record in the config, the compressor's fields kept in the record.
    EXPECT_EQ(re.compression["policy"]["name"], "test");
    for (int l = 0; l < re.config.n_layers; ++l) {
      const LayerConfig& lc = re.config.layers[l];
      bool quantized = false, differ = false;
      for (const LinearFormat& f : lc.linear) {
        quantized |= f.bits > 0;
        differ |= !(f == lc.linear[0]);
      }
      EXPECT_TRUE(quantized) << "layer " << l;
      EXPECT_TRUE(differ) << "layer " << l << ": the linears were given mixed formats";
      EXPECT_GT(re.config.mean_sparsity(l), 0.0) << "layer " << l;
    }
    // The file's own q rows are in the HF (rotate-halves) order: file row r = internal row map(r).
    nlohmann::json meta;
    const std::string file = d + "/packed/model.safetensors";
    std::vector<Tensor> parts = read_safetensors(file, &meta);
    auto raw = assemble_packed_tensors(std::move(parts), compression_record(meta, file), file);
    const std::string q = "model.layers.1.self_attn.q_proj.weight";
    const Tensor* on_disk = nullptr;
    for (const Tensor& t : raw)
      if (t.name == q) on_disk = &t;
    ASSERT_NE(on_disk, nullptr);
    ASSERT_EQ(on_disk->dtype, DType::Packed);
    const Tensor& internal = ck.tensors.get(q, "ck");
    const RowMap map = interleaved_to_hf_rows(internal.rows(), ck.config.n_heads);
    for (int64_t r = 0; r < internal.rows(); ++r)
      ASSERT_EQ(decoded(*on_disk, r), decoded(internal, map(r))) << "row " << r;
    fs::remove_all(d);
  }
}

TEST(PackedTensors, StorageSummaryAsWrittenCountsTheFileNotTheMemory) {
  // The unpacked matrices (embeddings, head) are written in save_hf_dir's dtype, whatever they
  // were held in: the summary "as written" must equal the summary of the reloaded file, and
  // differ from the in-memory one when the two dtypes differ.
  const std::string d = temp_dir("packed_summary");
  const Checkpoint ck = packed_model(d, Arch::Llama);  // unpacked tensors held in f32
  for (DType dt : {DType::F32, DType::BF16}) {
    const std::string out = d + "/as_" + dtype_name(dt);
    save_hf_dir(ck, out, dt);
    const nlohmann::json as_written = storage_summary(ck, dt);
    const nlohmann::json reloaded = storage_summary(load_checkpoint(out));
    EXPECT_EQ(as_written["tensor_bytes"], reloaded["tensor_bytes"]) << dtype_name(dt);
    EXPECT_EQ(as_written["linear_bytes"], reloaded["linear_bytes"]) << dtype_name(dt);
    size_t on_disk = 0;  // the tensors' data: the file less its header
    for (const Tensor& t : read_safetensors(out + "/model.safetensors", nullptr))
      on_disk += t.nbytes;
    EXPECT_EQ(as_written["tensor_bytes"].get<size_t>(), on_disk) << dtype_name(dt);
    if (dt != DType::F32) {
      EXPECT_LT(as_written["tensor_bytes"].get<size_t>(),
                storage_summary(ck)["tensor_bytes"].get<size_t>());
    }
  }
  fs::remove_all(d);
}

// Parts of one packed weight as a safetensors file would hold them, plus its record.
struct RawPacked {
  std::vector<Tensor> raw;
  nlohmann::json record;
};

RawPacked raw_parts(const WeightFormat& f, int64_t rows, int64_t cols) {
  Rng rng(9);
  const QuantizedMatrix q = random_q(f, rows, cols, 0.5, rng);
  auto w = std::make_shared<const PackedWeight>(pack(q));
  const Tensor t = make_packed_tensor("w", w, q.nnz());
  RawPacked out;
  for (const TensorOut& o : packed_tensor_outs(t, "w", {})) {
    Tensor p = make_owned_tensor(o.name, o.dtype, o.shape);
    if (o.rows() > 0) o.fill(0, o.rows(), const_cast<uint8_t*>(p.data));
    out.raw.push_back(p);
  }
  out.record = {{"version", kCompressionVersion}, {"tensors", {{"w", packed_tensor_entry(t)}}}};
  return out;
}

TEST(PackedTensors, MalformedPartsAndRecordsFailByName) {
  const WeightFormat asym_bitmask{4, 32, QuantScheme::Asym, SparseFormat::Bitmask, 0, 0};
  const WeightFormat nm{3, 0, QuantScheme::Sym, SparseFormat::NM, 2, 4};
  {  // the well-formed case assembles into one packed tensor
    RawPacked r = raw_parts(asym_bitmask, 8, 40);
    auto out = assemble_packed_tensors(r.raw, r.record, "f.st");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].dtype, DType::Packed);
  }
  {  // a missing part
    RawPacked r = raw_parts(asym_bitmask, 8, 40);
    r.raw.erase(r.raw.begin() + 2);  // codes, scales, zeros, index
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"f.st", "'w'", "missing part 'w.qzeros'"});
  }
  {  // codes one byte short
    RawPacked r = raw_parts(asym_bitmask, 8, 40);
    Tensor& c = r.raw[0];
    c.shape[0] -= 1;
    c.nbytes -= 1;
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"f.st: w", "codes", "bytes"});
  }
  {  // repeated fields that contradict the format name
    RawPacked r = raw_parts(asym_bitmask, 8, 40);
    r.record["tensors"]["w"]["bits"] = 3;
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"'bits' = 3", "b4-asym-g32-bitmask"});
  }
  {  // kept count that is not the mask's
    RawPacked r = raw_parts(asym_bitmask, 8, 40);
    r.record["tensors"]["w"]["kept"] = 1;
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"1 weights kept but the mask has"});
  }
  {  // an N:M position outside its group
    RawPacked r = raw_parts(nm, 4, 40);
    Tensor& idx = r.raw.back();
    ASSERT_EQ(idx.name, "w.qindex");
    const_cast<uint8_t*>(idx.data)[0] = 0xff;  // slots 0..3 of row 0 -> position 3
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"f.st: w", "row 0 group 0 slot 1", "position 3"});
  }
  {  // parts without a record, and a part no entry claims
    RawPacked r = raw_parts(nm, 4, 40);
    expect_error([&] { assemble_packed_tensors(r.raw, nullptr, "f.st"); },
                 {"'w.qcodes'", "no 'edgellm.compression' record"});
    Tensor stray = r.raw[0];
    stray.name = "v.qcodes";
    r.raw.push_back(stray);
    expect_error([&] { assemble_packed_tensors(r.raw, r.record, "f.st"); },
                 {"'v.qcodes'", "no record entry claims it"});
  }
  {  // a bad record
    expect_error(
        [&] {
          compression_record({{kCompressionMetaKey, "{"}}, "f.st");
        },
        {"f.st", "not valid JSON"});
    expect_error(
        [&] {
          compression_record({{kCompressionMetaKey, R"({"version": 9, "tensors": {}})"}}, "f.st");
        },
        {"version 9"});
  }
}

TEST(PackedTensors, U8TensorsRoundTripThroughSafetensors) {
  const std::string d = temp_dir("u8");
  Tensor t = make_owned_tensor("bytes", DType::U8, {3, 5});
  for (size_t i = 0; i < t.nbytes; ++i) const_cast<uint8_t*>(t.data)[i] = uint8_t(i * 37);
  write_safetensors(d + "/a.safetensors", {tensor_out(t, DType::U8, "bytes")});
  auto back = read_safetensors(d + "/a.safetensors");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].dtype, DType::U8);
  EXPECT_EQ(back[0].shape, t.shape);
  EXPECT_EQ(std::memcmp(back[0].data, t.data, t.nbytes), 0);
  fs::remove_all(d);
}

}  // namespace
}  // namespace edgellm
