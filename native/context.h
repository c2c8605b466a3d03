// native/context.h: the shared state of the resnet-ts oneDNN addon and the helpers every op file uses.
//
// What it is: the oneDNN CPU engine and stream (context.cc), a cache of primitives keyed by op/shape/layout
// strings (context.cc), a pool of aligned buffers keyed by byte size (buffers.cc), the Tensor record behind
// every native Storage (a buffer plus the oneDNN memory descriptor that says its physical layout) and its JS
// handle (napi_tensor.cc), and layout conversion (reorders, context.cc). It includes napi_plumbing.h, the
// N-API plumbing apart from oneDNN (argument parsing, exports, the profile), so op files include this alone.
// What it is not: any kernel; those live one family per file (conv.cc, batchnorm.cc, ...).
// References: oneDNN 2.6 C++ API (dnnl.hpp: engine, stream, memory::desc, reorder, primitive_desc_base);
// node-addon-api (napi.h: External, CallbackInfo, Error, MemoryManagement).
#pragma once

#include <napi.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "napi_plumbing.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace rn {

using dnnl::memory;
static_assert(std::is_same<Dims, memory::dims>::value, "napi_plumbing.h's Dims must be oneDNN's memory::dims");

dnnl::engine& engine();
dnnl::stream& stream();

// ---- buffer pool: free lists keyed by exact byte size, bounded by RESNET_POOL_MB (default 4096) ----
void* poolAlloc(size_t bytes);
void poolRelease(void* p, size_t bytes);
void poolTrim();

/** A pool buffer owned by a C++ scope (temporaries: reordered inputs, scratch). */
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t bytes) : p_(poolAlloc(bytes)), bytes_(bytes) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  Scratch& operator=(Scratch&& o) noexcept {
    if (this != &o) {
      if (p_) poolRelease(p_, bytes_);
      p_ = o.p_;
      bytes_ = o.bytes_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~Scratch() { if (p_) poolRelease(p_, bytes_); }
  void* get() const { return p_; }
 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// ---- tensors ----
/** The record behind a native Storage: `ptr` holds `md.get_size()` bytes in the layout `md` describes. */
struct Tensor {
  void* ptr = nullptr;  // nullptr once disposed
  size_t bytes = 0;
  memory::desc md;
  float* f() const { return static_cast<float*>(ptr); }
  /**
   * A frozen tensor is never written again (freeze(): the folded weights of an inference graph), so the copies
   * kernels reorder it into can be kept and reused, one per layout (at most kMaxViews, the oldest replaced):
   * batch sizes that choose different algorithms (a served mix of batch 1 and batch 8, say) then do not
   * reorder the weights back and forth on every call. Released with the tensor.
   */
  struct View {
    memory::desc md;
    void* ptr;
    size_t bytes;
  };
  static constexpr size_t kMaxViews = 3;
  bool frozen = false;
  mutable std::vector<View> views;
  void releaseViews() const;
};

/** Allocates a tensor for `md` and wraps it for JS (a type-tagged External released on dispose or GC). */
Napi::Value newTensor(Napi::Env env, const memory::desc& md, Tensor** out);
/** The tensor behind argument `i`; throws when it is not a live native tensor. */
Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* what);
/** Like tensorArg, but null/undefined gives nullptr. */
Tensor* optTensorArg(const Napi::CallbackInfo& info, size_t i, const char* what);
void disposeTensor(Napi::Env env, Tensor& t);
/** A new handle owning from's buffer (and layout); from is left disposed. Nothing is copied or allocated. */
Napi::Value adoptBuffer(Napi::Env env, Tensor& from);
/** Tensors made by newTensor and not yet released (memoryStats). */
size_t liveTensorCount();

/** Plain row-major f32 descriptor (nchw for 4-D, nc for 2-D, ...). */
memory::desc plainMd(const Dims& d);
bool isPlain(const memory::desc& md);
/** A string that identifies a descriptor's dims and layout (for cache keys). */
std::string mdKey(const memory::desc& md);
/** Throws unless the tensor holds numel(shape) logical elements. */
void checkNumel(const Tensor& t, const Dims& shape, const char* what);

/**
 * `t`'s data viewed with descriptor `want` (same logical dims as `shape`): no copy when the layout already
 * matches (or both are plain), otherwise a reorder into `tmp`. `want` may be null: then any layout with dims
 * `shape` is accepted (t's own, or plain when t's dims differ).
 */
memory viewAs(const Tensor& t, const Dims& shape, const memory::desc* want, Scratch& tmp);
/** viewAs for an operand that may be frozen: a frozen tensor's reordered copy is made once and kept. */
memory viewFrozen(const Tensor& t, const Dims& shape, const memory::desc& want, Scratch& tmp);
/** Throws when t is frozen (for kernels that write into an operand). */
void checkWritable(const Tensor& t, const char* what);
/** Makes t's own buffer use layout md (same logical dims): for operands updated in place. */
void adoptLayout(Tensor& t, const memory::desc& md);
/** Copies src (descriptor smd) into dst (descriptor dmd), same dims, through a cached reorder primitive. */
void reorder(const memory::desc& smd, void* src, const memory::desc& dmd, void* dst);

// ---- primitive cache ----
struct Prim {
  dnnl::primitive prim;
  dnnl::primitive_desc_base pd;
  dnnl::primitive_desc_base hint;  // forward pd for backward primitives (optional)
};
std::shared_ptr<Prim> cachedPrim(const std::string& key, const std::function<Prim()>& make);
size_t primCacheSize();
void execute(const Prim& p, const std::unordered_map<int, memory>& args);

/** "oneDNN 2.6.3, CPU engine, ISA avx512_core_bf16, 2 OpenMP threads": what runs oneDNN's kernels here. */
std::string engineSummary();
Napi::Value describe(const Napi::CallbackInfo& info);
Napi::Value memoryStats(const Napi::CallbackInfo& info);
Napi::Value trimMemory(const Napi::CallbackInfo& info);

}  // namespace rn
