// native/ops.h: declarations of every kernel the addon exports (one op family per .cc file).
//
// What it is: the list addon.cc registers. What it is not: documentation of the arguments; each definition
// carries its JS signature in a comment, and src/backend/native/binding.ts holds the typed declarations.
#pragma once

#include <napi.h>

namespace rn {

// memory.cc
Napi::Value fromArray(const Napi::CallbackInfo& info);
Napi::Value zeros(const Napi::CallbackInfo& info);
Napi::Value toArray(const Napi::CallbackInfo& info);
Napi::Value reshape(const Napi::CallbackInfo& info);
Napi::Value dispose(const Napi::CallbackInfo& info);
Napi::Value layoutOf(const Napi::CallbackInfo& info);
// eltwise.cc
Napi::Value add(const Napi::CallbackInfo& info);
Napi::Value addInPlace(const Napi::CallbackInfo& info);
Napi::Value scale(const Napi::CallbackInfo& info);
Napi::Value relu(const Napi::CallbackInfo& info);
Napi::Value reluBackward(const Napi::CallbackInfo& info);
Napi::Value addRelu(const Napi::CallbackInfo& info);
Napi::Value sum(const Napi::CallbackInfo& info);
Napi::Value sgdStep(const Napi::CallbackInfo& info);
// conv.cc
Napi::Value conv2d(const Napi::CallbackInfo& info);
Napi::Value conv2dBackwardData(const Napi::CallbackInfo& info);
Napi::Value conv2dBackwardWeights(const Napi::CallbackInfo& info);
// conv_infer.cc
Napi::Value conv2dInfer(const Napi::CallbackInfo& info);
Napi::Value freeze(const Napi::CallbackInfo& info);
// batchnorm.cc
Napi::Value batchNorm2d(const Napi::CallbackInfo& info);
Napi::Value batchNorm2dBackward(const Napi::CallbackInfo& info);
// pool.cc
Napi::Value avgPool2d(const Napi::CallbackInfo& info);
Napi::Value avgPool2dBackward(const Napi::CallbackInfo& info);
// linear.cc
Napi::Value linear(const Napi::CallbackInfo& info);
Napi::Value linearBackward(const Napi::CallbackInfo& info);
Napi::Value poolLinearInfer(const Napi::CallbackInfo& info);
// softmax.cc
Napi::Value softmax(const Napi::CallbackInfo& info);
Napi::Value logSoftmax(const Napi::CallbackInfo& info);
Napi::Value softmaxBackward(const Napi::CallbackInfo& info);
Napi::Value logSoftmaxBackward(const Napi::CallbackInfo& info);
Napi::Value crossEntropy(const Napi::CallbackInfo& info);
Napi::Value crossEntropyBackward(const Napi::CallbackInfo& info);

}  // namespace rn
