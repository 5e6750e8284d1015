// An edge device as the simulator sees it: a systolic array with a flexible-precision MAC, an
// on-chip SRAM, DRAM and SSD with their capacities and bandwidths. Devices are JSON files
// (presets/devices/*.json, also embedded in the binary) whose every figure carries a "source"
// string — a vendor sheet, the paper, or "assumed" with the reason.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "hwsim/systolic.h"

namespace edgellm::hwsim {

struct Device {
  std::string name;         // preset name or file stem
  std::string description;  // one line for humans
  // Compute.
  int array_rows = 0;  // R: PE rows of the systolic array
  int array_cols = 0;  // C: PE columns
  Dataflow dataflow = Dataflow::OS;
  double clock_hz = 0;       // array clock, Hz
  int base_bits = 8;         // weight bits of one MAC per PE per cycle
  int granularity_bits = 1;  // bit granularity of the flexible-precision MAC
  int vector_lanes = 0;      // elements per cycle of the element-wise unit (norms, softmax, adds)
  // Memory hierarchy. Bandwidths are bytes per second (JSON gives GB/s, 1 GB = 1e9 bytes).
  double sram_bytes = 0;           // on-chip scratchpad capacity
  double dram_bytes = 0;           // DRAM capacity
  double dram_bw = 0;              // DRAM <-> SRAM bandwidth
  double ssd_bytes = 0;            // storage capacity
  double ssd_read_bw = 0;          // SSD -> DRAM
  double ssd_write_bw = 0;         // DRAM -> SSD
  double capacity_fraction = 0.8;  // α: usable share of each level (FlexGen uses 0.8)
  // Where each figure came from, keyed by JSON section ("array", "sram", ...).
  std::vector<std::pair<std::string, std::string>> sources;

  double peak_macs_per_s() const { return static_cast<double>(array_rows) * array_cols * clock_hz; }

  // Parses and validates a device JSON; `source` (a file name or "preset 'tx2'") is named in
  // every error together with the field and the offending value.
  static Device from_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;

  // A preset name (see preset_names()) or a path to a JSON file.
  static Device load(const std::string& name_or_path);
  static std::vector<std::string> preset_names();
  // The embedded JSON text of a preset (identical to presets/devices/<name>.json).
  static const char* preset_json(const std::string& name);
};

}  // namespace edgellm::hwsim
