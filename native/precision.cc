// native/precision.cc: the fp32 / bf16 setting (see precision.h).
//
// References: oneDNN 2.6 dnnl.hpp get_effective_cpu_isa (its ISA names: avx512_core_bf16 is the first with the
// AVX512_BF16 dot products, avx512_core_amx adds the AMX tiles); PyTorch's CPU autocast op lists (convolution
// and linear in bf16, batch norm and losses in fp32).
#include "precision.h"

#include <stdexcept>

namespace rn {

namespace {
bool& bf16Flag() {
  static bool on = false;
  return on;
}
}  // namespace

bool bf16Compute() { return bf16Flag(); }

memory::data_type computeDt() { return bf16Flag() ? memory::data_type::bf16 : memory::data_type::f32; }

std::string bf16Unavailable() {
  const auto isa = dnnl::get_effective_cpu_isa();
  if (isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx) return "";
  return "bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions, and oneDNN finds neither here (its ISA: " +
         engineSummary() + "; ONEDNN_MAX_CPU_ISA may limit it); use fp32";
}

// setPrecision("fp32" | "bf16"): for every later convolution and linear layer
Napi::Value setPrecision(const Napi::CallbackInfo& info) {
  const std::string p = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (p != "fp32" && p != "bf16") throw std::invalid_argument("expected precision fp32 or bf16, received \"" + p + "\"");
  if (p == "bf16") {
    const std::string why = bf16Unavailable();
    if (!why.empty()) throw std::invalid_argument(why);
  }
  bf16Flag() = p == "bf16";
  return info.Env().Undefined();
}

// precisionInfo() -> { precision: "fp32" | "bf16", bf16: { ok, reason } }
Napi::Value precisionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env), b = Napi::Object::New(env);
  const std::string why = bf16Unavailable();
  b.Set("ok", why.empty());
  b.Set("reason", why.empty() ? env.Null() : Napi::String::New(env, why));
  r.Set("precision", bf16Flag() ? "bf16" : "fp32");
  r.Set("bf16", b);
  return r;
}

}  // namespace rn
