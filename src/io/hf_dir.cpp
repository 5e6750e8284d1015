// Hugging Face checkpoint directories: config.json + model.safetensors, or shards listed by
// model.safetensors.index.json. HF LLaMA/Qwen2 q/k rows (and q/k biases) are in the rotate-halves
// RoPE layout and are permuted to the internal interleaved layout at load, back at save. A
// compressed model is the same directory with packed linears (io/packed_tensors.h).
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "io/packed_tensors.h"
#include "io/safetensors.h"
#include "io/tensor_walk.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace fs = std::filesystem;

namespace {

nlohmann::json parse_json_file(const std::string& path, const char* what) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("[hf] {}: {} is not valid JSON: {}", path, what, e.what());
  }
}

std::vector<std::string> shard_files(const std::string& dir) {
  const fs::path d(dir);
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const nlohmann::json j = parse_json_file(index.string(), "the shard index");
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail("[hf] {}: field 'weight_map' missing or not an object", index.string());
    std::set<std::string> files;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        fail("[hf] {}: weight_map['{}'] is not a file name: {}", index.string(), name, file.dump());
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail("[hf] {}: weight_map['{}'] names a file outside the directory: '{}'", index.string(),
             name, f);
      files.insert(f);
    }
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back((d / f).string());
    return out;
  }
  if (fs::exists(d / "model.safetensors")) return {(d / "model.safetensors").string()};
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(d))
    if (e.is_regular_file() && e.path().extension() == ".safetensors")
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty())
    fail("[hf] {}: no model.safetensors, model.safetensors.index.json or *.safetensors found", dir);
  return out;
}

}  // namespace

Checkpoint load_hf_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) fail("[hf] {}: not a directory", dir);
  Checkpoint ck;
  ck.path = dir;
  ck.format = CheckpointFormat::HfSafetensors;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) fail("[hf] {}: missing config.json", dir);
  ck.config = ModelConfig::from_hf_json(parse_json_file(cfg_path, "config.json"), cfg_path);
  for (const std::string& shard : shard_files(dir)) {
    // Packed tensors are assembled per shard: a compressed linear's parts and its record entry
    // live in one file.
    nlohmann::json meta;
    std::vector<Tensor> raw = read_safetensors(shard, &meta);
    const nlohmann::json record = compression_record(meta, shard);
    for (Tensor& t : assemble_packed_tensors(std::move(raw), record, shard)) {
      if (ck.tensors.has(t.name))
        fail("[hf] {}: tensor '{}' appears in more than one shard", shard, t.name);
      ck.tensors.add(std::move(t));
    }
    if (record.is_null()) continue;
    // One record for the checkpoint: the union of the shards' per-tensor entries.
    if (ck.compression.is_null()) {
      ck.compression = record;
    } else {
      for (const auto& [name, e] : record["tensors"].items()) ck.compression["tensors"][name] = e;
    }
  }
  // Shapes first (so a wrong q/k shape is reported as such, not as a permutation failure), then
  // the RoPE permutation of q/k rows into the interleaved layout.
  validate_tensors(ck);
  for (const TensorSpec& s : model_tensor_specs(ck.config))
    if (s.rope_heads > 0) {
      Tensor& t = ck.tensors.mutable_get(s.name);
      t = permute_hf_to_interleaved(t, s.rope_heads);
    }
  apply_layer_configs(ck);
  return ck;
}

void save_hf_dir(const Checkpoint& ck, const std::string& dir, DType dtype) {
  validate_tensors(ck);
  write_hf_dir(ck.config, checkpoint_source(ck), dir, dtype, ck.compression);
}

}  // namespace edgellm
