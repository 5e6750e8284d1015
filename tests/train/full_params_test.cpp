// FullParams over a memory-mapped model keeps one resident copy of the weights: the fp32
// trainable arrays, not also the mapping's pages its decode touched (pretraining maps its init
// model; two copies would cost 512 MiB more peak RSS at 134M). Measured through the process's
// own RssFile (/proc/self/status), and the copy must equal the file's values.
#include "train/full_params.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/model_writer.h"
#include "test_util.h"

namespace edgellm {
namespace {

// An f32 HF model of ~34 MB (seeded): far above the noise of the few pages a loader keeps.
// Returns its safetensors file's size.
int64_t write_rss_model(const std::string& dir, uint64_t seed) {
  const ModelConfig c =
      ModelConfig::parse_shape("dim=256,layers=4,heads=4,kv_heads=4,ff=1024,vocab=8192,ctx=64");
  write_hf_dir(c, random_source(seed, 0.02f), dir, DType::F32);
  return static_cast<int64_t>(std::filesystem::file_size(dir + "/model.safetensors"));
}

TEST(FullParams, MappedBaseStopsBeingResidentOnceCopied) {
  const std::string dir = testing::temp_dir("fullparams_rss");
  const int64_t file_bytes = write_rss_model(dir, 3);
  LoadOptions lo;
  lo.copy_weights = false;
  auto m = Model::load(dir, lo);
  const int64_t before = testing::rss_file_bytes();
  ASSERT_GE(before, 0) << "no RssFile in /proc/self/status";
  FullParams fp(*m);
  const int64_t grown = testing::rss_file_bytes() - before;
  // Without dropping the decoded pages the mapping would now be resident (~file_bytes more,
  // minus the q/k tensors the HF loader permuted onto the heap, 2/9 of a layer's matrices).
  EXPECT_LT(grown, file_bytes / 10) << "file " << file_bytes << " bytes, RssFile grew by " << grown;
  // The copy is the file's values (read back through the mapping, re-faulted from the file).
  const Tensor& emb = m->checkpoint().tensors.get("model.embed_tokens.weight", dir);
  const auto* src = reinterpret_cast<const float*>(emb.data);
  const float* dst = fp.params().data() + fp.offset("model.embed_tokens.weight");
  for (int64_t i = 0; i < emb.numel(); i += 997) ASSERT_EQ(src[i], dst[i]) << i;
  std::filesystem::remove_all(dir);
}

// The load-time non-finite scan reads every weight: a model that stays mapped (--mmap, and
// profile / compress, which walk it layer by layer) must not be left wholly resident by it.
TEST(MappedModel, LoadScanDoesNotLeaveTheFileResident) {
  const std::string dir = testing::temp_dir("mapped_scan_rss");
  const int64_t file_bytes = write_rss_model(dir, 4);
  const int64_t before = testing::rss_file_bytes();
  ASSERT_GE(before, 0) << "no RssFile in /proc/self/status";
  LoadOptions lo;
  lo.copy_weights = false;
  auto m = Model::load(dir, lo);
  const int64_t grown = testing::rss_file_bytes() - before;
  EXPECT_LT(grown, file_bytes / 10) << "file " << file_bytes << " bytes, RssFile grew by " << grown;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
