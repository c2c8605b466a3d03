// native/memory.cc: moving data in and out of native storages, and changing their layout.
//
// What it is: fromArray / zeros (plain row-major storages), toArray / reshape (which reorder blocked layouts
// such as nChw16c back to plain), dispose. What it is not: any arithmetic.
// References: oneDNN 2.6 memory::desc and reorder (via context.cc); node-addon-api TypedArrayOf<float>.
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "ops.h"

namespace rn {

// fromArray(data: Float32Array, shape) -> storage (plain row-major)
Napi::Value fromArray(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw std::invalid_argument("expected data to be a Float32Array (the native backend supports float32 only)");
  auto data = info[0].As<Napi::Float32Array>();
  const Dims shape = dimsArg(info, 1, "shape");
  if (static_cast<int64_t>(data.ElementLength()) != numelOf(shape))
    throw std::invalid_argument("expected " + std::to_string(numelOf(shape)) + " elements for shape " +
                                dimsStr(shape) + ", received " + std::to_string(data.ElementLength()));
  Tensor* t;
  Napi::Value out = newTensor(info.Env(), plainMd(shape), &t);
  if (data.ElementLength()) std::memcpy(t->ptr, data.Data(), data.ElementLength() * sizeof(float));
  return out;
}

// zeros(shape) -> storage (plain row-major)
Napi::Value zeros(const Napi::CallbackInfo& info) {
  const Dims shape = dimsArg(info, 0, "shape");
  Tensor* t;
  Napi::Value out = newTensor(info.Env(), plainMd(shape), &t);
  std::memset(t->ptr, 0, t->bytes);
  return out;
}

// toArray(s, shape) -> Float32Array, plain row-major whatever the storage's layout
Napi::Value toArray(const Napi::CallbackInfo& info) {
  const Tensor& t = tensorArg(info, 0, "storage");
  const Dims shape = dimsArg(info, 1, "shape");
  checkNumel(t, shape, "storage");
  const size_t n = static_cast<size_t>(numelOf(shape));
  auto out = Napi::Float32Array::New(info.Env(), n);
  if (n == 0) return out;
  if (isPlain(t.md)) {
    std::memcpy(out.Data(), t.ptr, n * sizeof(float));
  } else {
    reorder(t.md, t.ptr, plainMd(t.md.dims()), out.Data());
  }
  return out;
}

// reshape(s, fromShape, toShape) -> new plain storage with the same values
Napi::Value reshape(const Napi::CallbackInfo& info) {
  const Tensor& t = tensorArg(info, 0, "storage");
  const Dims from = dimsArg(info, 1, "fromShape");
  const Dims to = dimsArg(info, 2, "toShape");
  checkNumel(t, from, "storage");
  if (numelOf(from) != numelOf(to))
    throw std::invalid_argument("expected toShape with " + std::to_string(numelOf(from)) + " elements like " +
                                dimsStr(from) + ", received " + dimsStr(to));
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), plainMd(to), &y);
  if (numelOf(to) == 0) return out;
  if (isPlain(t.md)) {
    std::memcpy(y->ptr, t.ptr, y->bytes);
  } else {
    reorder(t.md, t.ptr, plainMd(t.md.dims()), y->ptr);
  }
  return out;
}

// dispose(s): the buffer returns to the pool now; later use of the storage is an error
Napi::Value dispose(const Napi::CallbackInfo& info) {
  Tensor& t = tensorArg(info, 0, "storage");
  disposeTensor(info.Env(), t);
  return info.Env().Undefined();
}

// layoutOf(s) -> a string describing the physical layout (tests and diagnostics)
Napi::Value layoutOf(const Napi::CallbackInfo& info) {
  const Tensor& t = tensorArg(info, 0, "storage");
  // f32: "plain" or "blocked ..."; another data type is named first ("bf16 blocked ...")
  const std::string dt = t.md.data_type() == memory::data_type::bf16 ? "bf16 " : "";
  return Napi::String::New(info.Env(), isPlain(t.md) ? std::string("plain") : dt + "blocked " + mdKey(t.md));
}

}  // namespace rn
