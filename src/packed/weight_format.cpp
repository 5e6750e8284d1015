#include "packed/weight_format.h"

#include <sstream>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace edgellm {

int64_t WeightFormat::n_groups(int64_t cols) const {
  if (!quantized()) return 0;
  const int64_t g = group_cols(cols);
  return g > 0 ? (cols + g - 1) / g : 0;
}

int WeightFormat::index_bits() const {
  int b = 0;
  while ((1 << b) < nm_m) ++b;
  return b;
}

uint32_t WeightFormat::zero_code(uint8_t z) const {
  if (!quantized()) return 0;  // +0.0 in fp16
  if (scheme == QuantScheme::Sym) return (1u << (bits - 1)) - 1;
  return z;
}

void WeightFormat::validate(const std::string& what) const {
  if (!((bits >= 2 && bits <= 8) || bits == 16))
    fail("[format] {}: bits {} not supported (2..8, or 16 for unquantized fp16)", what, bits);
  if (group < 0) fail("[format] {}: group {} is negative", what, group);
  if (quantized() && group > 0 && group % 8 != 0)
    fail("[format] {}: group {} is not a multiple of 8 (groups must start on byte boundaries)",
         what, group);
  if (!quantized() && group != 0)
    fail("[format] {}: group {} given for unquantized fp16", what, group);
  if (!quantized() && scheme != QuantScheme::Sym)
    fail("[format] {}: scheme asym given for unquantized fp16", what);
  if (sparse == SparseFormat::NM) {
    if (!(nm_m >= 2 && nm_m <= 16 && nm_n >= 1 && nm_n < nm_m))
      fail("[format] {}: N:M {}:{} not supported (1 <= N < M <= 16)", what, nm_n, nm_m);
  } else if (nm_n != 0 || nm_m != 0) {
    fail("[format] {}: N:M {}:{} given without the nm sparsity format", what, nm_n, nm_m);
  }
}

const char* scheme_name(QuantScheme s) { return s == QuantScheme::Sym ? "sym" : "asym"; }

const char* sparse_format_name(SparseFormat s) {
  switch (s) {
    case SparseFormat::None:
      return "dense";
    case SparseFormat::Bitmask:
      return "bitmask";
    case SparseFormat::NM:
      return "nm";
  }
  return "?";
}

std::string WeightFormat::name() const {
  // fmt::format rather than std::string operator+: GCC 12 warns falsely (-Wrestrict, bug 105329)
  // on short string concatenations.
  std::string s = fmt::format("b{}", bits);
  if (quantized())
    s += group > 0 ? fmt::format("-{}-g{}", scheme_name(scheme), group)
                   : fmt::format("-{}-row", scheme_name(scheme));
  if (sparse == SparseFormat::Bitmask) s += "-bitmask";
  if (sparse == SparseFormat::NM) s += fmt::format("-nm{}:{}", nm_n, nm_m);
  return s;
}

WeightFormat WeightFormat::parse(const std::string& text, const std::string& what) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, '-');) parts.push_back(p);
  auto bad = [&](const std::string_view why) -> WeightFormat {
    fail(
        "[format] {}: '{}': {} (expected e.g. b4-sym-row, b4-asym-g128-bitmask, b3-sym-g64-nm2:4, "
        "b16-bitmask)",
        what, text, why);
  };
  if (parts.empty() || parts[0].size() < 2 || parts[0][0] != 'b') return bad("no bit-width");
  WeightFormat f;
  try {
    f.bits = std::stoi(parts[0].substr(1));
  } catch (const std::exception&) {
    return bad("bit-width is not a number");
  }
  size_t i = 1;
  if (f.bits != 16) {
    if (parts.size() < 3) return bad("a quantized format needs a scheme and a group");
    if (parts[1] == "sym")
      f.scheme = QuantScheme::Sym;
    else if (parts[1] == "asym")
      f.scheme = QuantScheme::Asym;
    else
      return bad(fmt::format("scheme '{}' is neither sym nor asym", parts[1]));
    if (parts[2] == "row")
      f.group = 0;
    else if (parts[2].size() > 1 && parts[2][0] == 'g') {
      try {
        f.group = std::stoi(parts[2].substr(1));
      } catch (const std::exception&) {
        return bad(fmt::format("group '{}' is not a number", parts[2]));
      }
    } else {
      return bad(fmt::format("group '{}' is neither 'row' nor g<N>", parts[2]));
    }
    i = 3;
  }
  if (i < parts.size()) {
    const std::string& sp = parts[i];
    if (sp == "bitmask") {
      f.sparse = SparseFormat::Bitmask;
    } else if (sp.rfind("nm", 0) == 0 && sp.find(':') != std::string::npos) {
      f.sparse = SparseFormat::NM;
      try {
        f.nm_n = std::stoi(sp.substr(2, sp.find(':') - 2));
        f.nm_m = std::stoi(sp.substr(sp.find(':') + 1));
      } catch (const std::exception&) {
        return bad(fmt::format("N:M '{}' is not two numbers", sp));
      }
    } else {
      return bad(fmt::format("sparsity '{}' is neither bitmask nor nmN:M", sp));
    }
    ++i;
  }
  if (i != parts.size()) return bad(fmt::format("trailing '{}'", parts[i]));
  f.validate(what);
  return f;
}

}  // namespace edgellm
