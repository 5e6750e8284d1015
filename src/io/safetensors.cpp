#include "io/safetensors.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {

// Header JSON above this size is rejected before it is parsed (real headers are < 1 MiB; this
// stops a corrupt length from making us parse gigabytes).
constexpr uint64_t kMaxHeader = uint64_t{100} << 20;

bool dtype_from_st(const std::string& s, DType* t) {
  if (s == "F32")
    *t = DType::F32;
  else if (s == "F16")
    *t = DType::F16;
  else if (s == "BF16")
    *t = DType::BF16;
  else if (s == "U8")
    *t = DType::U8;
  else
    return false;
  return true;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::U8:
      return "U8";
    default:
      fail("[safetensors] dtype {} cannot be stored in safetensors (f32, f16, bf16, u8)",
           dtype_name(t));
  }
}

std::vector<Tensor> read_safetensors(const std::string& path, nlohmann::json* metadata) {
  auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);
  const uint64_t hlen = r.read<uint64_t>("header length");
  if (hlen > r.remaining() || hlen > kMaxHeader)
    fail("[safetensors] {}: header length {} exceeds the file ({} bytes after the length field)",
         path, hlen, r.remaining());
  const std::string header = r.read_string(hlen, "header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    fail("[safetensors] {}: header is not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("[safetensors] {}: header is not a JSON object", path);
  const uint64_t data_start = 8 + hlen;
  const uint64_t data_size = file->size() - data_start;
  std::vector<Tensor> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (metadata) *metadata = it.value();
      continue;
    }
    const auto& e = it.value();
    auto bad = [&](const char* field, const std::string& value) {
      fail("[safetensors] {}: tensor '{}': {} {}", path, name, field, value);
    };
    if (!e.is_object()) bad("entry is not an object:", e.dump());
    if (!e.contains("dtype") || !e["dtype"].is_string())
      bad("dtype missing or not a string:", e.dump());
    Tensor t;
    t.name = name;
    const std::string dt = e["dtype"].get<std::string>();
    if (!dtype_from_st(dt, &t.dtype)) bad("dtype", "'" + dt + "' unsupported (F32, F16, BF16, U8)");
    if (!e.contains("shape") || !e["shape"].is_array())
      bad("shape missing or not an array:", e.dump());
    int64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40))
        bad("shape has an invalid dimension:", e["shape"].dump());
      t.shape.push_back(d.get<int64_t>());
      if (numel > 0 && t.shape.back() > (int64_t{1} << 50) / numel)
        bad("shape is too large:", e["shape"].dump());
      numel *= t.shape.back();
    }
    const auto& off = e.contains("data_offsets") ? e["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      bad("data_offsets missing or not [begin, end]:", off.dump());
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en) bad("data_offsets", fmt::format("[{}, {}] has begin > end", b, en));
    if (en > data_size)
      bad("data_offsets",
          fmt::format("[{}, {}] past the end of the data ({} bytes)", b, en, data_size));
    const uint64_t want =
        static_cast<uint64_t>(numel) * static_cast<uint64_t>(dtype_block_bytes(t.dtype));
    if (en - b != want)
      bad("data_offsets", fmt::format("[{}, {}] hold {} bytes but shape {} of {} needs {}", b, en,
                                      en - b, t.shape_str(), dt, want));
    t.nbytes = want;
    t.data = file->data() + data_start + b;
    t.owner = file;
    // The header length need not keep the data aligned; kernels may reinterpret f32/f16 data,
    // so a misaligned tensor gets an aligned copy.
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_block_bytes(t.dtype) != 0) {
      Tensor c = make_owned_tensor(t.name, t.dtype, t.shape);
      std::memcpy(const_cast<uint8_t*>(c.data), t.data, t.nbytes);
      t = std::move(c);
    }
    ranges.emplace_back(b, en);
    out.push_back(std::move(t));
  }
  // Overlap check: sorted by begin, each non-empty range must start at or after the furthest end
  // seen so far (empty tensors overlap nothing).
  std::vector<size_t> idx(ranges.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t max_end = 0;
  size_t max_i = 0;
  for (size_t k : idx) {
    const auto [b, en] = ranges[k];
    if (b == en) continue;
    if (b < max_end)
      fail("[safetensors] {}: tensor '{}' data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", path,
           out[k].name, b, en, out[max_i].name, ranges[max_i].first, ranges[max_i].second);
    if (en > max_end) max_end = en, max_i = k;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorOut>& outs,
                       const nlohmann::json& metadata) {
  nlohmann::ordered_json h;
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const TensorOut& o : outs) {
    const uint64_t n = o.nbytes();
    h[o.name] = {{"dtype", safetensors_dtype_name(o.dtype)},
                 {"shape", o.shape},
                 {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string hs = h.dump();
  // Pad with spaces so the data starts 8-byte aligned (the format allows trailing whitespace).
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  AtomicWriter w(path);
  const uint64_t len = hs.size();
  w.write(&len, 8);
  w.write(hs);
  write_tensor_data(w, outs, 1);
  EDGELLM_CHECK(w.offset() == 8 + len + off, "safetensors size {} != {}", w.offset(),
                8 + len + off);
  w.commit();
}

}  // namespace edgellm
