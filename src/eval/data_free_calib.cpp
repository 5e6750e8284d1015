#include "eval/data_free_calib.h"

#include <limits>

#include "model/forward.h"
#include "model/sampler.h"
#include "util/error.h"

namespace edgellm {

std::vector<std::vector<int32_t>> data_free_calibration(const Model& m,
                                                        const DataFreeCalibOptions& o) {
  const ModelConfig& c = m.config();
  if (o.n < 1 || o.seq < 2) fail("[calibration] n {} must be >= 1 and seq {} >= 2", o.n, o.seq);
  if (o.seq > c.max_seq_len)
    fail("[calibration] seq {} exceeds the model context of {}", o.seq, c.max_seq_len);
  if (!(o.temperature > 0)) fail("[calibration] temperature {} must be positive", o.temperature);
  std::vector<std::vector<int32_t>> out;
  InferenceState st(m, o.seq);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  for (int64_t i = 0; i < o.n; ++i) {
    SamplerConfig sc;
    sc.temperature = o.temperature;
    sc.top_p = o.top_p;
    sc.seed = o.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i) + 1;
    Sampler sampler(sc);
    std::vector<int32_t> ids{c.bos_id};
    st.reset();
    const float* lg = st.forward_last_logits(ids.data(), 1);
    while (static_cast<int64_t>(ids.size()) < o.seq) {
      logits.assign(lg, lg + c.vocab_size);
      for (int32_t special : {c.bos_id, c.eos_id})
        if (special >= 0 && special < c.vocab_size)
          logits[static_cast<size_t>(special)] = -std::numeric_limits<float>::infinity();
      const int32_t next = sampler.sample(logits.data(), c.vocab_size);
      ids.push_back(next);
      if (static_cast<int64_t>(ids.size()) < o.seq) lg = st.forward_last_logits(&next, 1);
    }
    out.push_back(std::move(ids));
    if (o.progress) o.progress(i + 1, o.n);
  }
  return out;
}

}  // namespace edgellm
