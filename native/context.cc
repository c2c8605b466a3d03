// native/context.cc: the oneDNN side of the shared state: engine, stream, descriptors and layout conversion
// (reorders, viewAs), the primitive cache, and what runs here (describe).
//
// What it is: the oneDNN state shared by every kernel file. What it is not: any kernel, nor memory ownership
// (buffers.cc: the pool; napi_tensor.cc: tensor handles), nor the N-API plumbing (napi_args.cc, napi_export.cc,
// profile.cc).
// References: oneDNN 2.6 dnnl.hpp (engine, stream, reorder::primitive_desc, dnnl_version,
// get_effective_cpu_isa).
#include "context.h"
#include "precision.h"
#include "winograd.h"

#include <omp.h>

#include <cstring>
#include <stdexcept>

namespace rn {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Descriptors.
memory::desc plainMd(const Dims& d) {
  if (d.empty()) return plainMd({1});  // a scalar: oneDNN has no rank-0 descriptors
  Dims strides(d.size());
  int64_t s = 1;
  for (size_t i = d.size(); i-- > 0;) {
    strides[i] = s;
    s *= d[i];
  }
  return memory::desc(d, memory::data_type::f32, strides);
}

bool isPlain(const memory::desc& md) {
  return md.data.data_type == dnnl_f32 && md == plainMd(md.dims());
}

std::string mdKey(const memory::desc& md) {
  const auto& d = md.data;
  std::string k = std::to_string(d.data_type) + ":" + dimsStr(md.dims()) + ":" + std::to_string(d.format_kind);
  const auto& b = d.format_desc.blocking;
  if (d.format_kind == dnnl_blocked) {
    for (int i = 0; i < d.ndims; i++) k += "s" + std::to_string(b.strides[i]);
    for (int i = 0; i < b.inner_nblks; i++) k += "b" + std::to_string(b.inner_blks[i]) + "i" + std::to_string(b.inner_idxs[i]);
  } else if (d.format_kind == dnnl_format_kind_wino) {
    // oneDNN's Winograd weights: the blocking depends on the primitive (its batch size among others), so two
    // wino layouts of the same dims differ; without these fields a reorder cached for one served the other
    const auto& w = d.format_desc.wino_desc;
    for (int v : {int(w.wino_format), w.r, w.alpha, w.ic, w.oc, w.ic_block, w.oc_block, w.ic2_block, w.oc2_block})
      k += "w" + std::to_string(v);
    k += "a" + std::to_string(w.adj_scale) + "z" + std::to_string(w.size);
  } else if (d.format_kind != dnnl_format_kind_undef && d.format_kind != dnnl_format_kind_any) {
    throw std::invalid_argument("mdKey: no key for memory format kind " + std::to_string(d.format_kind));
  }
  for (int i = 0; i < d.ndims; i++) k += "p" + std::to_string(d.padded_dims[i]);
  return k + "o" + std::to_string(d.offset0) + "f" + std::to_string(d.extra.flags);
}

void checkNumel(const Tensor& t, const Dims& shape, const char* what) {
  const int64_t have = numelOf(t.md.dims()), want = numelOf(shape);
  if (have != want)
    throw std::invalid_argument(std::string("expected ") + what + " of shape " + dimsStr(shape) + " (" +
                                std::to_string(want) + " elements), received a storage of " + std::to_string(have) +
                                " elements " + dimsStr(t.md.dims()));
}

namespace {
/**
 * A small row-major f32 NCHW tensor into NHWC by a plain loop: a batch-1 image (3x32x32) costs oneDNN's parallel
 * reorder tens of microseconds of thread wake-up, the loop about one. Larger tensors go to oneDNN's.
 */
bool smallNchwToNhwc(const memory::desc& smd, const float* src, const memory::desc& dmd, float* dst) {
  const Dims d = smd.dims();
  if (d.size() != 4 || smd.data_type() != memory::data_type::f32 || !isPlain(smd)) return false;
  const memory::dim N = d[0], C = d[1], HW = d[2] * d[3];
  if (N * C * HW > (1 << 16) || !(dmd == memory::desc(d, memory::data_type::f32, memory::format_tag::nhwc))) return false;
  for (memory::dim n = 0; n < N; n++)
    for (memory::dim c = 0; c < C; c++) {
      const float* s = src + (n * C + c) * HW;
      float* o = dst + n * C * HW + c;
      for (memory::dim i = 0; i < HW; i++) o[i * C] = s[i];
    }
  return true;
}
}  // namespace

void reorder(const memory::desc& smd, void* src, const memory::desc& dmd, void* dst) {
  ProfScope prof("(reorder)");
  if (smallNchwToNhwc(smd, static_cast<const float*>(src), dmd, static_cast<float*>(dst))) return;
  auto p = cachedPrim("reorder|" + mdKey(smd) + "|" + mdKey(dmd), [&] {
    auto pd = dnnl::reorder::primitive_desc(engine(), smd, engine(), dmd);
    return Prim{dnnl::reorder(pd), pd, {}};
  });
  execute(*p, {{DNNL_ARG_FROM, memory(smd, engine(), src)}, {DNNL_ARG_TO, memory(dmd, engine(), dst)}});
}

memory viewAs(const Tensor& t, const Dims& shape, const memory::desc* want, Scratch& tmp) {
  checkNumel(t, shape, "input");
  const Dims tdims = t.md.dims();
  const bool sameDims = tdims == shape;
  const memory::desc target = want ? *want : (sameDims ? t.md : plainMd(shape));
  if (target == t.md || (isPlain(t.md) && isPlain(target))) return memory(target, engine(), t.ptr);
  if (sameDims) {
    tmp = Scratch(target.get_size());
    reorder(t.md, t.ptr, target, tmp.get());
    return memory(target, engine(), tmp.get());
  }
  // a blocked tensor seen with other dims: through plain row-major of its own dims
  const memory::desc own = plainMd(tdims);
  Scratch plain(own.get_size());
  reorder(t.md, t.ptr, own, plain.get());
  if (isPlain(target)) {
    tmp = std::move(plain);
    return memory(target, engine(), tmp.get());
  }
  tmp = Scratch(target.get_size());
  reorder(plainMd(shape), plain.get(), target, tmp.get());
  return memory(target, engine(), tmp.get());
}

void Tensor::releaseViews() const {
  for (const View& v : views) poolRelease(v.ptr, v.bytes);
  views.clear();
}

memory viewFrozen(const Tensor& t, const Dims& shape, const memory::desc& want, Scratch& tmp) {
  if (!t.frozen || t.md == want) return viewAs(t, shape, &want, tmp);
  for (const Tensor::View& v : t.views)
    if (v.md == want) return memory(want, engine(), v.ptr);
  if (t.views.size() == Tensor::kMaxViews) {
    poolRelease(t.views.front().ptr, t.views.front().bytes);
    t.views.erase(t.views.begin());
  }
  Scratch made;
  const memory m = viewAs(t, shape, &want, made);
  Tensor::View v{want, poolAlloc(want.get_size()), want.get_size()};
  std::memcpy(v.ptr, m.get_data_handle(), v.bytes);
  t.views.push_back(v);
  return memory(want, engine(), v.ptr);
}

void checkWritable(const Tensor& t, const char* what) {
  if (t.frozen) throw std::invalid_argument(std::string(what) + " is frozen (the weights of an inference graph) and cannot be written");
}

void adoptLayout(Tensor& t, const memory::desc& md) {
  checkWritable(t, "an operand updated in place");
  if (t.md == md || (isPlain(t.md) && isPlain(md) && t.bytes == md.get_size())) {
    t.md = md;
    return;
  }
  Scratch tmp;
  const float* src = static_cast<const float*>(viewAs(t, md.dims(), &md, tmp).get_data_handle());
  void* fresh = poolAlloc(md.get_size());
  std::memcpy(fresh, src, md.get_size());
  poolRelease(t.ptr, t.bytes);
  t.ptr = fresh;
  t.bytes = md.get_size();
  t.md = md;
}

// ---------------------------------------------------------------------------------------------------------
// Primitive cache: creating a primitive descriptor walks oneDNN's implementation list and JIT-compiles code,
// far slower than running it at these sizes. Keys name the op, shapes, parameters and layouts.
// One cache per thread: oneDNN 2.6 gives a primitive that needs a scratchpad (its Winograd convolutions do) a share
// of a scratchpad buffer that belongs to the thread creating the primitive, and reads the executing thread's buffer
// when it runs; a primitive made on the main thread and run in a worker thread (or the other way round) read a
// buffer that was missing or too small and crashed the process. Calls are serialised by the addon's lock, so a
// thread's cache is only ever used by that thread; a worker's cache goes when the worker ends.
namespace {
std::unordered_map<std::string, std::shared_ptr<Prim>>& primCache() {
  static thread_local std::unordered_map<std::string, std::shared_ptr<Prim>> c;
  return c;
}
}  // namespace

std::shared_ptr<Prim> cachedPrim(const std::string& key, const std::function<Prim()>& make) {
  auto& c = primCache();
  auto it = c.find(key);
  if (it != c.end()) return it->second;
  if (c.size() >= 4096) c.clear();  // tests with many random shapes; a training run uses a few hundred
  auto p = std::make_shared<Prim>(make());
  c.emplace(key, p);
  return p;
}

size_t primCacheSize() { return primCache().size(); }

void execute(const Prim& p, const std::unordered_map<int, memory>& args) {
  p.prim.execute(stream(), args);
  stream().wait();
}

// ---------------------------------------------------------------------------------------------------------
std::string engineSummary() {
  const dnnl_version_t* v = dnnl_version();
  static const char* isas[] = {"all", "sse41", "avx", "avx2", "avx512_mic", "avx512_mic_4ops", "avx512_core",
                               "avx512_core_vnni", "avx512_core_bf16", "avx512_core_amx", "avx2_vnni"};
  const auto isa = dnnl::get_effective_cpu_isa();
  std::string isaName = "unknown";
  const dnnl::cpu_isa all[] = {dnnl::cpu_isa::all, dnnl::cpu_isa::sse41, dnnl::cpu_isa::avx, dnnl::cpu_isa::avx2,
                               dnnl::cpu_isa::avx512_mic, dnnl::cpu_isa::avx512_mic_4ops, dnnl::cpu_isa::avx512_core,
                               dnnl::cpu_isa::avx512_core_vnni, dnnl::cpu_isa::avx512_core_bf16,
                               dnnl::cpu_isa::avx512_core_amx, dnnl::cpu_isa::avx2_vnni};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (all[i] == isa) isaName = isas[i];
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         ", CPU engine, ISA " + isaName + ", " + std::to_string(omp_get_max_threads()) + " OpenMP threads";
}

Napi::Value describe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engineSummary() + ", our kernels " + kernelIsa() + ", " +
                                           (bf16Compute() ? "bf16 mixed precision" : "float32"));
}

}  // namespace rn
