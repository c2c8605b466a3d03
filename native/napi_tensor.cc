// native/napi_tensor.cc: the JS handle of a tensor: a type-tagged N-API External that owns a Tensor record and
// its pool buffer until dispose (or garbage collection).
//
// What it is: newTensor, tensorArg / optTensorArg (which refuse anything but a live handle of ours) and
// disposeTensor. What it is not: the buffer pool (buffers.cc) or layouts (context.cc); the record itself is
// declared in context.h because it carries a oneDNN memory descriptor.
// References: node-addon-api napi.h (External + TypeTag, MemoryManagement::AdjustExternalMemory).
#include "context.h"

#include <stdexcept>

namespace rn {

// Its buffer goes back to the pool on dispose or, if the caller forgot, when the External is collected. V8 is
// told about a sixteenth of the bytes, so that forgotten tensors still create GC pressure without every step
// paying for it: V8 starts a full collection each time the external memory it was told of grows ~64 MB past its
// level at the last one, and a training step allocates (and disposes) ~1.5 GB of activations. Told all of them,
// a bf16 step ran 14 collections (28 ms of pauses, plus concurrent marking on a core the kernels want); told a
// sixteenth, about one. Forgotten tensors then wait for ~1 GB of them before a collection frees them.
namespace {
const napi_type_tag kTensorTag = {0x7265736e65742d74ULL, 0x732d74656e736f72ULL};
size_t liveTensors = 0;

/** The bytes V8 is told a buffer of `bytes` holds (the same for its allocation and its release). */
int64_t pressure(size_t bytes) { return static_cast<int64_t>(bytes >> 4); }

void releaseBuffer(Napi::Env env, Tensor& t) {
  if (!t.ptr) return;
  t.releaseViews();
  poolRelease(t.ptr, t.bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, -pressure(t.bytes));
  liveTensors--;
  t.ptr = nullptr;
}
}  // namespace

size_t liveTensorCount() { return liveTensors; }

namespace {
/** The JS handle of t, which owns its buffer from now on (counted as live until released). */
Napi::Value handleOf(Napi::Env env, Tensor* t) {
  liveTensors++;
  Napi::MemoryManagement::AdjustExternalMemory(env, pressure(t->bytes));
  auto ext = Napi::External<Tensor>::New(env, t, [](Napi::Env e, Tensor* p) {
    std::lock_guard<std::recursive_mutex> lock(addonLock());
    releaseBuffer(e, *p);
    delete p;
  });
  ext.TypeTag(&kTensorTag);
  return ext;
}
}  // namespace

Napi::Value newTensor(Napi::Env env, const memory::desc& md, Tensor** out) {
  auto* t = new Tensor();
  t->md = md;
  t->bytes = md.get_size();
  t->ptr = poolAlloc(t->bytes);
  if (out) *out = t;
  return handleOf(env, t);
}

Napi::Value adoptBuffer(Napi::Env env, Tensor& from) {
  if (!from.ptr) throw std::invalid_argument("adoptBuffer: the tensor was disposed");
  auto* t = new Tensor();
  t->md = from.md;
  t->bytes = from.bytes;
  t->ptr = from.ptr;
  // from gives up its buffer without freeing it: uncounted as from's, counted again as t's by handleOf
  from.releaseViews();
  from.ptr = nullptr;
  liveTensors--;
  Napi::MemoryManagement::AdjustExternalMemory(env, -pressure(from.bytes));
  return handleOf(env, t);
}

Tensor* optTensorArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (!v.IsExternal() || !v.As<Napi::External<Tensor>>().CheckTypeTag(&kTensorTag))
    throw std::invalid_argument(std::string("expected ") + what + " to be a native storage handle");
  Tensor* t = v.As<Napi::External<Tensor>>().Data();
  if (!t->ptr) throw std::invalid_argument(std::string(what) + " was used after dispose");
  return t;
}

Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Tensor* t = optTensorArg(info, i, what);
  if (!t) throw std::invalid_argument(std::string("expected ") + what + " to be a native storage, received null");
  return *t;
}

void disposeTensor(Napi::Env env, Tensor& t) { releaseBuffer(env, t); }

}  // namespace rn
