#include "train/full_params.h"

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

FullParams::FullParams(const Model& base) {
  const Checkpoint& src = base.checkpoint();
  size_t total = 0;
  for (const Tensor& t : src.tensors.all()) {
    Entry e{t.name, t.shape, total, t.numel(), t.shape.size() == 2};
    total += static_cast<size_t>(e.numel);
    entries_.push_back(e);
  }
  params_ = std::make_shared<std::vector<float>>(total);
  Checkpoint ck;
  ck.config = src.config;
  ck.format = src.format;
  ck.path = src.path + " (fp32 trainable copy)";
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Tensor& t = src.tensors.all()[i];
    float* dst = params_->data() + entries_[i].off;
    // Full fine-tuning trains every weight in fp32, so a compressed base is decoded here (row by
    // row into the trainable copy); LoRA is the way to train on it without that.
    const int64_t cols = t.cols(), rows = t.numel() / cols;
    for (int64_t r = 0; r < rows; ++r) decode_tensor_row(t, r, dst + r * cols);
    // The trainable copy supersedes the source: a memory-mapped base (pretraining's init, a
    // --mmap load) then stops counting against peak RSS; an owned base is left as it is.
    if (t.dtype != DType::Packed) drop_resident_pages(t.data, t.nbytes);
    Tensor v;
    v.name = t.name;
    v.dtype = DType::F32;
    v.shape = t.shape;
    v.data = reinterpret_cast<const uint8_t*>(dst);
    v.nbytes = static_cast<size_t>(t.numel()) * sizeof(float);
    v.owner = params_;
    ck.tensors.add(std::move(v));
  }
  // The Model must read the trainable arrays themselves, not a snapshot of them.
  LoadOptions lo;
  lo.copy_weights = false;
  model_ = std::make_unique<Model>(std::move(ck), lo);
}

size_t FullParams::offset(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return e.off;
  fail("[train] full fine-tuning: no tensor '{}'", name);
}

}  // namespace edgellm
