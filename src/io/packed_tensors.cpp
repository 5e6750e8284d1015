#include "io/packed_tensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "io/tensor_walk.h"
#include "util/error.h"

namespace edgellm {

namespace {

constexpr const char* kCodes = ".qcodes";
constexpr const char* kScales = ".qscales";
constexpr const char* kZeros = ".qzeros";
constexpr const char* kIndex = ".qindex";

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

bool is_part_name(const std::string& s) {
  return ends_with(s, kCodes) || ends_with(s, kScales) || ends_with(s, kZeros) ||
         ends_with(s, kIndex);
}

// A TensorOut copying `bytes` verbatim (rows of shape.back() elements of `dtype`).
TensorOut bytes_out(std::string name, DType dtype, std::vector<int64_t> shape, const uint8_t* bytes,
                    std::shared_ptr<const void> keep) {
  TensorOut o;
  o.name = std::move(name);
  o.dtype = dtype;
  o.shape = std::move(shape);
  const size_t rb = dtype_row_bytes(dtype, o.cols());
  o.fill = [bytes, rb, keep](int64_t r0, int64_t r1, uint8_t* dst) {
    std::memcpy(dst, bytes + static_cast<size_t>(r0) * rb, static_cast<size_t>(r1 - r0) * rb);
  };
  return o;
}

// Shapes of the parts of a rows x cols matrix in format f (codes of a Bitmask: `code_bytes`).
std::vector<int64_t> codes_shape(const WeightFormat& f, int64_t rows, int64_t cols,
                                 size_t code_bytes) {
  if (f.sparse == SparseFormat::Bitmask) return {static_cast<int64_t>(code_bytes)};
  return {rows, static_cast<int64_t>(code_row_bytes(f, cols))};
}

}  // namespace

std::vector<TensorOut> packed_tensor_outs(const Tensor& t, const std::string& out_name,
                                          const RowMap& map) {
  EDGELLM_CHECK(t.dtype == DType::Packed && t.packed, "tensor {} is not packed", t.name);
  // The parts to write: the tensor's own, or a row-permuted copy kept alive by the outs.
  std::shared_ptr<const void> keep = t.owner;
  std::shared_ptr<const PackedTensor> pt = t.packed;
  if (map) {
    auto w = std::make_shared<const PackedWeight>(permute_packed_rows(t.packed->view(), map));
    pt = std::make_shared<const PackedTensor>(PackedTensor::over(*w, t.packed->kept()));
    keep = std::make_shared<
        std::pair<std::shared_ptr<const PackedWeight>, std::shared_ptr<const PackedTensor>>>(w, pt);
  } else {
    keep = std::make_shared<
        std::pair<std::shared_ptr<const void>, std::shared_ptr<const PackedTensor>>>(t.owner, pt);
  }
  const WeightFormat& f = pt->format();
  const int64_t rows = pt->rows(), cols = pt->cols(), ng = f.n_groups(cols);
  const PackedParts& p = pt->parts();
  std::vector<TensorOut> outs;
  outs.push_back(bytes_out(out_name + kCodes, DType::U8, codes_shape(f, rows, cols, p.codes.size),
                           p.codes.data, keep));
  if (p.scales.size)
    outs.push_back(bytes_out(out_name + kScales, DType::F16, {rows, ng}, p.scales.data, keep));
  if (p.zeros.size)
    outs.push_back(bytes_out(out_name + kZeros, DType::U8, {rows, ng}, p.zeros.data, keep));
  if (p.index.size)
    outs.push_back(bytes_out(out_name + kIndex, DType::U8,
                             {rows, static_cast<int64_t>(index_row_bytes(f, cols))}, p.index.data,
                             keep));
  return outs;
}

nlohmann::json packed_tensor_entry(const Tensor& t) {
  EDGELLM_CHECK(t.dtype == DType::Packed && t.packed, "tensor {} is not packed", t.name);
  const WeightFormat& f = t.packed->format();
  nlohmann::json e = {{"format", f.name()},
                      {"bits", f.bits},
                      {"group", f.group},
                      {"scheme", scheme_name(f.scheme)},
                      {"sparse", sparse_format_name(f.sparse)},
                      {"shape", t.shape},
                      {"kept", t.packed->kept()},
                      {"bytes", t.packed->bytes().total()}};
  if (f.sparse == SparseFormat::NM) e["nm"] = {f.nm_n, f.nm_m};
  return e;
}

nlohmann::json compression_record(const nlohmann::json& st_metadata, const std::string& file) {
  if (!st_metadata.is_object() || !st_metadata.contains(kCompressionMetaKey)) return nullptr;
  const auto& v = st_metadata[kCompressionMetaKey];
  if (!v.is_string())
    fail("[packed] {}: __metadata__ '{}' is not a string", file, kCompressionMetaKey);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(v.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    fail("[packed] {}: __metadata__ '{}' is not valid JSON: {}", file, kCompressionMetaKey,
         e.what());
  }
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
    fail("[packed] {}: compression record has no integer 'version'", file);
  if (j["version"].get<int>() != kCompressionVersion)
    fail("[packed] {}: compression record version {} (this build reads {})", file,
         j["version"].get<int>(), kCompressionVersion);
  if (!j.contains("tensors") || !j["tensors"].is_object())
    fail("[packed] {}: compression record has no 'tensors' object", file);
  return j;
}

std::vector<Tensor> assemble_packed_tensors(std::vector<Tensor> raw, const nlohmann::json& record,
                                            const std::string& file) {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < raw.size(); ++i) by_name[raw[i].name] = i;
  if (record.is_null()) {
    for (const Tensor& t : raw)
      if (is_part_name(t.name))
        fail("[packed] {}: tensor '{}' looks like a packed part but the file has no '{}' record",
             file, t.name, kCompressionMetaKey);
    return raw;
  }
  std::vector<bool> used(raw.size(), false);
  std::map<size_t, Tensor> placed;  // index of the codes part -> the packed tensor
  for (const auto& item : record["tensors"].items()) {
    // Named copies, not structured bindings: lambdas below capture them (clang 14, the fuzz
    // build's compiler, cannot capture structured bindings).
    const std::string name = item.key();
    const nlohmann::json& e = item.value();
    auto bad = [&](const std::string& what) {
      fail("[packed] {}: tensor '{}': {}", file, name, what);
    };
    if (!e.is_object() || !e.contains("format") || !e["format"].is_string())
      bad("record entry has no 'format' string: " + e.dump());
    const WeightFormat f = WeightFormat::parse(e["format"].get<std::string>(), file + ": " + name);
    auto count = [](const nlohmann::json& v) {
      return v.is_number_integer() && v.get<int64_t>() >= 0;
    };
    if (!e.contains("shape") || !e["shape"].is_array() || e["shape"].size() != 2 ||
        !count(e["shape"][0]) || !count(e["shape"][1]))
      bad("record entry 'shape' is not [rows, cols]: " + e.value("shape", nlohmann::json()).dump());
    const int64_t rows = e["shape"][0].get<int64_t>(), cols = e["shape"][1].get<int64_t>();
    // The repeated fields must agree with the format name.
    auto agree = [&](const char* key, const nlohmann::json& want) {
      if (e.contains(key) && e[key] != want)
        bad(fmt::format("'{}' = {} disagrees with format '{}' ({})", key, e[key].dump(), f.name(),
                        want.dump()));
    };
    agree("bits", f.bits);
    agree("group", f.group);
    agree("scheme", scheme_name(f.scheme));
    agree("sparse", sparse_format_name(f.sparse));
    if (f.sparse == SparseFormat::NM) agree("nm", nlohmann::json{f.nm_n, f.nm_m});
    int64_t kept = -1;
    if (e.contains("kept")) {
      if (!count(e["kept"])) bad("'kept' is not a count: " + e["kept"].dump());
      kept = e["kept"].get<int64_t>();
    }
    if (by_name.count(name)) bad("stored both dense and packed");
    // Gather the parts; each must have the dtype and shape the format implies.
    PackedParts parts;
    std::vector<std::shared_ptr<const void>> owners;
    size_t codes_at = 0;
    auto part = [&](const char* suffix, DType dt, bool present, ByteSpan* span) {
      auto it = by_name.find(name + suffix);
      if (!present) {
        if (it != by_name.end())
          bad(fmt::format("has a '{}' part its format {} does not use", suffix, f.name()));
        return;
      }
      if (it == by_name.end()) bad(fmt::format("missing part '{}{}'", name, suffix));
      const Tensor& t = raw[it->second];
      if (t.dtype != dt)
        bad(fmt::format("part '{}' is {}, expected {}", suffix, dtype_name(t.dtype),
                        dtype_name(dt)));
      used[it->second] = true;
      *span = {t.data, t.nbytes};
      owners.push_back(t.owner);
      if (std::string(suffix) == kCodes) codes_at = it->second;
    };
    const bool asym = f.quantized() && f.scheme == QuantScheme::Asym;
    part(kCodes, DType::U8, true, &parts.codes);
    part(kScales, DType::F16, f.quantized(), &parts.scales);
    part(kZeros, DType::U8, asym, &parts.zeros);
    part(kIndex, DType::U8, f.sparse != SparseFormat::None, &parts.index);
    // Byte sizes (and N:M positions, mask padding) are checked by PackedTensor; shapes here.
    const Tensor& codes = raw[codes_at];
    const std::vector<int64_t> want_codes = codes_shape(f, rows, cols, codes.nbytes);
    if (codes.shape != want_codes)
      bad(fmt::format("part '{}' has shape {}, expected [{}]", kCodes, codes.shape_str(),
                      fmt::join(want_codes, ", ")));
    Tensor t;
    t.name = name;
    t.dtype = DType::Packed;
    t.shape = {rows, cols};
    t.packed = std::make_shared<const PackedTensor>(f, rows, cols, parts, file + ": " + name, kept);
    t.nbytes = t.packed->bytes().total();
    if (e.contains("bytes") && e["bytes"] != nlohmann::json(t.nbytes))
      bad(fmt::format("record says {} bytes, the parts hold {}", e["bytes"].dump(), t.nbytes));
    t.owner = std::make_shared<std::vector<std::shared_ptr<const void>>>(std::move(owners));
    placed.emplace(codes_at, std::move(t));
  }
  std::vector<Tensor> out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (auto it = placed.find(i); it != placed.end()) {
      out.push_back(std::move(it->second));
    } else if (!used[i]) {
      if (is_part_name(raw[i].name))
        fail("[packed] {}: tensor '{}' looks like a packed part but no record entry claims it",
             file, raw[i].name);
      out.push_back(std::move(raw[i]));
    }
  }
  return out;
}

void apply_layer_configs(Checkpoint& ck) {
  // The per-linear record of model/config.h, from the packed formats as stored: the grid
  // (bits, group, scheme), the N:M pattern and the measured fraction of zeros. A float linear of
  // a layer keeps the config's record (values fake-quantized in floats, if it says so).
  ModelConfig& c = ck.config;
  c.layers.resize(static_cast<size_t>(c.n_layers));
  for (const TensorSpec& s : model_tensor_specs(c)) {
    if (s.role != TensorRole::Linear) continue;
    const Tensor& t = ck.tensors.get(s.name, ck.path);
    if (t.dtype != DType::Packed) continue;
    const int id = linear_index(s);
    if (id < 0) fail("[packed] {}: tensor '{}' is not one of a layer's 7 linears", ck.path, s.name);
    const WeightFormat& f = t.packed->format();
    LinearFormat lf;
    if (f.quantized()) {
      lf.bits = f.bits;
      lf.group = f.group;
      lf.scheme = f.scheme;
    }
    const int64_t n = s.shape[0] * s.shape[1];
    lf.sparsity = static_cast<float>(double(n - t.packed->kept()) / double(n));
    if (f.sparse == SparseFormat::NM) lf.nm_n = f.nm_n, lf.nm_m = f.nm_m;
    c.layers[s.layer].linear[id] = lf;
  }
}

namespace {
// The stored format of a layer's linears: one WeightFormat name, "mixed", or "" (none packed).
std::string layer_format(const Checkpoint& ck, int layer) {
  std::string name;
  bool dense = false;
  for (const TensorSpec& s : model_tensor_specs(ck.config)) {
    if (s.role != TensorRole::Linear || s.layer != layer) continue;
    const Tensor& t = ck.tensors.get(s.name, ck.path);
    if (t.dtype != DType::Packed) {
      dense = true;
      continue;
    }
    const std::string n = t.packed->format().name();
    name = name.empty() || name == n ? n : "mixed";
  }
  return !name.empty() && dense ? "mixed" : name;
}
}  // namespace

nlohmann::json storage_summary(const Checkpoint& ck, std::optional<DType> written_as) {
  const ModelConfig& c = ck.config;
  auto stored_bytes = [&](const TensorSpec& s) {
    const Tensor& t = ck.tensors.get(s.name, ck.path);
    if (!written_as || t.dtype == DType::Packed) return t.nbytes;
    const int64_t rows = s.is_matrix() ? s.shape[0] : 1;
    return static_cast<size_t>(rows) *
           dtype_row_bytes(s.is_matrix() ? *written_as : DType::F32, s.shape.back());
  };
  std::vector<int64_t> params(c.n_layers, 0);
  std::vector<size_t> bytes(c.n_layers, 0);
  size_t total = 0;
  for (const TensorSpec& s : model_tensor_specs(c)) {
    total += stored_bytes(s);
    if (s.role != TensorRole::Linear) continue;
    params[s.layer] += s.shape[0] * s.shape[1];
    bytes[s.layer] += stored_bytes(s);
  }
  nlohmann::json j;
  j["layers"] = nlohmann::json::array();
  int64_t lp = 0;
  size_t lb = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    j["layers"].push_back({{"layer", l},
                           {"bits", c.mean_bits(l)},
                           {"sparsity", c.mean_sparsity(l)},
                           {"format", layer_format(ck, l)},
                           {"params", params[l]},
                           {"bytes", bytes[l]},
                           {"bits_per_weight", 8.0 * double(bytes[l]) / double(params[l])}});
    lp += params[l];
    lb += bytes[l];
  }
  j["linear_params"] = lp;
  j["linear_bytes"] = lb;
  j["linear_bits_per_weight"] = lp > 0 ? 8.0 * double(lb) / double(lp) : 0.0;
  j["params"] = c.n_params();
  j["tensor_bytes"] = total;
  j["bits_per_weight"] = 8.0 * double(total) / double(c.n_params());
  return j;
}

}  // namespace edgellm
