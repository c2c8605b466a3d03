// native/addon.cc: the addon's entry point; only the list of exports.
//
// What it is: the module registration of resnet_native.node. What it is not: any logic; kernels live in
// conv.cc, batchnorm.cc, pool.cc, linear.cc, softmax.cc, eltwise.cc, memory.cc; oneDNN state in context.cc and
// buffers.cc; the N-API plumbing (arguments, tensor handles, exports, profile) in napi_*.cc and profile.cc.
// References: node-addon-api NODE_API_MODULE; src/backend/native/binding.ts (the typed declarations).
#include "context.h"
#include "conv_select.h"
#include "ops.h"
#include "precision.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using rn::exportKernel;
  // memory
  exportKernel(env, exports, "fromArray", rn::fromArray);
  exportKernel(env, exports, "zeros", rn::zeros);
  exportKernel(env, exports, "toArray", rn::toArray);
  exportKernel(env, exports, "reshape", rn::reshape);
  exportKernel(env, exports, "dispose", rn::dispose);
  exportKernel(env, exports, "layoutOf", rn::layoutOf, false);
  // elementwise and optimiser
  exportKernel(env, exports, "add", rn::add);
  exportKernel(env, exports, "addInPlace", rn::addInPlace);
  exportKernel(env, exports, "scale", rn::scale);
  exportKernel(env, exports, "relu", rn::relu);
  exportKernel(env, exports, "reluBackward", rn::reluBackward);
  exportKernel(env, exports, "addRelu", rn::addRelu);
  exportKernel(env, exports, "sum", rn::sum);
  exportKernel(env, exports, "sgdStep", rn::sgdStep);
  // convolution, normalisation, pooling, linear
  exportKernel(env, exports, "conv2d", rn::conv2d);
  exportKernel(env, exports, "conv2dBackwardData", rn::conv2dBackwardData);
  exportKernel(env, exports, "conv2dBackwardWeights", rn::conv2dBackwardWeights);
  exportKernel(env, exports, "conv2dInfer", rn::conv2dInfer);
  exportKernel(env, exports, "freeze", rn::freeze, false);
  exportKernel(env, exports, "batchNorm2d", rn::batchNorm2d);
  exportKernel(env, exports, "batchNorm2dBackward", rn::batchNorm2dBackward);
  exportKernel(env, exports, "avgPool2d", rn::avgPool2d);
  exportKernel(env, exports, "avgPool2dBackward", rn::avgPool2dBackward);
  exportKernel(env, exports, "linear", rn::linear);
  exportKernel(env, exports, "linearBackward", rn::linearBackward);
  exportKernel(env, exports, "poolLinearInfer", rn::poolLinearInfer);
  // softmax family
  exportKernel(env, exports, "softmax", rn::softmax);
  exportKernel(env, exports, "logSoftmax", rn::logSoftmax);
  exportKernel(env, exports, "softmaxBackward", rn::softmaxBackward);
  exportKernel(env, exports, "logSoftmaxBackward", rn::logSoftmaxBackward);
  exportKernel(env, exports, "crossEntropy", rn::crossEntropy);
  exportKernel(env, exports, "crossEntropyBackward", rn::crossEntropyBackward);
  // convolution algorithm policy and the benchmark's choices
  exportKernel(env, exports, "setConvPolicy", rn::setConvPolicy, false);
  exportKernel(env, exports, "convChoices", rn::convChoices, false);
  exportKernel(env, exports, "convPolicy", rn::convPolicy, false);
  exportKernel(env, exports, "convDecision", rn::convDecision, false);
  exportKernel(env, exports, "recordConvDecision", rn::recordConvDecision, false);
  // fp32 / bf16 mixed precision
  exportKernel(env, exports, "setPrecision", rn::setPrecision, false);
  exportKernel(env, exports, "precisionInfo", rn::precisionInfo, false);
  // introspection
  exportKernel(env, exports, "describe", rn::describe, false);
  exportKernel(env, exports, "memoryStats", rn::memoryStats, false);
  exportKernel(env, exports, "trimMemory", rn::trimMemory, false);
  exportKernel(env, exports, "profile", rn::profile, false);
  exportKernel(env, exports, "resetProfile", rn::resetProfile, false);
  exportKernel(env, exports, "setProfiling", rn::setProfiling, false);
  return exports;
}

}  // namespace

NODE_API_MODULE(resnet_native, Init)
