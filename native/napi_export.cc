// native/napi_export.cc: exporting a kernel to JS, under the addon's lock, with errors that name it.
//
// What it is: exportKernel, which wraps every entry point so that a C++ exception becomes a JS Error
// "native <kernel>: <message>" and a profiled kernel's call is timed (profile.cc). What it is not: the list of
// exports (addon.cc). Its one oneDNN-specific part is the clause that labels oneDNN's own errors.
// References: node-addon-api napi.h (Function::New with data, Error); oneDNN 2.6 dnnl.hpp (dnnl::error).
#include "napi_plumbing.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <exception>
#include <memory>

namespace rn {

namespace {
struct Kernel {
  const char* name;
  KernelFn fn;
  bool profiled;
};

Napi::Value dispatch(const Napi::CallbackInfo& info) {
  const Kernel* k = static_cast<const Kernel*>(info.Data());
  std::lock_guard<std::recursive_mutex> lock(addonLock());
  ProfScope prof(k->profiled ? k->name : nullptr);
  try {
    return k->fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("native ") + k->name + ": oneDNN error: " + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("native ") + k->name + ": " + e.what());
  }
}
}  // namespace

std::recursive_mutex& addonLock() {
  static std::recursive_mutex m;
  return m;
}

void exportKernel(Napi::Env env, Napi::Object exports, const char* name, KernelFn fn, bool profiled) {
  std::lock_guard<std::recursive_mutex> lock(addonLock());
  static std::vector<std::unique_ptr<Kernel>> kernels;  // live for the process: functions keep pointers
  kernels.push_back(std::make_unique<Kernel>(Kernel{name, fn, profiled}));
  exports.Set(name, Napi::Function::New(env, dispatch, name, kernels.back().get()));
}

}  // namespace rn
