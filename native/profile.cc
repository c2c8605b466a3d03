// native/profile.cc: the per-kernel profile, wall time and calls per name while RESNET_PROFILE=1 (or
// setProfiling(true)).
//
// What it is: a table filled by ProfScope, read by profile() and cleared by resetProfile(); exportKernel
// (napi_export.cc) opens a scope per profiled kernel call and kernels open nested ones. What it is not: a
// sampling profiler; it times only what is wrapped.
// References: std::chrono::steady_clock.
#include "napi_plumbing.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

namespace rn {

// Kernels are synchronous on the CPU engine, so wall time around the call is the kernel's time. Names in
// parentheses are nested parts.
namespace {
struct ProfEntry {
  int64_t calls = 0, ns = 0;
};
bool kProfiling = [] {
  const char* v = std::getenv("RESNET_PROFILE");
  return v && std::strcmp(v, "1") == 0;
}();
std::map<std::string, ProfEntry>& profTable() {
  static std::map<std::string, ProfEntry> t;
  return t;
}
int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool profiling() { return kProfiling; }
ProfScope::ProfScope(const char* name) : name_(name), on_(kProfiling && name), t0_(on_ ? nowNs() : 0) {}
ProfScope::~ProfScope() {
  if (!on_) return;
  ProfEntry& e = profTable()[name_];
  e.calls++;
  e.ns += nowNs() - t0_;
}

Napi::Value profile(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  for (const auto& kv : profTable()) {
    Napi::Object e = Napi::Object::New(info.Env());
    e.Set("calls", Napi::Number::New(info.Env(), static_cast<double>(kv.second.calls)));
    e.Set("ms", Napi::Number::New(info.Env(), kv.second.ns / 1e6));
    o.Set(kv.first, e);
  }
  return o;
}

// setProfiling(on): switches the profile on or off at run time (RESNET_PROFILE=1 sets it at load)
Napi::Value setProfiling(const Napi::CallbackInfo& info) {
  kProfiling = boolArg(info, 0, "on");
  return info.Env().Undefined();
}

Napi::Value resetProfile(const Napi::CallbackInfo& info) {
  profTable().clear();
  return info.Env().Undefined();
}

}  // namespace rn
