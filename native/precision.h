// native/precision.h: the precision convolutions and linear layers compute in (fp32, or bf16 mixed precision).
//
// What it is: one process-wide setting, as PyTorch's CPU autocast: under bf16, convolution and linear read their
// inputs and weights as bfloat16 and accumulate and write in float32; everything else (batch norm and its
// statistics, the loss, the weights themselves and SGD) stays float32. Tensors between kernels stay float32, so
// no other op changes, with one exception: an inference graph's convolution whose output only feeds further
// convolutions writes it in bf16 (conv_infer.cc, `chained`). bf16 is refused on a CPU whose oneDNN kernels would only emulate it (without
// AVX512_BF16 or AMX-BF16 it runs several times slower than fp32), with a message naming the instructions.
// What it is not: the kernels (conv.cc, linear.cc read it).
#pragma once

#include <string>

#include "context.h"

namespace rn {

/** True under bf16 mixed precision. */
bool bf16Compute();
/** The data type convolution and linear inputs and weights are read in: bf16 or f32. */
memory::data_type computeDt();
/** Why bf16 cannot run here, or "" when it can (the CPU's oneDNN ISA has native bf16 instructions). */
std::string bf16Unavailable();

// exports: setPrecision("fp32" | "bf16"), precisionInfo() -> { precision, bf16: { ok, reason } }
Napi::Value setPrecision(const Napi::CallbackInfo& info);
Napi::Value precisionInfo(const Napi::CallbackInfo& info);

}  // namespace rn
