// native/napi_args.cc: parsing of JS arguments into sizes, numbers and flags, and the shape helpers their errors use.
//
// What it is: checks that say which argument was wrong and what it held (std::invalid_argument; the export
// wrapper in napi_export.cc names the kernel). What it is not: tensors (napi_tensor.cc) or oneDNN descriptors.
// References: node-addon-api napi.h (CallbackInfo, Array, Number, Boolean).
#include "napi_plumbing.h"

#include <stdexcept>

namespace rn {

Dims dimsArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsArray()) throw std::invalid_argument(std::string("expected ") + what + " to be an array of sizes");
  Napi::Array a = info[i].As<Napi::Array>();
  Dims d(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value e = a.Get(k);
    const double x = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || x != static_cast<double>(static_cast<int64_t>(x)))
      throw std::invalid_argument(std::string("expected ") + what + " to hold non-negative integers, received [" +
                                  e.ToString().Utf8Value() + "] at index " + std::to_string(k));
    d[k] = static_cast<int64_t>(x);
  }
  return d;
}

Dims pairArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Dims d = dimsArg(info, i, what);
  if (d.size() != 2) throw std::invalid_argument(std::string("expected ") + what + " to be a pair, received " + dimsStr(d));
  return d;
}

double numArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw std::invalid_argument(std::string("expected ") + what + " to be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsBoolean()) throw std::invalid_argument(std::string("expected ") + what + " to be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

int64_t numelOf(const Dims& d) {
  int64_t n = 1;
  for (auto x : d) n *= x;
  return n;
}

std::string dimsStr(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); i++) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace rn
