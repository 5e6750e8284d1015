#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/checkpoint.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

TuneMethod tune_method_from_name(const std::string& name) {
  if (name == "lora") return TuneMethod::Lora;
  if (name == "full") return TuneMethod::Full;
  fail("[train] --method '{}' unknown (lora, full)", name);
}

namespace {

int64_t full_numel(const Model& m) {
  int64_t n = 0;
  for (const Tensor& t : m.checkpoint().tensors.all()) n += t.numel();
  return n;
}

void check_budget(const MemoryPlan& p, int64_t budget, const char* when) {
  if (budget <= 0 || p.total() <= static_cast<size_t>(budget)) return;
  fail("[train] memory plan of {:.1f} MiB does not fit --mem-budget {:.1f} MiB ({}):\n{}",
       p.total() / 1048576.0, budget / 1048576.0, when, p.table());
}

// Keeps the lines of `path` whose "step" is at most `step` (all when the file is absent).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    int64_t s = -1;
    try {
      s = nlohmann::json::parse(line).value("step", int64_t(-1));
    } catch (const nlohmann::json::exception&) {
      // A line cut by a crash: nothing after it can be trusted either.
      dropped = true;
      break;
    }
    if (s > step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomic(path, kept);
}

}  // namespace

Trainer::Trainer(const Model& base, const Dataset& data, TuneOptions o)
    : base_(base), data_(data), o_(std::move(o)), rng_(o_.seed) {
  const ModelConfig& c = base.config();
  if (o_.steps <= 0) fail("[train] --steps {} must be positive", o_.steps);
  if (o_.batch <= 0 || o_.grad_accum <= 0)
    fail("[train] --batch {} and --grad-accum {} must be positive", o_.batch, o_.grad_accum);
  if (o_.seq > c.max_seq_len)
    fail("[train] --seq {} is longer than the model's context of {} tokens", o_.seq, c.max_seq_len);
  if (data.n_train() == 0) fail("[train] {}: empty training set", data.source);
  if (data.train_windows && data.train_windows->seq > o_.seq)
    fail("[train] {}: windows of {} tokens exceed --seq {}", data.source, data.train_windows->seq,
         o_.seq);
  for (const Example& e : data.train)
    if (static_cast<int64_t>(e.tokens.size()) > o_.seq)
      fail("[train] {}: a sequence of {} tokens exceeds --seq {}", data.source, e.tokens.size(),
           o_.seq);
  // Plan the weights first: a full fine-tuning copy that cannot fit is refused before it is made.
  if (o_.method == TuneMethod::Full) {
    plan_[MemCategory::Weights] = static_cast<size_t>(full_numel(base)) * sizeof(float);
    plan_[MemCategory::Optimizer] = 2 * plan_[MemCategory::Weights];
    check_budget(plan_, o_.mem_budget, "weights and optimizer alone");
    full_ = std::make_unique<FullParams>(base);
  } else {
    plan_[MemCategory::Weights] = base.weight_bytes();
    lora_ = std::make_unique<LoraAdapters>(c, o_.lora);
    lora_->init_peft(o_.seed);
    plan_[MemCategory::Adapters] = lora_->params().size() * sizeof(float);
    plan_[MemCategory::Optimizer] = 2 * plan_[MemCategory::Adapters];
  }
  // Adapters on some layers only (--lora-layers, partial tuning): nothing below the lowest one
  // is trained, so the backward stops there and activations are saved from there up only.
  // The gradients are exactly those of a backward down to layer 0 (tests/train/window_test).
  l0_ = 0;
  if (lora_ && !o_.lora.layers.empty())
    l0_ = *std::min_element(o_.lora.layers.begin(), o_.lora.layers.end());
  EngineOptions eo{o_.seq, o_.checkpoint_activations, 128};
  eo.max_window = c.n_layers - l0_;
  engine_ = std::make_unique<TrainEngine>(base, lora_.get(), full_.get(), eo);
  const MemoryPlan e = engine_->plan();
  for (MemCategory k : {MemCategory::Gradients, MemCategory::Activations, MemCategory::Scratch})
    plan_[k] = e[k];
  check_budget(plan_, o_.mem_budget, "before the first step");
  engine_->allocate();
  std::vector<ParamSpan> spans;
  if (lora_)
    spans.push_back({lora_->params().data(), engine_->lora_grad(), lora_->params().size(), true});
  if (full_)
    for (const FullParams::Entry& en : full_->entries())
      spans.push_back({full_->params().data() + en.off, engine_->full_grad() + en.off,
                       static_cast<size_t>(en.numel), en.decay});
  opt_ = std::make_unique<AdamW>(std::move(spans), o_.adamw);
  order_ = std::make_unique<DataOrder>(data.n_train(), o_.seed);
  if (o_.resume) load_checkpoint();
}

Trainer::~Trainer() = default;

const Model& Trainer::model() const { return full_ ? full_->model() : base_; }

double Trainer::validation_loss() {
  const size_t n = std::min<size_t>(data_.n_val(), static_cast<size_t>(o_.val_max));
  if (n == 0) return -1;
  double sum = 0;
  int64_t tokens = 0;
  Example buf;
  for (size_t i = 0; i < n; ++i) {
    const Example& e = data_.val_at(i, buf);
    const StepResult r = engine_->run(e.tokens.data(), e.targets.data(),
                                      static_cast<int64_t>(e.tokens.size()), false, 0.f, 0);
    sum += r.loss_sum;
    tokens += r.tokens;
  }
  return tokens ? sum / double(tokens) : -1;
}

void Trainer::run(const std::function<void(const StepLog&)>& on_step, int64_t stop_after) {
  std::unique_ptr<std::ofstream> metrics;
  if (!o_.out.empty()) {
    std::filesystem::create_directories(o_.out);
    // A resumed run continues the curve from its checkpoint: drop lines of steps it will redo.
    truncate_metrics(o_.out + "/metrics.jsonl", step_);
    metrics = std::make_unique<std::ofstream>(o_.out + "/metrics.jsonl", std::ios::app);
    if (!*metrics) fail("[train] cannot open {}/metrics.jsonl for writing", o_.out);
  }
  const int64_t per_step = int64_t(o_.batch) * o_.grad_accum;
  int64_t done = 0;
  std::vector<const Example*> batch(per_step);
  std::vector<Example> bufs(per_step);
  while (step_ < o_.steps && (stop_after < 0 || done < stop_after)) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t loss_tokens = 0, in_tokens = 0;
    for (int64_t k = 0; k < per_step; ++k) {
      const Example*& b = batch[k];
      b = &data_.train_at(order_->next(), bufs[k]);
      for (int32_t t : b->targets) loss_tokens += t >= 0;
      in_tokens += static_cast<int64_t>(b->tokens.size());
    }
    engine_->zero_grad();
    const float scale = loss_tokens ? 1.f / float(loss_tokens) : 0.f;
    double loss_sum = 0;
    for (const Example* b : batch) {
      const uint64_t dseed = rng_.next();
      loss_sum += engine_
                      ->run(b->tokens.data(), b->targets.data(),
                            static_cast<int64_t>(b->tokens.size()), true, scale, dseed, l0_)
                      .loss_sum;
    }
    if (!std::isfinite(loss_sum))  // stop before the update: the last checkpoint stays good
      fail("[train] step {}: loss is {}; stopped before updating (check --lr and the data)",
           step_ + 1, loss_sum);
    const float lr = lr_at(o_.schedule, o_.lr, step_, o_.warmup, o_.steps, o_.min_lr);
    StepLog log;
    log.grad_norm = opt_->step(lr);
    ++step_;
    ++done;
    log.step = step_;
    log.loss = loss_tokens ? loss_sum / double(loss_tokens) : 0;
    log.lr = lr;
    log.tokens = loss_tokens;
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    elapsed_ += log.seconds;
    log.elapsed = elapsed_;
    log.tokens_per_s = in_tokens / log.seconds;
    log.eta = elapsed_ / double(done) * double(o_.steps - step_);
    if ((o_.val_every > 0 && step_ % o_.val_every == 0) || step_ == o_.steps)
      log.val_loss = validation_loss();
    log.peak_rss = peak_rss_bytes();
    if (metrics) {
      nlohmann::json j = {{"step", log.step},
                          {"loss", log.loss},
                          {"lr", log.lr},
                          {"grad_norm", log.grad_norm},
                          {"tokens", log.tokens},
                          {"seconds", log.seconds},
                          {"tokens_per_s", log.tokens_per_s},
                          {"peak_rss_mb", log.peak_rss / 1048576.0}};
      if (log.val_loss >= 0) j["val_loss"] = log.val_loss;
      *metrics << j.dump() << "\n";
      metrics->flush();
    }
    if (on_step) on_step(log);
    if (!o_.out.empty() && o_.save_every > 0 && step_ % o_.save_every == 0 && step_ < o_.steps)
      save_checkpoint();
  }
  if (!o_.out.empty()) {
    save_checkpoint();
    if (step_ == o_.steps) save_outputs();
  }
}

namespace {
std::vector<float>& trainable(LoraAdapters* l, FullParams* f) {
  return l ? l->params() : f->params();
}
}  // namespace

void Trainer::save_checkpoint() {
  const std::string dir = o_.out + "/checkpoint";
  std::filesystem::create_directories(dir);
  std::vector<float>& p = trainable(lora_.get(), full_.get());
  // The tensors go to a step-named file first; the JSON that names it is renamed into place
  // last, so a crash at any point leaves the previous complete checkpoint in force.
  const std::string st = fmt::format("state-{}.safetensors", step_);
  const std::vector<float>& adam = opt_->state();
  write_safetensors_f32(
      dir + "/" + st,
      std::vector<F32View>{{"params", {int64_t(p.size())}, p.data(), p.size()},
                           {"adam", {int64_t(adam.size())}, adam.data(), adam.size()}});
  uint64_t rs[4];
  rng_.get_state(rs);
  nlohmann::json j = {{"step", step_},
                      {"state_file", st},
                      {"adam_t", opt_->t()},
                      {"data_epoch", order_->epoch()},
                      {"data_pos", order_->pos()},
                      {"rng", {rs[0], rs[1], rs[2], rs[3]}},
                      {"elapsed", elapsed_},
                      {"n_params", p.size()}};
  std::string old;
  if (std::filesystem::exists(dir + "/trainer_state.json"))
    old = nlohmann::json::parse(read_file(dir + "/trainer_state.json")).value("state_file", "");
  write_file_atomic(dir + "/trainer_state.json", j.dump(2) + "\n");
  if (!old.empty() && old != st) std::filesystem::remove(dir + "/" + old);
}

bool Trainer::load_checkpoint() {
  const std::string dir = o_.out + "/checkpoint", js = dir + "/trainer_state.json";
  if (o_.out.empty() || !std::filesystem::exists(js)) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(js));
  } catch (const nlohmann::json::exception& e) {
    fail("[train] {}: malformed checkpoint state: {}", js, e.what());
  }
  std::vector<float>& p = trainable(lora_.get(), full_.get());
  if (j.at("n_params").get<size_t>() != p.size())
    fail(
        "[train] {}: checkpoint holds {} trainable values, this run has {} (different model or "
        "adapter settings?)",
        js, j.at("n_params").get<size_t>(), p.size());
  for (NamedF32& t : read_safetensors_f32(dir + "/" + j.at("state_file").get<std::string>())) {
    std::vector<float>& dst = t.name == "params" ? p : opt_->state();
    if (t.data.size() != dst.size())
      fail("[train] {}: tensor '{}' has {} values, expected {}", dir, t.name, t.data.size(),
           dst.size());
    // Copy into place: the optimizer holds pointers into these buffers.
    std::copy(t.data.begin(), t.data.end(), dst.begin());
  }
  step_ = j.at("step").get<int64_t>();
  opt_->set_t(j.at("adam_t").get<int64_t>());
  order_->restore(j.at("data_epoch").get<int64_t>(), j.at("data_pos").get<int64_t>());
  uint64_t rs[4];
  for (int i = 0; i < 4; ++i) rs[i] = j.at("rng")[i].get<uint64_t>();
  rng_.set_state(rs);
  elapsed_ = j.value("elapsed", 0.0);
  return true;
}

void Trainer::save_outputs() {
  if (lora_) lora_->save(o_.out, o_.base_model);
  if (full_) save_hf_dir(full_->checkpoint(), o_.out);
}

void merge_adapter(const Model& base, const LoraAdapters& a, const std::string& out_dir) {
  FullParams merged(base);
  const ModelConfig& c = base.config();
  static const char* names[kLoraTargets] = {
      "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  for (int l = 0; l < c.n_layers; ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      if (!a.has(l, tt)) continue;
      const size_t off = merged.offset(fmt::format("model.layers.{}.{}.weight", l, names[t]));
      a.merge_into(l, tt, merged.params().data() + off);
    }
  save_hf_dir(merged.checkpoint(), out_dir);
}

}  // namespace edgellm
