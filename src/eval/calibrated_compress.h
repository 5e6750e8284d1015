// Calibrated compression of a whole model, layer by layer (SparseGPT/GPTQ's sequential scheme):
// the statistics of layer l's linears (Hessians for GPTQ/SparseGPT, column norms for Wanda) are
// collected on the hidden states that leave the ALREADY COMPRESSED layers < l, so each layer
// corrects for the error of the ones before it. Within a layer the seven linears see the inputs
// of the dense layer l (one pass, as SparseGPT does without "true sequential").
//
// It drives compress_checkpoint (compress/compress_model.h) with a LinearCalib that advances the
// hidden states lazily: the first linear of layer l asks for statistics, which runs the
// calibration windows through the compressed layer l−1 (its packed tensors, just produced) and
// then through the dense layer l with the taps on. Memory: the packed output, the source (the
// model's mapping or arena), two [Σ T_i, C] hidden-state buffers and one layer's statistics.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "compress/compress_model.h"
#include "model/model.h"

namespace edgellm {

// `m` is the dense source (its checkpoint is compressed); windows the calibration sequences.
// Linears whose spec needs no statistics (rtn + none/magnitude) get none; the untied head
// (plan-dependent) gets none either, so it must not ask for gptq/wanda/sparsegpt.
Checkpoint compress_model_calibrated(const Model& m,
                                     const std::vector<std::vector<int32_t>>& windows,
                                     const LinearPlan& plan,
                                     const nlohmann::json& record = nlohmann::json::object(),
                                     const LinearDone& done = {});

}  // namespace edgellm
