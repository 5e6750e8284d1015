#include "tokenizer/sentencepiece_model.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <string_view>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::tok {
namespace {

// Minimal protobuf wire-format reader (varint, 32-bit, length-delimited; 64-bit skipped).
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& path, const char* msg)
      : d_(data), path_(path), msg_(msg) {}
  bool done() const { return pos_ >= d_.size(); }
  // Next field header; returns false at end of message.
  bool next(uint32_t& field, uint32_t& wire) {
    if (done()) return false;
    const uint64_t key = varint("key");
    field = static_cast<uint32_t>(key >> 3);
    wire = static_cast<uint32_t>(key & 7);
    return true;
  }
  uint64_t varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= d_.size()) truncated(what);
      const auto b = static_cast<uint8_t>(d_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("[tokenizer] {}: {}: field '{}': varint longer than 10 bytes at offset {}", path_, msg_,
         what, pos_);
  }
  std::string_view bytes(const char* what) {
    const uint64_t n = varint(what);
    if (n > d_.size() - pos_) truncated(what);
    const std::string_view s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  float fixed32_float(const char* what) {
    if (d_.size() - pos_ < 4) truncated(what);
    float f;
    std::memcpy(&f, d_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire, uint32_t field) {
    switch (wire) {
      case 0:
        varint("unknown varint");
        return;
      case 1:
        if (d_.size() - pos_ < 8) truncated("unknown fixed64");
        pos_ += 8;
        return;
      case 2:
        bytes("unknown bytes");
        return;
      case 5:
        if (d_.size() - pos_ < 4) truncated("unknown fixed32");
        pos_ += 4;
        return;
      default:
        fail("[tokenizer] {}: {}: field {}: wire type {} unsupported (not a SentencePiece model?)",
             path_, msg_, field, wire);
    }
  }
  void expect(uint32_t wire, uint32_t want, const char* what) {
    if (wire != want)
      fail("[tokenizer] {}: {}: field '{}': wire type {}, expected {} (not a SentencePiece model?)",
           path_, msg_, what, wire, want);
  }

 private:
  [[noreturn]] void truncated(const char* what) {
    fail("[tokenizer] {}: {}: field '{}': truncated at offset {} of {}", path_, msg_, what, pos_,
         d_.size());
  }
  std::string_view d_;
  size_t pos_ = 0;
  const std::string& path_;
  const char* msg_;
};

}  // namespace

SpmModelInfo read_spm_model(const std::string& bytes, const std::string& path) {
  SpmModelInfo info;
  ProtoReader top(bytes, path, "ModelProto");
  uint32_t f, w;
  while (top.next(f, w)) {
    if (f == 1) {  // repeated SentencePiece pieces
      top.expect(w, 2, "pieces");
      ProtoReader p(top.bytes("pieces"), path, "SentencePiece");
      std::string piece;
      float score = 0;
      int type = 1;
      while (p.next(f, w)) {
        if (f == 1) {
          p.expect(w, 2, "piece");
          piece = std::string(p.bytes("piece"));
        } else if (f == 2) {
          p.expect(w, 5, "score");
          score = p.fixed32_float("score");
        } else if (f == 3) {
          p.expect(w, 0, "type");
          type = static_cast<int>(p.varint("type"));
        } else {
          p.skip(w, f);
        }
      }
      if (type < 1 || type > 6)
        fail("[tokenizer] {}: piece {} ('{}'): field 'type': value {} unknown", path,
             info.vocab.pieces.size(), piece, type);
      info.vocab.pieces.push_back(std::move(piece));
      info.vocab.scores.push_back(score);
      info.vocab.types.push_back(static_cast<PieceType>(type));
    } else if (f == 2) {  // TrainerSpec
      top.expect(w, 2, "trainer_spec");
      ProtoReader t(top.bytes("trainer_spec"), path, "TrainerSpec");
      while (t.next(f, w)) {
        // int32 fields are varints; negative values are sign-extended to 64 bits.
        auto i32 = [&](const char* what) {
          t.expect(w, 0, what);
          return static_cast<int>(static_cast<int64_t>(t.varint(what)));
        };
        if (f == 3) {
          info.model_type = i32("model_type");
        } else if (f == 35) {
          info.byte_fallback = i32("byte_fallback") != 0;
        } else if (f == 40) {
          info.unk_id = i32("unk_id");
        } else if (f == 41) {
          info.bos_id = i32("bos_id");
        } else if (f == 42) {
          info.eos_id = i32("eos_id");
        } else if (f == 43) {
          info.pad_id = i32("pad_id");
        } else {
          t.skip(w, f);
        }
      }
    } else if (f == 3) {  // NormalizerSpec
      top.expect(w, 2, "normalizer_spec");
      ProtoReader n(top.bytes("normalizer_spec"), path, "NormalizerSpec");
      while (n.next(f, w)) {
        if (f == 1) {
          n.expect(w, 2, "name");
          info.normalizer_name = std::string(n.bytes("name"));
        } else if (f == 2) {
          n.expect(w, 2, "precompiled_charsmap");
          info.has_charsmap = !n.bytes("precompiled_charsmap").empty();
        } else if (f == 3) {
          n.expect(w, 0, "add_dummy_prefix");
          info.add_dummy_prefix = n.varint("add_dummy_prefix") != 0;
        } else if (f == 4) {
          n.expect(w, 0, "remove_extra_whitespaces");
          info.remove_extra_whitespaces = n.varint("remove_extra_whitespaces") != 0;
        } else if (f == 5) {
          n.expect(w, 0, "escape_whitespaces");
          info.escape_whitespaces = n.varint("escape_whitespaces") != 0;
        } else {
          n.skip(w, f);
        }
      }
    } else {
      top.skip(w, f);
    }
  }
  if (info.vocab.pieces.empty()) fail("[tokenizer] {}: field 'pieces': no pieces", path);
  return info;
}

std::unique_ptr<SpmBpeTokenizer> spm_bpe_from_model(const SpmModelInfo& info,
                                                    const std::string& path) {
  if (info.model_type != 2)
    fail("[tokenizer] {}: field 'trainer_spec.model_type': value {} is not BPE (2)", path,
         info.model_type);
  if (info.has_charsmap)
    fail(
        "[tokenizer] {}: field 'normalizer_spec.precompiled_charsmap': normalization '{}' is "
        "not reproducible outside libsentencepiece",
        path, info.normalizer_name);
  if (!info.escape_whitespaces)
    fail("[tokenizer] {}: field 'normalizer_spec.escape_whitespaces': value false unsupported",
         path);
  SpmOptions opt;
  opt.kind = "spm-bpe";
  opt.add_dummy_prefix = info.add_dummy_prefix;
  opt.remove_extra_whitespaces = info.remove_extra_whitespaces;
  opt.byte_fallback = info.byte_fallback;
  opt.bos = info.bos_id;
  opt.eos = info.eos_id;
  opt.unk = info.unk_id;
  return std::make_unique<SpmBpeTokenizer>(info.vocab, opt, path);
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : path_(path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const std::string bytes = read_file(path);
  info_ = read_spm_model(bytes, path);
  const auto st = sp_->LoadFromSerializedProto(bytes);
  if (!st.ok())
    fail("[tokenizer] {}: libsentencepiece rejected the model: {}", path, st.ToString());
  bos_id_ = sp_->bos_id();
  eos_id_ = sp_->eos_id();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  if (!st.ok()) fail("[tokenizer] {}: encode failed: {}", path_, st.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  const int n = vocab_size();
  for (const int32_t id : ids)
    if (id < 0 || id >= n)
      fail("[tokenizer] {}: decode: token id {} outside vocabulary of {}", path_, id, n);
  std::string out;
  const auto st = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &out);
  if (!st.ok()) fail("[tokenizer] {}: decode failed: {}", path_, st.ToString());
  return out;
}

int SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

}  // namespace edgellm::tok
