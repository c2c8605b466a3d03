// native/napi_plumbing.h: the N-API plumbing of the addon, apart from oneDNN: argument parsing, the one lock
// every entry point holds, exporting a kernel with errors that name it, and the per-kernel profile.
//
// What it is: what any addon of this project (a second backend's included) needs to turn JS calls into C++ calls;
// nothing here includes oneDNN. What it is not: tensors (the Tensor record holds a oneDNN descriptor:
// context.h declares it, napi_tensor.cc wraps it for JS), nor any kernel.
// References: node-addon-api napi.h (CallbackInfo, Function::New with data, Error).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace rn {

/** Sizes of a shape; the same type as oneDNN's memory::dims (context.h checks), without including oneDNN. */
using Dims = std::vector<int64_t>;

// ---- arguments (napi_args.cc); each throws std::invalid_argument naming `what` ----
Dims dimsArg(const Napi::CallbackInfo& info, size_t i, const char* what);
/** A pair [a, b] of non-negative integers (strides, paddings, kernel sizes). */
Dims pairArg(const Napi::CallbackInfo& info, size_t i, const char* what);
double numArg(const Napi::CallbackInfo& info, size_t i, const char* what);
bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* what);

int64_t numelOf(const Dims& d);
std::string dimsStr(const Dims& d);

// ---- profile (profile.cc; RESNET_PROFILE=1) ----
bool profiling();
/** Adds the wall time of its lifetime to `name`'s entry while profiling (nothing when name is null). */
class ProfScope {
 public:
  explicit ProfScope(const char* name);
  ~ProfScope();
 private:
  const char* name_;
  bool on_;
  int64_t t0_;
};
Napi::Value profile(const Napi::CallbackInfo& info);
Napi::Value resetProfile(const Napi::CallbackInfo& info);
Napi::Value setProfiling(const Napi::CallbackInfo& info);

// ---- exports (napi_export.cc) ----
/**
 * The addon's state (pool, caches, profile) is process-wide while JS may run in several worker threads:
 * every entry point holds this lock, so calls from different threads run one at a time.
 */
std::recursive_mutex& addonLock();

using KernelFn = Napi::Value (*)(const Napi::CallbackInfo&);
/** Exports `fn` as `name`, with errors that name the kernel and (if `profiled`) in the profile. */
void exportKernel(Napi::Env env, Napi::Object exports, const char* name, KernelFn fn, bool profiled = true);

}  // namespace rn
