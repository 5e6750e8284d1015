#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

TuneMethod tune_method_from_name(const std::string& name) {
  if (name == "lora") return TuneMethod::Lora;
  if (name == "full") return TuneMethod::Full;
  if (name == "alt") return TuneMethod::Alt;
  fail("[train] --method '{}' unknown (lora, full, alt)", name);
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
    : base_(base), data_(data), o_(std::move(o)), math_(o_.precision), rng_(o_.seed) {
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
  // The moments' memory: all of them, or offloaded, the staging buffer they are read through.
  auto optimizer_bytes = [&](size_t n, size_t n_spans) {
    return o_.adamw.offload_dir.empty() ? adamw_state_bytes(n, n_spans, o_.adamw.state)
                                        : adamw_offload_stage_bytes(n, o_.adamw.state);
  };
  // Plan the weights first: a full fine-tuning copy that cannot fit is refused before it is made.
  MemoryPlan fixed;  // weights, adapters and optimizer of the adapters or the copy
  if (o_.method == TuneMethod::Full) {
    fixed[MemCategory::Weights] = static_cast<size_t>(full_numel(base)) * sizeof(float);
    fixed[MemCategory::Optimizer] = optimizer_bytes(static_cast<size_t>(full_numel(base)),
                                                    base.checkpoint().tensors.all().size());
    check_budget(fixed, o_.mem_budget, "weights and optimizer alone");
    full_ = std::make_unique<FullParams>(base);
  } else {
    fixed[MemCategory::Weights] = base.weight_bytes();
    lora_ = std::make_unique<LoraAdapters>(c, o_.lora);
    lora_->init_peft(o_.seed);
    fixed[MemCategory::Adapters] = lora_->params().size() * sizeof(float);
    fixed[MemCategory::Optimizer] =
        optimizer_bytes(lora_->params().size(), static_cast<size_t>(c.n_layers));
  }
  // The step's token buffers (run()): filled from the corpus when the data are windows over it,
  // else the examples are read where the dataset holds them.
  const size_t step_buffers = data.train_windows
                                  ? static_cast<size_t>(o_.batch * o_.grad_accum + 1) *
                                        static_cast<size_t>(o_.seq) * 2 * sizeof(int32_t)
                                  : 0;
  // The plan of a run with engine e, exit heads of head_values values and a prefix cache of
  // cache_mb MiB: the one composition both the planner's candidates and this run go through.
  auto compose = [&](const TrainEngine& e, size_t head_values, int64_t cache_mb) {
    MemoryPlan p = fixed;
    const MemoryPlan ep = e.plan();
    for (MemCategory k : {MemCategory::Gradients, MemCategory::Activations, MemCategory::Scratch,
                          MemCategory::Workspace})
      p[k] = ep[k];
    p[MemCategory::Adapters] += head_values * sizeof(float);
    // One optimizer over the adapters and one span per owned exit head (at most one exit per
    // layer); offloaded, one staging buffer for all of them.
    if (head_values)
      p[MemCategory::Optimizer] = optimizer_bytes(lora_->params().size() + head_values,
                                                  2 * static_cast<size_t>(c.n_layers));
    p[MemCategory::Gradients] += head_values * sizeof(float);  // head_grad_
    p[MemCategory::Workspace] += step_buffers;
    // In memory the cap; on disk one entry's staging buffer (the file is not process memory).
    p[MemCategory::PrefixCache] =
        o_.alt.prefix_cache_dir.empty() || cache_mb == 0
            ? static_cast<size_t>(cache_mb) << 20
            : prefix_cache_entry_bytes(o_.alt.prefix_cache_dtype, o_.seq, c.dim);
    return p;
  };
  auto engine_options = [&](bool ckpt, int recompute, int64_t head_rows, int window) {
    EngineOptions eo{o_.seq, ckpt, head_rows};
    eo.recompute_layers = recompute;
    eo.max_window = window;
    return eo;
  };
  // Adapters on some layers only (--lora-layers, partial tuning): nothing below the lowest one
  // is trained, so the backward stops there and activations are saved from there up only.
  // The gradients are exactly those of a backward down to layer 0 (tests/train/window_test).
  l0_ = 0;
  if (lora_ && !o_.lora.layers.empty())
    l0_ = *std::min_element(o_.lora.layers.begin(), o_.lora.layers.end());
  int max_window = c.n_layers - l0_;
  if (o_.method == TuneMethod::Alt) {
    const int L = c.n_layers;
    if (!o_.lora.layers.empty())
      fail("[train] --method alt puts adapters in every layer; --lora-layers is not for it");
    // Cloned heads are trainable fp32 [V, C] matrices: under bf16 math their GEMMs would need
    // workspace the engine does not plan (it plans the model's own head).
    if (o_.precision == MatmulMath::Bf16 && o_.alt.head_mode == ExitHeadMode::Cloned)
      fail("[train] --precision bf16 with --head-mode cloned is not supported (use shared heads)");
    ExitConfig ec;
    ec.head_mode = o_.alt.head_mode;
    ec.lora_mode = o_.alt.lora_mode;
    ec.schedule = exit_schedule_name(o_.alt.schedule);
    const bool branch = o_.alt.lora_mode == ExitLoraMode::Branch;
    AltKnobs k;
    k.depths = o_.alt.exit_layers.empty() ? exit_depths(L, o_.alt.exits) : o_.alt.exit_layers;
    k.window =
        o_.alt.window > 0 ? o_.alt.window : exit_window(L, static_cast<int>(k.depths.size()));
    if (k.window > L) fail("[train] --window {} exceeds the model's {} layers", k.window, L);
    k.checkpoint = o_.checkpoint_activations;
    k.recompute = o_.recompute_layers;
    k.head_rows = o_.head_rows;
    k.prefix_cache_mb = branch ? o_.alt.prefix_cache_mb : 0;  // cumulative mode never caches
    if (o_.mem_budget > 0) {
      AltPlanRequest r;
      r.n_layers = L;
      r.start = k;
      r.exits_fixed = o_.alt.exits_set || !o_.alt.exit_layers.empty();
      r.window_fixed = o_.alt.window > 0;
      r.checkpoint_fixed = o_.checkpoint_activations;
      r.recompute_min = o_.recompute_layers;
      r.prefix_cache_used = branch && k.prefix_cache_mb > 0;
      r.prefix_cache_fixed = o_.alt.prefix_cache_set;
      r.budget = o_.mem_budget;
      // Each candidate priced by a measuring engine of its options: nothing is allocated.
      auto evaluate = [&](const AltKnobs& x) {
        ExitConfig xc = ec;
        xc.depths = x.depths;
        xc.window = x.window;
        const TrainEngine e(base, lora_.get(), nullptr,
                            engine_options(x.checkpoint, x.recompute, x.head_rows, x.window));
        return compose(e, ExitHeads::count_params(c, xc), x.prefix_cache_mb);
      };
      alt_choice_ = std::make_unique<AltPlanChoice>(choose_alt_plan(r, evaluate));
      k = alt_choice_->knobs;
    }
    // The knobs in force from here on (and recorded in run.json).
    o_.checkpoint_activations = k.checkpoint;
    o_.recompute_layers = k.recompute;
    o_.head_rows = k.head_rows;
    if (branch) o_.alt.prefix_cache_mb = k.prefix_cache_mb;
    window_ = k.window;
    ec.depths = k.depths;
    ec.window = window_;
    heads_ = std::make_unique<ExitHeads>(c, ec);
    heads_->init_from(base);
    head_grad_.assign(heads_->params().size(), 0.f);
    picker_.schedule = o_.alt.schedule;
    picker_.seed = o_.seed;
    picker_.total_steps = o_.steps;
    picker_.weights = o_.alt.exit_weights;
    picker_.depths = ec.depths;
    picker_.pick(0);       // validates the weights before anything runs
    max_window = window_;  // activations for the window of m layers, whatever the depth
  }
  engine_ = std::make_unique<TrainEngine>(
      base, lora_.get(), full_.get(),
      engine_options(o_.checkpoint_activations, o_.recompute_layers, o_.head_rows, max_window));
  plan_ = compose(
      *engine_, head_grad_.size(),
      heads_ && heads_->config().lora_mode == ExitLoraMode::Branch ? o_.alt.prefix_cache_mb : 0);
  if (alt_choice_)  // planned = allocated: the chosen candidate's plan is this engine's
    EDGELLM_CHECK(plan_.bytes == alt_choice_->plan.bytes, "planner's plan {} != run's plan {}",
                  alt_choice_->plan.total(), plan_.total());
  check_budget(plan_, o_.mem_budget, "before the first step");
  engine_->allocate();
  std::vector<ParamSpan> spans;
  if (lora_ && heads_) {
    // One span per layer's adapters and one per exit head, so a step updates exactly the
    // picked exit's window and head (AdamW active flags).
    for (int l = 0; l < c.n_layers; ++l) {
      if (!lora_->layer_has_any(l)) continue;
      const auto [lo, hi] = engine_->lora_span(l, l + 1);
      // The gradients are bound to the engine's window buffer before each update.
      spans.push_back({lora_->params().data() + lo, nullptr, hi - lo, true});
      span_layer_.push_back(l);
      span_range_.emplace_back(lo, hi);
    }
    n_lora_spans_ = spans.size();
    for (int i = 0; i < heads_->n_exits(); ++i) {
      exit_span_.push_back(-1);
      if (!heads_->own(i)) continue;
      exit_span_.back() = static_cast<int>(spans.size());
      const size_t off = heads_->norm_offset(i);
      spans.push_back(
          {heads_->params().data() + off, head_grad_.data() + off, heads_->params_of(i), false});
    }
    active_.assign(spans.size(), 0);
  } else if (lora_) {
    spans.push_back({lora_->params().data(), nullptr, lora_->params().size(), true});
    span_range_.emplace_back(0, lora_->params().size());
    n_lora_spans_ = 1;
  }
  if (full_)
    for (const FullParams::Entry& en : full_->entries())
      spans.push_back({full_->params().data() + en.off, engine_->full_grad() + en.off,
                       static_cast<size_t>(en.numel), en.decay});
  opt_ = std::make_unique<AdamW>(std::move(spans), o_.adamw);
  // 8-bit moments were planned with an upper bound on their blocks (checked against the budget);
  // the plan now holds what was allocated (equal for fp32).
  EDGELLM_CHECK(opt_->state_bytes() <= plan_[MemCategory::Optimizer],
                "optimizer state {} B over its planned {} B", opt_->state_bytes(),
                plan_[MemCategory::Optimizer]);
  plan_[MemCategory::Optimizer] = opt_->state_bytes();
  order_ = std::make_unique<DataOrder>(data.n_train(), o_.seed);
  if (o_.resume) load_checkpoint();
}

Trainer::~Trainer() = default;

const Model& Trainer::model() const { return full_ ? full_->model() : base_; }

double Trainer::validation_loss() {
  if (heads_) {
    const std::vector<double> v = validation_exit_losses();
    return v.empty() ? -1 : v.back();
  }
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

std::vector<double> Trainer::validation_exit_losses() {
  std::vector<double> out;
  if (!heads_) return out;
  const size_t n = std::min<size_t>(data_.n_val(), static_cast<size_t>(o_.val_max));
  if (n == 0) return out;
  // As at inference: every adapter active, one stream, each exit's head on its depth.
  engine_->set_lora_below_window(true);
  Example buf;
  for (int i = 0; i < heads_->n_exits(); ++i) {
    const HeadWeights hw = heads_->weights(i, base_);
    engine_->set_exit_head(heads_->own(i) ? &hw : nullptr, nullptr, nullptr);
    double sum = 0;
    int64_t tokens = 0;
    for (size_t k = 0; k < n; ++k) {
      const Example& e = data_.val_at(k, buf);
      const StepResult r =
          engine_->run(e.tokens.data(), e.targets.data(), static_cast<int64_t>(e.tokens.size()),
                       false, 0.f, 0, 0, heads_->depth(i));
      sum += r.loss_sum;
      tokens += r.tokens;
    }
    out.push_back(tokens ? sum / double(tokens) : -1);
  }
  engine_->set_exit_head(nullptr, nullptr, nullptr);
  return out;
}

void Trainer::bind_lora_grads() {
  const TrainEngine::GradRange g = engine_->lora_grads();
  for (size_t k = 0; k < n_lora_spans_; ++k) {
    if (heads_ && !active_[k]) {
      opt_->set_grad(k, nullptr);  // not updated this step; its gradients are not held
      continue;
    }
    const auto [lo, hi] = span_range_[k];
    EDGELLM_CHECK(lo >= g.lo && hi <= g.hi, "adapter parameters [{}, {}) outside the [{}, {}) held",
                  lo, hi, g.lo, g.hi);
    opt_->set_grad(k, g.g + (lo - g.lo));
  }
}

double Trainer::step_alt(const std::vector<const Example*>& batch, const std::vector<size_t>& idx,
                         float scale, int e) {
  const int d = heads_->depth(e), l0 = std::max(0, d - window_);
  for (size_t k = 0; k < n_lora_spans_; ++k)
    active_[k] = span_layer_[k] >= l0 && span_layer_[k] < d;
  for (size_t k = n_lora_spans_; k < active_.size(); ++k) active_[k] = 0;
  float *ng = nullptr, *hg = nullptr;
  if (heads_->own(e)) {
    active_[exit_span_[e]] = 1;
    const size_t off = heads_->norm_offset(e);
    std::fill_n(head_grad_.begin() + static_cast<std::ptrdiff_t>(off), heads_->params_of(e), 0.f);
    ng = head_grad_.data() + off;
    if (heads_->config().head_mode == ExitHeadMode::Cloned)
      hg = head_grad_.data() + heads_->head_offset(e);
  }
  const HeadWeights hw = heads_->weights(e, base_);
  engine_->set_exit_head(heads_->own(e) ? &hw : nullptr, ng, hg);
  const bool branch = heads_->config().lora_mode == ExitLoraMode::Branch;
  engine_->set_lora_below_window(!branch);
  // Branch mode: below the window the frozen base runs with no adapter (and so no dropout): the
  // window's input depends on the sequence and l0 only, and is cached across epochs.
  const bool cache = branch && l0 > 0 && o_.alt.prefix_cache_mb > 0;
  if (cache && !prefix_cache_)
    prefix_cache_ =
        o_.alt.prefix_cache_dir.empty()
            ? std::make_unique<PrefixCache>(o_.alt.prefix_cache_dtype,
                                            static_cast<size_t>(o_.alt.prefix_cache_mb) << 20)
            : std::make_unique<PrefixCache>(o_.alt.prefix_cache_dtype,
                                            static_cast<size_t>(o_.alt.prefix_cache_mb) << 20,
                                            o_.alt.prefix_cache_dir);
  const int64_t C = base_.config().dim;
  double loss_sum = 0;
  for (size_t k = 0; k < batch.size(); ++k) {
    const Example& b = *batch[k];
    const int64_t T = static_cast<int64_t>(b.tokens.size());
    const uint64_t dseed = rng_.next();
    const uint64_t key = (static_cast<uint64_t>(idx[k]) << 17) | static_cast<uint64_t>(l0);
    // A hit decodes straight into the engine's window input (no second [T, C] buffer).
    float* x0 = engine_->window_input_buffer();
    if (cache && prefix_cache_->get(key, x0, T, C)) {
      ++cache_stats_.hits;
      loss_sum +=
          engine_->run(b.tokens.data(), b.targets.data(), T, true, scale, dseed, l0, d, x0, l0)
              .loss_sum;
      continue;
    }
    // A miss: the frozen prefix runs, and its exact output is kept (first come, first kept) and
    // then rounded as a hit would give it back, before the window reads it.
    if (cache)
      engine_->set_window_input_transform([this, key, C](float* x, int64_t n) {
        prefix_cache_->put(key, x, n, C);
        prefix_cache_->round_trip(x, n, C);
      });
    loss_sum +=
        engine_->run(b.tokens.data(), b.targets.data(), T, true, scale, dseed, l0, d).loss_sum;
    if (!cache) continue;
    ++cache_stats_.misses;
    cache_stats_.bytes = prefix_cache_->bytes();
    cache_stats_.entries = prefix_cache_->entries();
  }
  engine_->set_window_input_transform(nullptr);  // validation runs the model as at inference
  exit_seq_.push_back(e);
  return loss_sum;
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
  std::vector<size_t> idx(per_step);
  std::vector<Example> bufs(per_step);
  while (step_ < o_.steps && (stop_after < 0 || done < stop_after)) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t loss_tokens = 0, in_tokens = 0;
    for (int64_t k = 0; k < per_step; ++k) {
      const Example*& b = batch[k];
      idx[k] = order_->next();
      b = &data_.train_at(idx[k], bufs[k]);
      for (int32_t t : b->targets) loss_tokens += t >= 0;
      in_tokens += static_cast<int64_t>(b->tokens.size());
    }
    engine_->zero_grad();
    const float scale = loss_tokens ? 1.f / float(loss_tokens) : 0.f;
    double loss_sum = 0;
    const int exit = heads_ ? picker_.pick(step_) : -1;
    if (heads_) {
      loss_sum = step_alt(batch, idx, scale, exit);
    } else {
      for (const Example* b : batch) {
        const uint64_t dseed = rng_.next();
        loss_sum += engine_
                        ->run(b->tokens.data(), b->targets.data(),
                              static_cast<int64_t>(b->tokens.size()), true, scale, dseed, l0_)
                        .loss_sum;
      }
    }
    if (!std::isfinite(loss_sum))  // stop before the update: the last checkpoint stays good
      fail("[train] step {}: loss is {}; stopped before updating (check --lr and the data)",
           step_ + 1, loss_sum);
    const float lr = lr_at(o_.schedule, o_.lr, step_, o_.warmup, o_.steps, o_.min_lr);
    StepLog log;
    if (lora_) bind_lora_grads();
    log.grad_norm = opt_->step(lr, heads_ ? &active_ : nullptr);
    if (heads_) {
      log.exit = exit;
      log.exit_depth = heads_->depth(exit);
    }
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
    if ((o_.val_every > 0 && step_ % o_.val_every == 0) || step_ == o_.steps) {
      if (heads_) {
        log.val_exit_loss = validation_exit_losses();
        log.val_loss = log.val_exit_loss.empty() ? -1 : log.val_exit_loss.back();
      } else {
        log.val_loss = validation_loss();
      }
    }
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
      if (log.exit >= 0) {
        j["exit"] = log.exit;
        j["exit_depth"] = log.exit_depth;
      }
      if (!log.val_exit_loss.empty()) {
        j["val_exit_loss"] = log.val_exit_loss;
        if (heads_) j["val_exit_depths"] = heads_->config().depths;
      }
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

std::vector<Trainer::StateTensor> Trainer::state_tensors() {
  auto f32 = [](const char* name, std::vector<float>& v) {
    return StateTensor{name, DType::F32, reinterpret_cast<uint8_t*>(v.data()),
                       v.size() * sizeof(float)};
  };
  // fp32 moments, or the 8-bit moments' per-block scales ("adam") beside their codes.
  std::vector<StateTensor> s{f32("params", trainable(lora_.get(), full_.get())),
                             {"adam", DType::F32, opt_->section_data(AdamW::kState),
                              opt_->section_bytes(AdamW::kState), AdamW::kState}};
  if (opt_->section_bytes(AdamW::kCodes))
    s.push_back({"adam_codes", DType::U8, opt_->section_data(AdamW::kCodes),
                 opt_->section_bytes(AdamW::kCodes), AdamW::kCodes});
  // Alt: the exit heads' parameters (their AdamW moments are part of "adam").
  if (heads_) s.push_back(f32("exit_params", heads_->params()));
  return s;
}

void Trainer::save_checkpoint() {
  const std::string dir = o_.out + "/checkpoint";
  std::filesystem::create_directories(dir);
  std::vector<float>& p = trainable(lora_.get(), full_.get());
  // The tensors go to a step-named file first; the JSON that names it is renamed into place
  // last, so a crash at any point leaves the previous complete checkpoint in force.
  const std::string st = fmt::format("state-{}.safetensors", step_);
  std::vector<TensorOut> outs;
  for (const StateTensor& t : state_tensors()) {
    const std::vector<int64_t> shape{static_cast<int64_t>(t.bytes / dtype_row_bytes(t.dtype, 1))};
    if (t.data) {
      outs.push_back(view_out(t.name, t.dtype, shape, t.data));
      continue;
    }
    // Offloaded moments stream from their file through the writer's buffer.
    TensorOut o;
    o.name = t.name;
    o.dtype = t.dtype;
    o.shape = shape;
    o.read = [this, sec = t.section](uint64_t off, size_t n, uint8_t* dst) {
      opt_->read_section(sec, off, n, dst);
    };
    outs.push_back(std::move(o));
  }
  write_safetensors(dir + "/" + st, outs, {{"format", "pt"}});
  uint64_t rs[4];
  rng_.get_state(rs);
  nlohmann::json j = {{"step", step_},
                      {"state_file", st},
                      {"adam_t", opt_->t()},
                      {"optim_state", optim_state_name(o_.adamw.state)},
                      {"data_epoch", order_->epoch()},
                      {"data_pos", order_->pos()},
                      {"rng", {rs[0], rs[1], rs[2], rs[3]}},
                      {"elapsed", elapsed_},
                      {"n_params", p.size()},
                      {"span_steps", opt_->span_steps()}};
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
  const std::string saved_state = j.value("optim_state", "fp32");
  if (saved_state != optim_state_name(o_.adamw.state))
    fail("[train] {}: checkpoint holds {} optimizer moments, this run asks for {} (--optim-state)",
         js, saved_state, optim_state_name(o_.adamw.state));
  const std::string sf = dir + "/" + j.at("state_file").get<std::string>();
  const std::vector<StateTensor> want = state_tensors();
  std::vector<char> got(want.size(), 0);
  for (const Tensor& t : read_safetensors(sf)) {
    const auto it = std::find_if(want.begin(), want.end(),
                                 [&](const StateTensor& w) { return w.name == t.name; });
    if (it == want.end()) {
      if (t.name == "exit_params")
        fail("[train] {}: checkpoint holds exit heads; this run has none (not --method alt)", dir);
      fail("[train] {}: unexpected tensor '{}'", sf, t.name);
    }
    if (t.dtype != it->dtype || t.nbytes != it->bytes)
      fail("[train] {}: tensor '{}' is {} of {} bytes, expected {} of {}", sf, t.name,
           dtype_name(t.dtype), t.nbytes, dtype_name(it->dtype), it->bytes);
    // Copy into place: the optimizer holds pointers into these buffers. Offloaded moments go to
    // their file a slice at a time, each slice's mapped pages dropped once written, so the
    // checkpoint is never resident whole.
    if (it->data) {
      std::memcpy(it->data, t.data, it->bytes);
    } else {
      constexpr size_t kSlice = size_t{4} << 20;
      for (size_t o = 0; o < it->bytes; o += kSlice) {
        const size_t n = std::min(kSlice, it->bytes - o);
        opt_->write_section(it->section, o, n, t.data + o);
        drop_resident_pages(t.data + o, n);
      }
    }
    got[static_cast<size_t>(it - want.begin())] = 1;
  }
  for (size_t i = 0; i < want.size(); ++i)
    if (!got[i]) fail("[train] {}: checkpoint lacks tensor '{}'", sf, want[i].name);
  step_ = j.at("step").get<int64_t>();
  opt_->set_t(j.at("adam_t").get<int64_t>());
  if (j.contains("span_steps")) {
    const std::vector<int64_t> ss = j["span_steps"].get<std::vector<int64_t>>();
    if (ss.size() != opt_->span_steps().size())
      fail(
          "[train] {}: {} optimizer spans in the checkpoint, {} in this run (other --method or "
          "exits?)",
          js, ss.size(), opt_->span_steps().size());
    opt_->set_span_steps(ss);
  }
  order_->restore(j.at("data_epoch").get<int64_t>(), j.at("data_pos").get<int64_t>());
  uint64_t rs[4];
  for (int i = 0; i < 4; ++i) rs[i] = j.at("rng")[i].get<uint64_t>();
  rng_.set_state(rs);
  elapsed_ = j.value("elapsed", 0.0);
  return true;
}

void Trainer::save_outputs() {
  if (lora_) lora_->save(o_.out, o_.base_model);
  if (heads_) heads_->save(o_.out);
  if (full_) save_hf_dir(full_->checkpoint(), o_.out);
  write_run_record();
}

// OUT/run.json: what this run trained and what it cost here, and OUT/base_config.json: the base
// model's shape with its per-layer bits and sparsity. `edgellm sim --from-run OUT` reads both to
// estimate the same iteration on an edge accelerator (docs/alt.md).
void Trainer::write_run_record() {
  const ModelConfig& c = base_.config();
  write_file_atomic(o_.out + "/base_config.json", c.to_hf_json().dump(2) + "\n");
  const char* method = o_.method == TuneMethod::Full  ? "full"
                       : o_.method == TuneMethod::Alt ? "alt"
                                                      : "lora";
  nlohmann::json lora_layers = nlohmann::json::array();
  if (lora_)
    for (int l = 0; l < c.n_layers; ++l)
      for (int t = 0; t < kLoraTargets; ++t)
        if (lora_->has(l, static_cast<LoraTarget>(t))) {
          lora_layers.push_back(l);
          break;
        }
  nlohmann::json j = {{"method", method},
                      {"base_model", o_.base_model},
                      {"n_layers", c.n_layers},
                      {"seq", o_.seq},
                      {"batch", o_.batch},
                      {"grad_accum", o_.grad_accum},
                      {"rank", o_.lora.rank},
                      {"precision", matmul_math_name(o_.precision)},
                      {"optim_state", optim_state_name(o_.adamw.state)},
                      {"optim_storage", o_.adamw.offload_dir.empty() ? "memory" : "disk"},
                      {"lora_layers", lora_layers},
                      {"steps", step_},
                      {"seconds", elapsed_},
                      {"seconds_per_step", step_ > 0 ? elapsed_ / double(step_) : 0.0},
                      {"peak_rss_bytes", peak_rss_bytes()},
                      {"memory_plan", plan_.to_json()},
                      {"memory", plan_json()}};
  if (heads_) {
    j["exit_depths"] = heads_->config().depths;
    j["window"] = heads_->config().window;
    j["lora_mode"] = exit_lora_mode_name(heads_->config().lora_mode);
    j["head_mode"] = exit_head_mode_name(heads_->config().head_mode);
    j["schedule"] = heads_->config().schedule;
  }
  write_file_atomic(o_.out + "/run.json", j.dump(2) + "\n");
}

MemoryPlan Trainer::allocated() const {
  MemoryPlan p = engine_->allocated();
  p[MemCategory::Weights] =
      full_ ? full_->params().capacity() * sizeof(float) : base_.weight_bytes();
  const size_t heads = heads_ ? heads_->params().capacity() * sizeof(float) : 0;
  p[MemCategory::Adapters] = (lora_ ? lora_->params().capacity() * sizeof(float) : 0) + heads;
  p[MemCategory::Optimizer] = opt_->state_bytes();
  p[MemCategory::Gradients] += head_grad_.capacity() * sizeof(float);
  p[MemCategory::Workspace] += step_buffers_;
  p[MemCategory::PrefixCache] = cache_stats_.bytes;
  return p;
}

nlohmann::json Trainer::plan_json() const {
  nlohmann::json j = {{"plan", plan_.to_json()},
                      {"budget", o_.mem_budget},
                      {"optim_storage", o_.adamw.offload_dir.empty() ? "memory" : "disk"},
                      {"checkpoint_activations", o_.checkpoint_activations},
                      {"recompute_layers", engine_->recompute_layers()},
                      {"head_rows", o_.head_rows},
                      // One sequence per forward/backward: batch and accumulation add gradients,
                      // they do not change the peak.
                      {"sequences_per_pass", 1}};
  if (heads_) {
    j["window"] = window_;
    j["exit_depths"] = heads_->config().depths;
    j["prefix_cache_mb"] =
        heads_->config().lora_mode == ExitLoraMode::Branch ? o_.alt.prefix_cache_mb : 0;
    j["prefix_cache_dtype"] = prefix_cache_dtype_name(o_.alt.prefix_cache_dtype);
    j["prefix_cache_storage"] = o_.alt.prefix_cache_dir.empty() ? "memory" : "disk";
  }
  if (alt_choice_) {
    nlohmann::json tried = nlohmann::json::array();
    for (const auto& [k, total] : alt_choice_->tried)
      tried.push_back({{"knobs", k.describe()}, {"total", total}});
    j["planner"] = {{"chosen", alt_choice_->knobs.describe()},
                    {"reason", alt_choice_->reason},
                    {"tried", tried}};
  }
  return j;
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
