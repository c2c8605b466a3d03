// native/context.cc: engine, stream, argument parsing, layout conversion, primitive cache, profile, exports.
//
// What it is: the state shared by every kernel file, and the wrapper that turns C++ exceptions into JS errors
// naming the kernel. What it is not: any kernel, nor memory ownership (buffers.cc: pool and tensor records).
// References: oneDNN 2.6 dnnl.hpp (engine, stream, reorder::primitive_desc, dnnl_version,
// get_effective_cpu_isa); node-addon-api napi.h (Function::New with data, Error).
#include "context.h"
#include "precision.h"
#include "winograd.h"

#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
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
// Arguments and descriptors.
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

void reorder(const memory::desc& smd, void* src, const memory::desc& dmd, void* dst) {
  ProfScope prof("(reorder)");
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

memory viewFrozen(const Tensor& t, const Dims& shape, const memory::desc& want, Scratch& tmp) {
  if (!t.frozen || t.md == want) return viewAs(t, shape, &want, tmp);
  if (!t.view || !(t.viewMd == want)) {
    if (t.view) poolRelease(t.view, t.viewBytes);
    Scratch made;
    const memory m = viewAs(t, shape, &want, made);
    t.viewBytes = want.get_size();
    t.view = poolAlloc(t.viewBytes);
    std::memcpy(t.view, m.get_data_handle(), t.viewBytes);
    t.viewMd = want;
  }
  return memory(want, engine(), t.view);
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
namespace {
std::unordered_map<std::string, std::shared_ptr<Prim>>& primCache() {
  static std::unordered_map<std::string, std::shared_ptr<Prim>> c;
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
// Profile: wall time and calls per kernel name when RESNET_PROFILE=1 (kernels are synchronous on the CPU
// engine, so wall time around the call is the kernel's time). Names in parentheses are nested parts.
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

// ---------------------------------------------------------------------------------------------------------
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
