// Full fine-tuning: an fp32 copy of every weight of a model (decoded from whatever dtype it is
// stored in) in one arena, a Model whose views point into that copy (so the inference and
// training forwards read the live, updated weights), and the name -> offset map that the engine
// uses to place each tensor's gradient in the parallel gradient arena.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace edgellm {

class FullParams {
 public:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    size_t off = 0;
    int64_t numel = 0;
    bool decay = false;  // weight decay on matrices only (not norms/biases), as is customary
  };

  explicit FullParams(const Model& base);
  const Model& model() const { return *model_; }
  std::vector<float>& params() { return *params_; }
  const std::vector<float>& params() const { return *params_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // Offset of tensor `name` in params() (and in the parallel gradient array); throws if absent.
  size_t offset(const std::string& name) const;
  // A checkpoint of the current weights (f32, sharing this buffer) for writers.
  const Checkpoint& checkpoint() const { return model_->checkpoint(); }

 private:
  std::shared_ptr<std::vector<float>> params_;
  std::vector<Entry> entries_;
  std::unique_ptr<Model> model_;
};

}  // namespace edgellm
