// Op trace of one tuning iteration (HWSIM.md §1): every GEMM and element-wise op of one
// micro-batch's forward, exit head, backward and the optimizer update, with shapes, the weight
// bit-width and sparsity, and the bytes each op moves per data class. The simulator, the schedule
// search and the CPU planner all consume this one trace.
//
// Methods (PAPER.md §2):
//   lora    — LoRA on every layer; forward through all L layers and the head, backward through all.
//   partial — LoRA on the last k layers only; forward through all, backward through the last k.
//   alt     — adaptive layer tuning: forward stops at the chosen exit e (layers [0, e)), the exit
//             head runs there, backward runs through the window [e−m, e) only ("branch" mode:
//             LoRA below the window is gated off, so the frozen prefix is a plain forward).
// Frozen base weights never get a dW GEMM; the exit head is frozen (shared head) in every method.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace edgellm::hwsim {

enum class Method : uint8_t { Lora, Partial, Alt };
const char* method_name(Method m);
Method parse_method(const std::string& s);  // "lora" | "partial" | "alt"

struct TuneConfig {
  Method method = Method::Lora;
  int exit_layer = 0;            // alt: forward runs layers [0, exit_layer) (1-based exit); 0 = L
  int window = 0;                // alt: m trained layers below the exit; partial: k last layers
  std::vector<int> bits;         // [L] weight bits per decoder layer; empty = the model's record
  std::vector<double> sparsity;  // [L] fraction of zero weights per layer; empty = the model's
  int base_bits = 8;             // bits of the uncompressed baseline, embeddings and exit heads
  int batch = 1;                 // B: sequences per micro-batch
  int seq = 512;                 // S: tokens per sequence
  int lora_rank = 8;             // r: on q,k,v,o,gate,up,down of every trained layer
  int act_bytes = 2;             // bytes per activation / activation-gradient element (bf16)
  int state_bytes = 4;           // bytes per LoRA parameter, gradient and AdamW moment (fp32)
  bool skip_bottom_dx = true;    // the lowest trained layer computes no gradient for its input

  // Checks every field against the model (throws Error naming the field and value).
  void validate(const ModelConfig& m) const;
  int exit_or_last(const ModelConfig& m) const { return exit_layer > 0 ? exit_layer : m.n_layers; }
  // Trained layers [first, last) of this iteration.
  int first_trained(const ModelConfig& m) const;
  int last_trained(const ModelConfig& m) const;
  // Weight bits / sparsity of linear t in layer l: `bits` / `sparsity` when given, else the
  // model's per-layer record (ModelConfig::layers, e.g. from a compressed model's config.json),
  // else base_bits (full-precision linears run at the base rate) / 0.
  int linear_bits(const ModelConfig& m, int l, LinearId t) const;
  double linear_sparsity(const ModelConfig& m, int l, LinearId t) const;
};

enum class OpKind : uint8_t { Gemm, Elementwise };
enum class Phase : uint8_t { Forward, Backward, Update };
const char* phase_name(Phase p);

// Bytes are per micro-batch. Data classes (what the placement fractions act on):
//   weights     — frozen base weights, compressed (bits, sparsity bitmap, per-channel scales);
//   saved       — activations saved in the forward pass for the backward pass;
//   state       — LoRA parameters, their gradients and AdamW moments ("gradients" class);
//   transient   — activations and activation gradients flowing from op to op; they live in
//                 DRAM (or stay on chip when small), never on SSD.
struct Op {
  std::string name;  // e.g. "L3.q_proj.dX"
  int layer = 0;     // decoder layer; -1 embedding; L = exit head; L+1 optimizer
  Phase phase = Phase::Forward;
  OpKind kind = OpKind::Gemm;
  // GEMM: `count` independent products (M×K)·(K×N) (count > 1 for per-head attention).
  int64_t m = 0, n = 0, k = 0, count = 1;
  double a_elem_bytes = 0;        // bytes per element of the M×K operand
  double b_elem_bytes = 0;        // bytes per element of the K×N operand
  bool weight_operand = false;    // K×N operand is a frozen base weight
  bool precision_scaled = false;  // MAC rate follows weight_bits (activation × quantized weight)
  int weight_bits = 0;            // bits of the weight operand (0 = none)
  double sparsity = 0;            // sparsity of the weight operand
  int64_t elements = 0;           // element-wise ops: elements processed
  double weight_read = 0;         // bytes of frozen weights read
  double saved_write = 0;         // bytes of activations saved for backward
  double saved_read = 0;          // bytes of saved activations read back
  double state_read = 0;          // bytes of LoRA params / grads / moments read
  double state_write = 0;         // bytes of LoRA grads / params / moments written
  double transient_read = 0;      // bytes of op-to-op activations (gradients) read
  double transient_write = 0;     // bytes of op-to-op activations (gradients) written

  int64_t macs() const { return count * m * n * k; }
  double flops() const { return 2.0 * static_cast<double>(macs()); }
};

struct Trace {
  std::vector<Op> ops;
  int n_layers = 0;       // L of the model
  int exit_layer = 0;     // layers run forward
  int first_trained = 0;  // trained window [first_trained, last_trained)
  int last_trained = 0;
  int64_t tokens = 0;            // B·S
  double weights_stored = 0;     // bytes of all frozen weights at rest (whole model)
  double lora_state_stored = 0;  // bytes of params+grads+2 moments of every LoRA the method trains
  double saved_peak = 0;         // bytes of saved activations held at the start of backward
  double lora_params_trained = 0;  // LoRA parameters updated by this iteration

  double total_flops() const;
  double gemm_flops(Phase p) const;
  nlohmann::json to_json(bool with_ops = true) const;
};

// Bytes at rest of one out×in linear with `bits`-bit weights and `sparsity` zeros: the smaller
// of dense packing and value+bitmap packing (unstructured sparsity saves bytes, not cycles),
// plus one fp16 scale per output channel.
double linear_weight_bytes(int64_t in, int64_t out, int bits, double sparsity);

Trace build_trace(const ModelConfig& model, const TuneConfig& tune);

// A model shape by preset name ("llama-7b", see ModelConfig::preset_names()) or an HF
// config.json path; errors name the file and field.
ModelConfig load_model_shape(const std::string& name_or_path);

// "8" → every layer 8 bits; "4,4,5,..." → one value per layer (must give n_layers values).
std::vector<int> parse_layer_bits(const std::string& s, int n_layers);
std::vector<double> parse_layer_sparsity(const std::string& s, int n_layers);

}  // namespace edgellm::hwsim
