// native/buffers.cc: the buffer pool and the tensor records behind native storages.
//
// What it is: aligned allocations recycled through free lists keyed by byte size, and the type-tagged
// N-API External that owns a tensor's buffer until dispose (or garbage collection). What it is not: layouts
// or arithmetic (context.cc, the op files).
// References: node-addon-api napi.h (External + TypeTag, MemoryManagement::AdjustExternalMemory); glibc
// malloc's mmap threshold (why large blocks are worth keeping).
#include <cstdlib>
#include <stdexcept>

#include "context.h"

namespace rn {

// ---------------------------------------------------------------------------------------------------------
// Buffer pool. A training step allocates the same ~hundred large activation buffers every time; glibc serves
// blocks that big with mmap, so without reuse every step pays page faults. Freed buffers wait in a free list
// for their exact (64-byte rounded) size until the pool holds more than its limit.
namespace {
struct Pool {
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t pooledBytes = 0, pooledBuffers = 0, liveBytes = 0, liveBuffers = 0;
  size_t hits = 0, misses = 0, limit = 0;
  size_t liveTensors = 0;
  Pool() {
    const char* mb = std::getenv("RESNET_POOL_MB");
    limit = size_t(mb ? std::strtoull(mb, nullptr, 10) : 4096) << 20;
  }
};
Pool& pool() {
  static Pool p;
  return p;
}
size_t rounded(size_t bytes) { return ((bytes ? bytes : 1) + 63) / 64 * 64; }
}  // namespace

void* poolAlloc(size_t bytes) {
  Pool& P = pool();
  const size_t sz = rounded(bytes);
  P.liveBytes += sz;
  P.liveBuffers++;
  auto it = P.free.find(sz);
  if (it != P.free.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    P.pooledBytes -= sz;
    P.pooledBuffers--;
    P.hits++;
    return p;
  }
  P.misses++;
  void* p = std::aligned_alloc(64, sz);
  if (!p) throw std::runtime_error("out of memory allocating " + std::to_string(sz) + " bytes");
  return p;
}

void poolRelease(void* p, size_t bytes) {
  Pool& P = pool();
  const size_t sz = rounded(bytes);
  P.liveBytes -= sz;
  P.liveBuffers--;
  if (P.pooledBytes + sz > P.limit) {
    std::free(p);
    return;
  }
  P.free[sz].push_back(p);
  P.pooledBytes += sz;
  P.pooledBuffers++;
}

void poolTrim() {
  Pool& P = pool();
  for (auto& kv : P.free)
    for (void* p : kv.second) std::free(p);
  P.free.clear();
  P.pooledBytes = 0;
  P.pooledBuffers = 0;
}

// ---------------------------------------------------------------------------------------------------------
// Tensors: a type-tagged External holding a heap Tensor; its buffer goes back to the pool on dispose or,
// if the caller forgot, when the External is collected. V8 is told about the bytes so that forgotten tensors
// still create GC pressure.
namespace {
const napi_type_tag kTensorTag = {0x7265736e65742d74ULL, 0x732d74656e736f72ULL};

void releaseBuffer(Napi::Env env, Tensor& t) {
  if (!t.ptr) return;
  if (t.view) poolRelease(t.view, t.viewBytes);
  t.view = nullptr;
  poolRelease(t.ptr, t.bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(t.bytes));
  pool().liveTensors--;
  t.ptr = nullptr;
}
}  // namespace

Napi::Value newTensor(Napi::Env env, const memory::desc& md, Tensor** out) {
  auto* t = new Tensor();
  t->md = md;
  t->bytes = md.get_size();
  t->ptr = poolAlloc(t->bytes);
  pool().liveTensors++;
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(t->bytes));
  auto ext = Napi::External<Tensor>::New(env, t, [](Napi::Env e, Tensor* p) {
    std::lock_guard<std::recursive_mutex> lock(addonLock());
    releaseBuffer(e, *p);
    delete p;
  });
  ext.TypeTag(&kTensorTag);
  if (out) *out = t;
  return ext;
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

Napi::Value memoryStats(const Napi::CallbackInfo& info) {
  const Pool& P = pool();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, size_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("liveTensors", P.liveTensors);
  num("liveBuffers", P.liveBuffers);
  num("liveBytes", P.liveBytes);
  num("pooledBuffers", P.pooledBuffers);
  num("pooledBytes", P.pooledBytes);
  num("poolLimitBytes", P.limit);
  num("hits", P.hits);
  num("misses", P.misses);
  num("primitives", primCacheSize());
  return o;
}

Napi::Value trimMemory(const Napi::CallbackInfo& info) {
  poolTrim();
  return info.Env().Undefined();
}

}  // namespace rn
