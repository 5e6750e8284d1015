#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {

// The format's own limit on the header (safetensors' MAX_HEADER_SIZE): real headers are well
// under 1 MB; this stops a corrupt length from making us parse gigabytes.
constexpr uint64_t kMaxHeader = 100'000'000;
// No real tensor has a dimension this large; it keeps every product below in int64 range.
constexpr uint64_t kMaxDim = uint64_t{1} << 40;

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

// Parses the header, refusing duplicate keys at any depth: nlohmann keeps the last of two equal
// keys silently, so "a" listed twice would otherwise hide the first entry's offsets.
nlohmann::json parse_header(const std::string& header, const std::string& path) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string dup;
  auto cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      keys.emplace_back();
    } else if (ev == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == E::key && !keys.empty()) {
      if (!keys.back().insert(parsed.get<std::string>()).second && dup.empty())
        dup = parsed.get<std::string>();
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, cb);
  } catch (const nlohmann::json::exception& e) {
    fail("[safetensors] {}: header is not valid JSON: {}", path, e.what());
  }
  if (!dup.empty()) fail("[safetensors] {}: header: key '{}' appears twice", path, dup);
  if (!j.is_object()) fail("[safetensors] {}: header is not a JSON object", path);
  return j;
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
  if (hlen > r.remaining())
    fail("[safetensors] {}: header length {} exceeds the file ({} bytes after the length field)",
         path, hlen, r.remaining());
  if (hlen > kMaxHeader)
    fail("[safetensors] {}: header length {} exceeds the format's limit of {} bytes", path, hlen,
         kMaxHeader);
  const nlohmann::json j = parse_header(r.read_string(hlen, "header"), path);
  // hlen <= remaining, so neither subtraction wraps.
  const uint64_t data_start = 8 + hlen;
  const uint64_t data_size = file->size() - data_start;
  std::vector<Tensor> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      const auto& m = it.value();
      if (!m.is_object())
        fail("[safetensors] {}: field '__metadata__' is not an object: {}", path,
             m.dump().substr(0, 80));
      for (auto mi = m.begin(); mi != m.end(); ++mi)
        if (!mi.value().is_string())
          fail("[safetensors] {}: field '__metadata__.{}' is not a string: {}", path, mi.key(),
               mi.value().dump().substr(0, 80));
      if (metadata) *metadata = m;
      continue;
    }
    const auto& e = it.value();
    auto bad = [&](const char* field, const std::string& value) {
      fail("[safetensors] {}: tensor '{}': {} {}", path, name, field, value);
    };
    if (!e.is_object()) bad("entry is not an object:", e.dump().substr(0, 80));
    const auto dt_it = e.find("dtype");
    if (dt_it == e.end() || !dt_it->is_string())
      bad("field 'dtype' missing or not a string:", e.dump().substr(0, 80));
    Tensor t;
    t.name = name;
    const std::string dt = dt_it->get<std::string>();
    if (!dtype_from_st(dt, &t.dtype)) bad("dtype", "'" + dt + "' unsupported (F32, F16, BF16, U8)");
    const auto sh_it = e.find("shape");
    if (sh_it == e.end() || !sh_it->is_array())
      bad("field 'shape' missing or not an array:", e.dump().substr(0, 80));
    // numel·element size, overflow-checked at every step: a product that does not fit cannot
    // match an offset range inside the file.
    uint64_t bytes = static_cast<uint64_t>(dtype_block_bytes(t.dtype));
    for (const auto& d : *sh_it) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > kMaxDim)
        bad("shape has an invalid dimension:", sh_it->dump().substr(0, 80));
      const uint64_t v = d.get<uint64_t>();
      t.shape.push_back(static_cast<int64_t>(v));
      if (__builtin_mul_overflow(bytes, v, &bytes))
        bad("shape", fmt::format("{} overflows 64 bits of bytes", sh_it->dump().substr(0, 80)));
    }
    const auto off_it = e.find("data_offsets");
    const nlohmann::json off = off_it == e.end() ? nlohmann::json() : *off_it;
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      bad("field 'data_offsets' missing or not [begin, end] of non-negative integers:",
          off.dump().substr(0, 80));
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en) bad("data_offsets", fmt::format("[{}, {}] has begin > end", b, en));
    if (en > data_size)
      bad("data_offsets",
          fmt::format("[{}, {}] past the end of the data ({} bytes)", b, en, data_size));
    // b <= en <= data_size: the difference cannot wrap.
    if (en - b != bytes)
      bad("data_offsets", fmt::format("[{}, {}] hold {} bytes but shape {} of {} needs {}", b, en,
                                      en - b, t.shape_str(), dt, bytes));
    t.nbytes = bytes;
    t.data = file->data() + data_start + b;
    t.owner = file;
    // The header length need not keep the data aligned; kernels may reinterpret f32/f16 data,
    // so a misaligned tensor gets an aligned copy (its size is bounded by the file's).
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

void write_safetensors_f32(const std::string& path, const std::vector<NamedF32>& tensors) {
  std::vector<F32View> v;
  v.reserve(tensors.size());
  for (const NamedF32& t : tensors) v.push_back({t.name, t.shape, t.data.data(), t.data.size()});
  write_safetensors_f32(path, v);
}

TensorOut view_out(const std::string& name, DType dtype, std::vector<int64_t> shape,
                   const uint8_t* data) {
  TensorOut o;
  o.name = name;
  o.dtype = dtype;
  o.shape = std::move(shape);
  const size_t row = dtype_row_bytes(dtype, o.cols());
  o.fill = [data, row](int64_t r0, int64_t r1, uint8_t* dst) {
    std::memcpy(dst, data + static_cast<size_t>(r0) * row, static_cast<size_t>(r1 - r0) * row);
  };
  o.bytes = data;  // stored as is: no staging copy
  return o;
}

void write_safetensors_f32(const std::string& path, const std::vector<F32View>& tensors) {
  std::vector<TensorOut> outs;
  outs.reserve(tensors.size());
  for (const F32View& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    EDGELLM_CHECK(n == static_cast<int64_t>(t.n),
                  "tensor '{}': shape [{}] holds {} values, data {}", t.name,
                  fmt::join(t.shape, ", "), n, t.n);
    outs.push_back(view_out(t.name, DType::F32, t.shape, reinterpret_cast<const uint8_t*>(t.data)));
  }
  write_safetensors(path, outs, {{"format", "pt"}});
}

std::vector<NamedF32> read_safetensors_f32(const std::string& path) {
  std::vector<NamedF32> out;
  for (const Tensor& t : read_safetensors(path)) {
    NamedF32 f;
    f.name = t.name;
    f.shape = t.shape;
    // numel is bounded by the file size (the reader checked nbytes against the offsets).
    f.data.resize(static_cast<size_t>(t.numel()));
    if (t.numel() == 0) {
      // An empty tensor has no data pointer to copy from (memcpy(nullptr, ...) is undefined).
    } else if (t.dtype == DType::F32)
      std::memcpy(f.data.data(), t.data, t.nbytes);
    else
      decode_row(t.dtype, t.data, f.data.data(), t.numel());
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace edgellm
