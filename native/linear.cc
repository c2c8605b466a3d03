// native/linear.cc: the fully connected layer y = x·wᵀ + b, forward and backward, over oneDNN matmul.
//
// What it is: x [N,I], w [O,I] (PyTorch's nn.Linear weight, plain), b [O]. The transposes are strided memory
// descriptors over the same buffers, so nothing is copied: forward multiplies x by w viewed as [I,O] with
// strides {1,I}; backward computes dx = dy·w and dw = dyᵀ·x with dy viewed as [O,N]; db sums dy's columns.
// What it is not: batched or broadcast matmul.
// References: oneDNN 2.6 developer guide "Matrix Multiplication" (arbitrary strides, bias [1,O]);
// PyTorch torch.nn.Linear documentation.
#include <stdexcept>
#include <vector>

#include "context.h"
#include "ops.h"
#include "precision.h"

namespace rn {

namespace {
struct LinGeom {
  int64_t N, I, O;
  Dims x;
};

LinGeom linGeom(const Dims& x, const Dims& w) {
  if (x.size() != 2) throw std::invalid_argument("expected x of rank 2 [N,I], received " + dimsStr(x));
  if (w.size() != 2) throw std::invalid_argument("expected w of rank 2 [O,I], received " + dimsStr(w));
  if (x[1] != w[1])
    throw std::invalid_argument("expected w with I=" + std::to_string(x[1]) + " columns like x " + dimsStr(x) +
                                ", received w " + dimsStr(w));
  return {x[0], x[1], w[0], x};
}

memory::desc strided(const Dims& d, const Dims& strides) { return memory::desc(d, memory::data_type::f32, strides); }

/** md with another data type, same dims and strides. */
memory::desc withDt(const memory::desc& md, dnnl_data_type_t dt) {
  dnnl_memory_desc_t c = md.data;
  c.data_type = dt;
  return memory::desc(c);
}

/** An f32 operand as the compute precision reads it: itself, or under bf16 a bf16 copy in tmp (same strides). */
const void* asCompute(memory::desc& md, const void* p, Scratch& tmp) {
  if (!bf16Compute()) return p;
  const memory::desc bf = withDt(md, dnnl_bf16);
  tmp = Scratch(bf.get_size());
  reorder(md, const_cast<void*>(p), bf, tmp.get());
  md = bf;
  return tmp.get();
}

/**
 * dst = src·wei (+ bias) through a cached matmul primitive for these descriptors; src and wei are read in the
 * compute precision (bf16 under mixed precision), bias and dst stay f32.
 */
void matmul(memory::desc s, const void* sp, memory::desc w, const void* wp, const memory::desc* b, const void* bp,
            const memory::desc& d, void* dp) {
  Scratch ts, tw;
  sp = asCompute(s, sp, ts);
  wp = asCompute(w, wp, tw);
  const std::string key = "matmul|" + mdKey(s) + "|" + mdKey(w) + "|" + (b ? mdKey(*b) : "-") + "|" + mdKey(d);
  auto p = cachedPrim(key, [&] {
    const dnnl::matmul::desc desc = b ? dnnl::matmul::desc(s, w, *b, d) : dnnl::matmul::desc(s, w, d);
    dnnl::matmul::primitive_desc pd(desc, engine());
    return Prim{dnnl::matmul(pd), pd, {}};
  });
  auto mem = [](const memory::desc& md, const void* ptr) { return memory(md, engine(), const_cast<void*>(ptr)); };
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, mem(s, sp)}, {DNNL_ARG_WEIGHTS, mem(w, wp)}, {DNNL_ARG_DST, mem(d, dp)}};
  if (b) args[DNNL_ARG_BIAS] = mem(*b, bp);
  execute(*p, args);
}

const void* plainData(const Tensor& t, const Dims& shape, Scratch& tmp) {
  const memory::desc want = plainMd(shape);
  return viewAs(t, shape, &want, tmp).get_data_handle();
}
}  // namespace

// linear(x, xShape, w, wShape, b | null) -> y [N,O]
Napi::Value linear(const Napi::CallbackInfo& info) {
  const Dims wShape = dimsArg(info, 3, "wShape");
  const LinGeom g = linGeom(dimsArg(info, 1, "xShape"), wShape);
  const Tensor* b = optTensorArg(info, 4, "b");
  Scratch tx, tw, tb;
  const void* x = plainData(tensorArg(info, 0, "x"), g.x, tx);
  const void* w = plainData(tensorArg(info, 2, "w"), wShape, tw);
  const memory::desc bMd = plainMd({1, g.O});
  const void* bp = b ? plainData(*b, {1, g.O}, tb) : nullptr;
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), plainMd({g.N, g.O}), &y);
  matmul(plainMd(g.x), x, strided({g.I, g.O}, {1, g.I}), w, b ? &bMd : nullptr, bp, y->md, y->ptr);
  return out;
}

// poolLinearInfer(x, xShape [N,C,H,W], w [O,C], b [O]) -> y [N,O]: each channel's mean over H×W (a global
// average pool), then y = pooled·wᵀ + b, in f32 whatever the compute precision. The head of an inference graph:
// one call and plain loops instead of a pooling primitive, a reshape and a matmul, each of which wakes the
// threads for a few thousand multiply-adds at batch 1. x is read in NHWC (reordered there if it is not).
Napi::Value poolLinearInfer(const Napi::CallbackInfo& info) {
  const Dims xs = dimsArg(info, 1, "xShape");
  const Dims ws = dimsArg(info, 3, "wShape");
  if (xs.size() != 4) throw std::invalid_argument("expected x of rank 4 [N,C,H,W], received " + dimsStr(xs));
  const LinGeom g = linGeom({xs[0], xs[1]}, ws);
  const int64_t HW = xs[2] * xs[3];
  const Tensor& xt = tensorArg(info, 0, "x");
  const Tensor& bt = tensorArg(info, 4, "b");
  checkNumel(bt, {g.O}, "b");
  const memory::desc nhwc(xs, memory::data_type::f32, memory::format_tag::nhwc);
  Scratch tx, tw, tb;
  const float* x = static_cast<const float*>(viewAs(xt, xs, &nhwc, tx).get_data_handle());
  const float* w = static_cast<const float*>(plainData(tensorArg(info, 2, "w"), ws, tw));
  const float* b = static_cast<const float*>(plainData(bt, {g.O}, tb));
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), plainMd({g.N, g.O}), &y);
  float* yp = y->f();
  const int64_t C = g.I, O = g.O;
#pragma omp parallel for if (g.N >= 16)
  for (int64_t n = 0; n < g.N; n++) {
    std::vector<float> pooled(C, 0.f);
    const float* xn = x + n * HW * C;
    for (int64_t i = 0; i < HW; i++)
      for (int64_t c = 0; c < C; c++) pooled[c] += xn[i * C + c];
    for (int64_t c = 0; c < C; c++) pooled[c] /= static_cast<float>(HW);
    for (int64_t o = 0; o < O; o++) {
      const float* wo = w + o * C;
      float acc = 0.f;
      for (int64_t c = 0; c < C; c++) acc += pooled[c] * wo[c];
      yp[n * O + o] = acc + b[o];
    }
  }
  return out;
}

// linearBackward(dy, x, xShape, w, wShape, withBias) -> [dx [N,I], dw [O,I], db [O] | null]
Napi::Value linearBackward(const Napi::CallbackInfo& info) {
  const Dims wShape = dimsArg(info, 4, "wShape");
  const LinGeom g = linGeom(dimsArg(info, 2, "xShape"), wShape);
  const bool withBias = boolArg(info, 5, "withBias");
  Scratch tdy, tx, tw;
  const float* dy = static_cast<const float*>(plainData(tensorArg(info, 0, "dy"), {g.N, g.O}, tdy));
  const void* x = plainData(tensorArg(info, 1, "x"), g.x, tx);
  const void* w = plainData(tensorArg(info, 3, "w"), wShape, tw);
  Napi::Env env = info.Env();
  Tensor *dx, *dw, *db;
  Napi::Value dxOut = newTensor(env, plainMd(g.x), &dx);
  Napi::Value dwOut = newTensor(env, plainMd(wShape), &dw);
  matmul(plainMd({g.N, g.O}), dy, plainMd(wShape), w, nullptr, nullptr, dx->md, dx->ptr);
  matmul(strided({g.O, g.N}, {1, g.O}), dy, plainMd(g.x), x, nullptr, nullptr, dw->md, dw->ptr);
  Napi::Value dbOut = env.Null();
  if (withBias) {
    dbOut = newTensor(env, plainMd({g.O}), &db);
    float* o = db->f();
    for (int64_t j = 0; j < g.O; j++) {
      double s = 0;
      for (int64_t i = 0; i < g.N; i++) s += dy[i * g.O + j];
      o[j] = static_cast<float>(s);
    }
  }
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(uint32_t(0), dxOut);
  r.Set(uint32_t(1), dwOut);
  r.Set(uint32_t(2), dbOut);
  return r;
}

}  // namespace rn
