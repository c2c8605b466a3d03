// native/conv.cc: 2-D convolution forward, backward-data and backward-weights.
//
// What it is: x [N,C,H,W] * w [K,C,R,S] (+ b [K]) -> y [N,K,P,Q] with symmetric zero padding, any stride.
// 3x3 stride-1 layers with >= 16 channels go to our Winograd kernels (winograd.cc) on oneDNN's preferred
// channel-blocked layout; the others run oneDNN's direct primitives, created with format `any` so oneDNN picks
// its preferred layouts (nChw8c/nChw16c activations, blocked weights). Outputs stay in the chosen layout;
// inputs are reordered only when a kernel wants another one. Weights and weight gradients are plain oihw at the
// seam (sgdStep updates them in place), so they are transformed/reordered per call (small next to activations).
// RESNET_CONV_ALGO: winograd (default), direct (oneDNN direct everywhere), auto (oneDNN chooses).
// What it is not: dilation or groups (ResNet-18 needs neither).
// References: oneDNN 2.6 developer guide "Convolution" and dnnl.hpp convolution_forward /
// convolution_backward_data / convolution_backward_weights; PyTorch Conv2d output-size formula.
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "ops.h"
#include "winograd.h"

namespace rn {

namespace {
using dnnl::algorithm;
using dnnl::prop_kind;

struct ConvGeom {
  Dims x, w, y, stride, padL, padR;
  std::string key;
};

memory::desc anyMd(const Dims& d) { return memory::desc(d, memory::data_type::f32, memory::format_tag::any); }

ConvGeom convGeom(const Dims& x, const Dims& w, const Dims& stride, const Dims& pad) {
  if (x.size() != 4) throw std::invalid_argument("expected x of rank 4 [N,C,H,W], received " + dimsStr(x));
  if (w.size() != 4) throw std::invalid_argument("expected w of rank 4 [K,C,R,S], received " + dimsStr(w));
  if (x[1] != w[1])
    throw std::invalid_argument("expected w with C=" + std::to_string(x[1]) + " input channels like x " + dimsStr(x) +
                                ", received w " + dimsStr(w));
  if (stride[0] < 1 || stride[1] < 1) throw std::invalid_argument("expected strides >= 1, received " + dimsStr(stride));
  const int64_t P = (x[2] + 2 * pad[0] - w[2]) / stride[0] + 1;
  const int64_t Q = (x[3] + 2 * pad[1] - w[3]) / stride[1] + 1;
  if (x[2] + 2 * pad[0] < w[2] || x[3] + 2 * pad[1] < w[3])
    throw std::invalid_argument("expected a kernel " + dimsStr(w) + " no larger than the padded input " + dimsStr(x));
  ConvGeom g{x, w, {x[0], w[0], P, Q}, stride, pad, pad, ""};
  // oneDNN checks (H + padL + padR - R) / stride + 1 == P with integer division: symmetric padding satisfies it
  // exactly when PyTorch's floor formula does, and rows past the last window are simply never read.
  g.key = dimsStr(x) + dimsStr(w) + dimsStr(stride) + dimsStr(pad);
  return g;
}

/** RESNET_CONV_ALGO: winograd (default: ours on eligible layers, oneDNN direct elsewhere), direct, or auto. */
const std::string& algoChoice() {
  static const std::string choice = [] {
    const char* v = std::getenv("RESNET_CONV_ALGO");
    return std::string(v ? v : "winograd");
  }();
  return choice;
}

/** oneDNN's algorithm for the layers it runs: auto lets oneDNN choose (its own Winograd needs AVX-512). */
algorithm algoFor(const ConvGeom&) {
  return algoChoice() == "auto" ? algorithm::convolution_auto : algorithm::convolution_direct;
}

dnnl::convolution_forward::primitive_desc fwdPd(const ConvGeom& g, bool bias, algorithm algo) {
  using F = dnnl::convolution_forward;
  const F::desc d = bias ? F::desc(prop_kind::forward_training, algo, anyMd(g.x), anyMd(g.w), plainMd({g.w[0]}),
                                   anyMd(g.y), g.stride, g.padL, g.padR)
                         : F::desc(prop_kind::forward_training, algo, anyMd(g.x), anyMd(g.w), anyMd(g.y), g.stride,
                                   g.padL, g.padR);
  return F::primitive_desc(d, engine());
}

/** The channel block (8 or 16) of the activation layout oneDNN's direct kernel prefers here, 0 if plain. */
int64_t preferredBlock(const ConvGeom& g) {
  auto p = cachedPrim("conv_fwd|" + g.key + "|" + std::to_string(int(algorithm::convolution_direct)), [&] {
    auto pd = fwdPd(g, false, algorithm::convolution_direct);
    return Prim{dnnl::convolution_forward(pd), pd, {}};
  });
  const memory::desc dst = p->pd.dst_desc();
  for (int64_t vb : {16, 8})
    if (dst == memory::desc(g.y, memory::data_type::f32, vb == 16 ? memory::format_tag::nChw16c : memory::format_tag::nChw8c))
      return vb;
  return 0;
}

/**
 * The block for our Winograd kernels, or 0 to use oneDNN: 3x3, stride 1, symmetric padding <= 2, enough
 * channels for the GEMMs to pay (the 3-channel stem stays direct), and a blocked layout preferred here.
 */
int64_t winogradBlock(const ConvGeom& g) {
  if (algoChoice() != "winograd") return 0;
  const bool shape = g.w[2] == 3 && g.w[3] == 3 && g.stride[0] == 1 && g.stride[1] == 1 && g.padL[0] == g.padL[1] &&
                     g.padL[0] <= 2 && g.x[1] >= 16 && g.w[0] >= 16;
  return shape ? preferredBlock(g) : 0;
}

memory::desc blockedMd(const Dims& d, int64_t vb) {
  return memory::desc(d, memory::data_type::f32, vb == 16 ? memory::format_tag::nChw16c : memory::format_tag::nChw8c);
}

const float* dataOf(const memory& m) { return static_cast<const float*>(m.get_data_handle()); }

/** y[n][k][p][q] += b[k] on a blocked [N][Kp/VB][P][Q][VB] tensor (padding lanes untouched). */
void addBias(float* y, const float* b, const Dims& yd, int64_t vb) {
  const int64_t KB = (yd[1] + vb - 1) / vb, PQ = yd[2] * yd[3];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < yd[0]; n++)
    for (int64_t kb = 0; kb < KB; kb++) {
      float* p = y + (n * KB + kb) * PQ * vb;
      for (int64_t i = 0; i < PQ; i++)
        for (int64_t e = 0; e < vb && kb * vb + e < yd[1]; e++) p[i * vb + e] += b[kb * vb + e];
    }
}

/** db[k] = Σ dy[n][k][p][q] over a blocked dy. */
void biasGrad(const float* dy, const Dims& yd, int64_t vb, float* db) {
  const int64_t KB = (yd[1] + vb - 1) / vb, PQ = yd[2] * yd[3];
  for (int64_t k = 0; k < yd[1]; k++) {
    const int64_t kb = k / vb, e = k % vb;
    double s = 0;
    for (int64_t n = 0; n < yd[0]; n++)
      for (int64_t i = 0; i < PQ; i++) s += dy[((n * KB + kb) * PQ + i) * vb + e];
    db[k] = static_cast<float>(s);
  }
}

Napi::Value winoForward(Napi::Env env, const ConvGeom& g, int64_t vb, const Tensor& x, const Tensor& w, const Tensor* b) {
  const WinoGeom wg = winoGeom(g.x[0], g.x[1], g.w[0], g.x[2], g.x[3], g.padL[0], vb);
  const memory::desc xmd = blockedMd(g.x, vb), wmd = plainMd(g.w);
  Scratch tx, tw, tb;
  const float* xp = dataOf(viewAs(x, g.x, &xmd, tx));
  const float* wp = dataOf(viewAs(w, g.w, &wmd, tw));
  Tensor* y;
  Napi::Value out = newTensor(env, blockedMd(g.y, vb), &y);
  winogradForward(wg, xp, wp, false, y->f());
  if (b) addBias(y->f(), dataOf(viewAs(*b, {g.w[0]}, nullptr, tb)), g.y, vb);
  return out;
}

Napi::Value winoBackwardWeights(Napi::Env env, const ConvGeom& g, int64_t vb, const Tensor& dy, const Tensor& x, bool bias) {
  const WinoGeom wg = winoGeom(g.x[0], g.x[1], g.w[0], g.x[2], g.x[3], g.padL[0], vb);
  const memory::desc xmd = blockedMd(g.x, vb), dymd = blockedMd(g.y, vb);
  Scratch tx, tdy;
  const float* xp = dataOf(viewAs(x, g.x, &xmd, tx));
  const float* dyp = dataOf(viewAs(dy, g.y, &dymd, tdy));
  Tensor *dw, *db;
  Napi::Value dwOut = newTensor(env, plainMd(g.w), &dw);
  winogradBackwardWeights(wg, xp, dyp, dw->f());
  Napi::Value dbOut = env.Null();
  if (bias) {
    dbOut = newTensor(env, plainMd({g.w[0]}), &db);
    biasGrad(dyp, g.y, vb, db->f());
  }
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(uint32_t(0), dwOut);
  r.Set(uint32_t(1), dbOut);
  return r;
}

struct ConvArgs {
  ConvGeom g;
  ConvArgs(const Napi::CallbackInfo& info, size_t xs, size_t ws, size_t st)
      : g(convGeom(dimsArg(info, xs, "xShape"), dimsArg(info, ws, "wShape"), pairArg(info, st, "stride"),
                   pairArg(info, st + 1, "padding"))) {}
};
}  // namespace

// conv2d(x, xShape, w, wShape, b | null, stride, padding) -> y [N,K,P,Q] in the primitive's layout
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  const ConvGeom g = ConvArgs(info, 1, 3, 5).g;
  const Tensor& x = tensorArg(info, 0, "x");
  const Tensor& w = tensorArg(info, 2, "w");
  const Tensor* b = optTensorArg(info, 4, "b");
  checkNumel(x, g.x, "x");
  checkNumel(w, g.w, "w");
  if (b) checkNumel(*b, {g.w[0]}, "b");
  if (const int64_t vb = winogradBlock(g)) return winoForward(info.Env(), g, vb, x, w, b);
  const algorithm algo = algoFor(g);
  auto p = cachedPrim("conv_fwd|" + g.key + (b ? "|bias|" : "|") + std::to_string(int(algo)), [&] {
    auto pd = fwdPd(g, b != nullptr, algo);
    return Prim{dnnl::convolution_forward(pd), pd, {}};
  });
  const memory::desc srcMd = p->pd.src_desc(), wMd = p->pd.weights_desc();
  Scratch tx, tw, tb;
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, viewAs(x, g.x, &srcMd, tx)},
                                       {DNNL_ARG_WEIGHTS, viewAs(w, g.w, &wMd, tw)}};
  if (b) args[DNNL_ARG_BIAS] = viewAs(*b, {g.w[0]}, nullptr, tb);
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), p->pd.dst_desc(), &y);
  args[DNNL_ARG_DST] = memory(y->md, engine(), y->ptr);
  execute(*p, args);
  return out;
}

// conv2dBackwardData(dy, w, xShape, wShape, stride, padding) -> dx [N,C,H,W]
Napi::Value conv2dBackwardData(const Napi::CallbackInfo& info) {
  const ConvGeom g = ConvArgs(info, 2, 3, 4).g;
  const Tensor& dy = tensorArg(info, 0, "dy");
  const Tensor& w = tensorArg(info, 1, "w");
  checkNumel(dy, g.y, "dy");
  checkNumel(w, g.w, "w");
  if (const int64_t vb = winogradBlock(g)) {
    // dx = conv(dy, w rotated 180° with K and C swapped), padding 2 - p: a forward Winograd convolution
    const WinoGeom wg = winoGeom(g.y[0], g.w[0], g.w[1], g.y[2], g.y[3], 2 - g.padL[0], vb);
    const memory::desc dymd = blockedMd(g.y, vb), wmd = plainMd(g.w);
    Scratch tdy, tw;
    const float* dyp = dataOf(viewAs(dy, g.y, &dymd, tdy));
    const float* wp = dataOf(viewAs(w, g.w, &wmd, tw));
    Tensor* dx;
    Napi::Value out = newTensor(info.Env(), blockedMd(g.x, vb), &dx);
    winogradForward(wg, dyp, wp, true, dx->f());
    return out;
  }
  const algorithm algo = algoFor(g);
  auto p = cachedPrim("conv_bwd_data|" + g.key + "|" + std::to_string(int(algo)), [&] {
    using B = dnnl::convolution_backward_data;
    auto hint = fwdPd(g, false, algo);
    B::desc d(algo, anyMd(g.x), anyMd(g.w), anyMd(g.y), g.stride, g.padL, g.padR);
    B::primitive_desc pd(d, engine(), hint);
    return Prim{B(pd), pd, hint};
  });
  const memory::desc dyMd = p->pd.diff_dst_desc(), wMd = p->pd.weights_desc();
  Scratch tdy, tw;
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, viewAs(dy, g.y, &dyMd, tdy)},
                                       {DNNL_ARG_WEIGHTS, viewAs(w, g.w, &wMd, tw)}};
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), p->pd.diff_src_desc(), &dx);
  args[DNNL_ARG_DIFF_SRC] = memory(dx->md, engine(), dx->ptr);
  execute(*p, args);
  return out;
}

// conv2dBackwardWeights(dy, x, xShape, wShape, stride, padding, withBias) -> [dw (plain oihw), db | null]
Napi::Value conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  const ConvGeom g = ConvArgs(info, 2, 3, 4).g;
  const Tensor& dy = tensorArg(info, 0, "dy");
  const Tensor& x = tensorArg(info, 1, "x");
  const bool bias = boolArg(info, 6, "withBias");
  checkNumel(dy, g.y, "dy");
  checkNumel(x, g.x, "x");
  if (const int64_t vb = winogradBlock(g)) return winoBackwardWeights(info.Env(), g, vb, dy, x, bias);
  const algorithm algo = algoFor(g);
  auto p = cachedPrim("conv_bwd_w|" + g.key + (bias ? "|bias|" : "|") + std::to_string(int(algo)), [&] {
    using B = dnnl::convolution_backward_weights;
    auto hint = fwdPd(g, bias, algo);
    const B::desc d = bias ? B::desc(algo, anyMd(g.x), anyMd(g.w), plainMd({g.w[0]}), anyMd(g.y), g.stride, g.padL,
                                     g.padR)
                           : B::desc(algo, anyMd(g.x), anyMd(g.w), anyMd(g.y), g.stride, g.padL, g.padR);
    B::primitive_desc pd(d, engine(), hint);
    return Prim{B(pd), pd, hint};
  });
  const memory::desc srcMd = p->pd.src_desc(), dyMd = p->pd.diff_dst_desc(), dwMd = p->pd.diff_weights_desc();
  Scratch tx, tdy, tdw;
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, viewAs(x, g.x, &srcMd, tx)},
                                       {DNNL_ARG_DIFF_DST, viewAs(dy, g.y, &dyMd, tdy)}};
  Tensor* dw;
  Napi::Value dwOut = newTensor(info.Env(), plainMd(g.w), &dw);
  const bool direct = dwMd == dw->md;
  if (!direct) tdw = Scratch(dwMd.get_size());
  args[DNNL_ARG_DIFF_WEIGHTS] = memory(dwMd, engine(), direct ? dw->ptr : tdw.get());
  Napi::Value dbOut = info.Env().Null();
  if (bias) {
    Tensor* db;
    dbOut = newTensor(info.Env(), plainMd({g.w[0]}), &db);
    args[DNNL_ARG_DIFF_BIAS] = memory(db->md, engine(), db->ptr);
  }
  execute(*p, args);
  if (!direct) reorder(dwMd, tdw.get(), dw->md, dw->ptr);
  Napi::Array r = Napi::Array::New(info.Env(), 2);
  r.Set(uint32_t(0), dwOut);
  r.Set(uint32_t(1), dbOut);
  return r;
}

}  // namespace rn
