// native/buffers.cc: the buffer pool behind native storages and scratch memory, and its statistics.
//
// What it is: aligned allocations recycled through free lists keyed by byte size; memoryStats() and
// trimMemory(). What it is not: the JS handles of tensors (napi_tensor.cc), layouts or arithmetic (context.cc,
// the op files).
// References: glibc malloc's mmap threshold (why large blocks are worth keeping).
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

Napi::Value memoryStats(const Napi::CallbackInfo& info) {
  const Pool& P = pool();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, size_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("liveTensors", liveTensorCount());
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
