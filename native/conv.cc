// native/conv.cc: 2-D convolution forward, backward-data and backward-weights.
//
// What it is: x [N,C,H,W] * w [K,C,R,S] (+ b [K]) -> y [N,K,P,Q] with symmetric zero padding, any stride.
// Each pass (forward, backward-data, backward-weights) of each shape runs one of: oneDNN's direct primitive,
// oneDNN's Winograd (AVX-512 machines), oneDNN's own choice (`auto`), or our Winograd F(4x4,3x3) (winograd.cc,
// 3x3 stride-1 layers with >= 16 channels). Which one is the policy's business (conv_select.cc): by default the
// fastest, measured on first use. A "plan" is one algorithm made ready for one shape: the layout of its output
// and a function that runs it into a buffer, so candidates can be timed on scratch memory and the winner run for
// real. oneDNN primitives are created with format `any` so oneDNN picks its preferred layouts (nChw8c/nChw16c
// activations, blocked weights). Outputs stay in the chosen layout; inputs are reordered only when a kernel
// wants another one. Weights and weight gradients are plain oihw at the seam (sgdStep updates them in place),
// so they are transformed/reordered per call (small next to activations).
// Accuracy: the Winograd algorithms (ours and oneDNN's, both F(4x4,3x3)) round more than direct summation
// (~1e-5 of the output's magnitude against ~3e-7); the "deterministic" policy runs direct everywhere. Under bf16
// they run in f32 (makePlan), still far finer than bf16's ~4e-3.
// What it is not: dilation or groups (ResNet-18 needs neither).
// References: oneDNN 2.6 developer guide "Convolution" and dnnl.hpp convolution_forward /
// convolution_backward_data / convolution_backward_weights; PyTorch Conv2d output-size formula.
#include <cstdlib>
#include <map>
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "conv_geom.h"
#include "conv_select.h"
#include "precision.h"
#include "ops.h"
#include "winograd.h"

namespace rn {

namespace {
using dnnl::algorithm;
using dnnl::prop_kind;

dnnl::convolution_forward::primitive_desc fwdPd(const ConvGeom& g, bool bias, algorithm algo) {
  using F = dnnl::convolution_forward;
  const F::desc d = bias ? F::desc(prop_kind::forward_training, algo, anyMd(g.x, g.dt), anyMd(g.w, g.dt),
                                   plainMd({g.w[0]}), anyMd(g.y), g.stride, g.padL, g.padR)
                         : F::desc(prop_kind::forward_training, algo, anyMd(g.x, g.dt), anyMd(g.w, g.dt), anyMd(g.y),
                                   g.stride, g.padL, g.padR);
  return F::primitive_desc(d, engine());
}

/** The channel block (8 or 16) of the activation layout oneDNN's direct kernel prefers here, 0 if plain. */
int64_t preferredBlock(const ConvGeom& g) {
  auto p = cachedPrim("conv_fwd|" + g.key + "|direct", [&] {
    auto pd = fwdPd(g, false, algorithm::convolution_direct);
    return Prim{dnnl::convolution_forward(pd), pd, {}};
  });
  const memory::desc dst = p->pd.dst_desc();
  for (int64_t vb : {16, 8})
    if (dst == memory::desc(g.y, memory::data_type::f32, vb == 16 ? memory::format_tag::nChw16c : memory::format_tag::nChw8c))
      return vb;
  return 0;
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


algorithm dnnlAlgo(ConvAlgo a) {
  return a == ConvAlgo::Auto ? algorithm::convolution_auto
         : a == ConvAlgo::OnednnWinograd ? algorithm::convolution_winograd : algorithm::convolution_direct;
}

enum class Pass { Fwd, BwdData, BwdWeights };

/**
 * One algorithm ready for one shape and pass. run(a, b, bias, out, dbOut): forward (x, w, b) -> y; backward-data
 * (dy, w) -> dx; backward-weights (dy, x) -> dw (plain oihw) and db. `run` is empty when the algorithm does not
 * apply to this shape here (oneDNN has no such implementation, or ours needs a 3x3 stride-1 layer).
 */
struct Plan {
  memory::desc outMd;
  std::function<void(const Tensor&, const Tensor&, const Tensor*, void*, void*)> run;
};

/** The channel block of our Winograd for this layer, 0 where it does not apply (shape, or a plain layout). */
int64_t oursBlock(const ConvGeom& g) {
  if (g.dt != memory::data_type::f32) return 0;  // ours computes in fp32 only
  const bool shape = g.w[2] == 3 && g.w[3] == 3 && g.stride[0] == 1 && g.stride[1] == 1 && g.padL[0] == g.padL[1] &&
                     g.padL[0] <= 2 && g.x[1] >= 16 && g.w[0] >= 16;
  return shape ? preferredBlock(g) : 0;
}

Plan oursPlan(Pass pass, const ConvGeom& g) {
  const int64_t vb = oursBlock(g);
  if (!vb) return {};
  if (pass == Pass::Fwd)
    return {blockedMd(g.y, vb), [g, vb](const Tensor& x, const Tensor& w, const Tensor* b, void* y, void*) {
              const WinoGeom wg = winoGeom(g.x[0], g.x[1], g.w[0], g.x[2], g.x[3], g.padL[0], vb);
              const memory::desc xmd = blockedMd(g.x, vb), wmd = plainMd(g.w);
              Scratch tx, tw, tb;
              winogradForward(wg, dataOf(viewAs(x, g.x, &xmd, tx)), dataOf(viewAs(w, g.w, &wmd, tw)), false,
                              static_cast<float*>(y));
              if (b) addBias(static_cast<float*>(y), dataOf(viewAs(*b, {g.w[0]}, nullptr, tb)), g.y, vb);
            }};
  if (pass == Pass::BwdData)
    // dx = conv(dy, w rotated 180° with K and C swapped), padding 2 - p: a forward Winograd convolution
    return {blockedMd(g.x, vb), [g, vb](const Tensor& dy, const Tensor& w, const Tensor*, void* dx, void*) {
              const WinoGeom wg = winoGeom(g.y[0], g.w[0], g.w[1], g.y[2], g.y[3], 2 - g.padL[0], vb);
              const memory::desc dymd = blockedMd(g.y, vb), wmd = plainMd(g.w);
              Scratch tdy, tw;
              winogradForward(wg, dataOf(viewAs(dy, g.y, &dymd, tdy)), dataOf(viewAs(w, g.w, &wmd, tw)), true,
                              static_cast<float*>(dx));
            }};
  return {plainMd(g.w), [g, vb](const Tensor& dy, const Tensor& x, const Tensor*, void* dw, void* db) {
            const WinoGeom wg = winoGeom(g.x[0], g.x[1], g.w[0], g.x[2], g.x[3], g.padL[0], vb);
            const memory::desc xmd = blockedMd(g.x, vb), dymd = blockedMd(g.y, vb);
            Scratch tx, tdy;
            const float* dyp = dataOf(viewAs(dy, g.y, &dymd, tdy));
            winogradBackwardWeights(wg, dataOf(viewAs(x, g.x, &xmd, tx)), dyp, static_cast<float*>(dw));
            if (db) biasGrad(dyp, g.y, vb, static_cast<float*>(db));
          }};
}

Plan onednnFwd(const ConvGeom& g, bool bias, ConvAlgo a) {
  auto p = cachedPrim("conv_fwd|" + g.key + (bias ? "|bias|" : "|") + convAlgoName(a), [&] {
    auto pd = fwdPd(g, bias, dnnlAlgo(a));
    return Prim{dnnl::convolution_forward(pd), pd, {}};
  });
  return {p->pd.dst_desc(), [p, g](const Tensor& x, const Tensor& w, const Tensor* b, void* y, void*) {
            const memory::desc srcMd = p->pd.src_desc(), wMd = p->pd.weights_desc();
            Scratch tx, tw, tb;
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, viewAs(x, g.x, &srcMd, tx)},
                                                 {DNNL_ARG_WEIGHTS, viewAs(w, g.w, &wMd, tw)},
                                                 {DNNL_ARG_DST, memory(p->pd.dst_desc(), engine(), y)}};
            if (b) args[DNNL_ARG_BIAS] = viewAs(*b, {g.w[0]}, nullptr, tb);
            execute(*p, args);
          }};
}

Plan onednnBwdData(const ConvGeom& g, ConvAlgo a) {
  auto p = cachedPrim("conv_bwd_data|" + g.key + "|" + convAlgoName(a), [&] {
    using B = dnnl::convolution_backward_data;
    auto hint = fwdPd(g, false, dnnlAlgo(a));
    B::desc d(dnnlAlgo(a), anyMd(g.x), anyMd(g.w, g.dt), anyMd(g.y, g.dt), g.stride, g.padL, g.padR);
    B::primitive_desc pd(d, engine(), hint);
    return Prim{B(pd), pd, hint};
  });
  return {p->pd.diff_src_desc(), [p, g](const Tensor& dy, const Tensor& w, const Tensor*, void* dx, void*) {
            const memory::desc dyMd = p->pd.diff_dst_desc(), wMd = p->pd.weights_desc();
            Scratch tdy, tw;
            execute(*p, {{DNNL_ARG_DIFF_DST, viewAs(dy, g.y, &dyMd, tdy)},
                         {DNNL_ARG_WEIGHTS, viewAs(w, g.w, &wMd, tw)},
                         {DNNL_ARG_DIFF_SRC, memory(p->pd.diff_src_desc(), engine(), dx)}});
          }};
}

Plan onednnBwdWeights(const ConvGeom& g, bool bias, ConvAlgo a) {
  auto p = cachedPrim("conv_bwd_w|" + g.key + (bias ? "|bias|" : "|") + convAlgoName(a), [&] {
    using B = dnnl::convolution_backward_weights;
    auto hint = fwdPd(g, bias, dnnlAlgo(a));
    const B::desc d = bias ? B::desc(dnnlAlgo(a), anyMd(g.x, g.dt), anyMd(g.w), plainMd({g.w[0]}), anyMd(g.y, g.dt),
                                     g.stride, g.padL, g.padR)
                           : B::desc(dnnlAlgo(a), anyMd(g.x, g.dt), anyMd(g.w), anyMd(g.y, g.dt), g.stride, g.padL,
                                     g.padR);
    B::primitive_desc pd(d, engine(), hint);
    return Prim{B(pd), pd, hint};
  });
  return {plainMd(g.w), [p, g](const Tensor& dy, const Tensor& x, const Tensor*, void* dw, void* db) {
            const memory::desc srcMd = p->pd.src_desc(), dyMd = p->pd.diff_dst_desc(), dwMd = p->pd.diff_weights_desc();
            const memory::desc plain = plainMd(g.w);
            const bool direct = dwMd == plain;
            Scratch tx, tdy, tdw;
            if (!direct) tdw = Scratch(dwMd.get_size());
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, viewAs(x, g.x, &srcMd, tx)},
                                                 {DNNL_ARG_DIFF_DST, viewAs(dy, g.y, &dyMd, tdy)},
                                                 {DNNL_ARG_DIFF_WEIGHTS, memory(dwMd, engine(), direct ? dw : tdw.get())}};
            if (db) args[DNNL_ARG_DIFF_BIAS] = memory(plainMd({g.w[0]}), engine(), db);
            execute(*p, args);
            if (!direct) reorder(dwMd, tdw.get(), plain, dw);
          }};
}

/**
 * The plan of algorithm `a`, or an empty one where it does not apply. Under bf16 the Winograd algorithms (oneDNN
 * 2.6 has no bf16 Winograd, ours computes in f32) run in f32: their inputs are converted, their outputs are f32 as
 * every convolution's are. That is only more accurate than the bf16 direct kernel (f32 weights and products), and
 * it stays a candidate because it can still be the faster (the 512-channel stage on a Zen 5).
 */
Plan makePlan(Pass pass, ConvAlgo a, const ConvGeom& g, bool bias) {
  if (a == ConvAlgo::DirectBlocked || a == ConvAlgo::OursDirect || a == ConvAlgo::OursGemm) return {};  // inference-only algorithms
  if (g.dt == memory::data_type::bf16 && (a == ConvAlgo::OnednnWinograd || a == ConvAlgo::Ours)) {
    ConvGeom f32 = g;
    f32.dt = memory::data_type::f32;
    f32.key += "|f32";  // its primitives apart from both the bf16 and the fp32-precision ones
    return makePlan(pass, a, f32, bias);
  }
  if (a == ConvAlgo::Ours) return oursPlan(pass, g);
  try {
    if (pass == Pass::Fwd) return onednnFwd(g, bias, a);
    if (pass == Pass::BwdData) return onednnBwdData(g, a);
    return onednnBwdWeights(g, bias, a);
  } catch (const dnnl::error&) {
    return {};  // oneDNN has no implementation of this algorithm for this shape on this CPU
  }
}

/** The plan to run (conv_select.h's chooseConvAlgo: candidates timed on these very inputs, outputs to scratch). */
Plan choosePlan(Pass pass, const ConvGeom& g, bool bias, const Tensor& a, const Tensor& b, const Tensor* bt) {
  static const char* passes[] = {"fwd", "bwd_data", "bwd_weights"};
  std::map<ConvAlgo, Plan> made;
  auto plan = [&](ConvAlgo al) -> const Plan& {
    auto it = made.find(al);
    return it != made.end() ? it->second : made.emplace(al, makePlan(pass, al, g, bias)).first->second;
  };
  const ConvAlgo algo = chooseConvAlgo(
      std::string(passes[int(pass)]) + "|" + g.key + (bias ? "|bias" : ""),
      {ConvAlgo::Direct, ConvAlgo::OnednnWinograd, ConvAlgo::Ours}, [&](ConvAlgo al) { return bool(plan(al).run); },
      [&](ConvAlgo al) {
        const Plan& p = plan(al);
        Scratch out(p.outMd.get_size()), db;
        if (bias) db = Scratch(sizeof(float) * g.w[0]);
        return timeConvCandidate([&] { p.run(a, b, bt, out.get(), bias ? db.get() : nullptr); });
      });
  return plan(algo);
}

struct ConvArgs {
  ConvGeom g;
  ConvArgs(const Napi::CallbackInfo& info, size_t xs, size_t ws, size_t st)
      : g(convGeom(dimsArg(info, xs, "xShape"), dimsArg(info, ws, "wShape"), pairArg(info, st, "stride"),
                   pairArg(info, st + 1, "padding"))) {}
};
}  // namespace

// conv2d(x, xShape, w, wShape, b | null, stride, padding) -> y [N,K,P,Q] in the chosen algorithm's layout
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  const ConvGeom g = ConvArgs(info, 1, 3, 5).g;
  const Tensor& x = tensorArg(info, 0, "x");
  const Tensor& w = tensorArg(info, 2, "w");
  const Tensor* b = optTensorArg(info, 4, "b");
  checkNumel(x, g.x, "x");
  checkNumel(w, g.w, "w");
  if (b) checkNumel(*b, {g.w[0]}, "b");
  const Plan p = choosePlan(Pass::Fwd, g, b != nullptr, x, w, b);
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), p.outMd, &y);
  p.run(x, w, b, y->ptr, nullptr);
  return out;
}

// conv2dBackwardData(dy, w, xShape, wShape, stride, padding) -> dx [N,C,H,W]
Napi::Value conv2dBackwardData(const Napi::CallbackInfo& info) {
  const ConvGeom g = ConvArgs(info, 2, 3, 4).g;
  const Tensor& dy = tensorArg(info, 0, "dy");
  const Tensor& w = tensorArg(info, 1, "w");
  checkNumel(dy, g.y, "dy");
  checkNumel(w, g.w, "w");
  const Plan p = choosePlan(Pass::BwdData, g, false, dy, w, nullptr);
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), p.outMd, &dx);
  p.run(dy, w, nullptr, dx->ptr, nullptr);
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
  const Plan p = choosePlan(Pass::BwdWeights, g, bias, dy, x, nullptr);
  Tensor *dw, *db = nullptr;
  Napi::Value dwOut = newTensor(info.Env(), p.outMd, &dw);
  Napi::Value dbOut = bias ? newTensor(info.Env(), plainMd({g.w[0]}), &db) : info.Env().Null();
  p.run(dy, x, nullptr, dw->ptr, db ? db->ptr : nullptr);
  Napi::Array r = Napi::Array::New(info.Env(), 2);
  r.Set(uint32_t(0), dwOut);
  r.Set(uint32_t(1), dbOut);
  return r;
}

}  // namespace rn
