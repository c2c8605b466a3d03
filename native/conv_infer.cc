// native/conv_infer.cc: the inference convolution of a folded graph: y = act(conv(x, w) + b [+ residual]).
//
// What it is: one oneDNN forward_inference primitive per call, with the residual add (`sum`) and the ReLU as
// post-ops, so a ResNet block's second convolution, its shortcut add and its ReLU are one pass over memory.
// Batch norm is folded into w and b by the caller (src/models/inference.ts). Weights are normally frozen
// (freeze()): their reorder into the primitive's layout is made once and kept with the tensor. The algorithm
// (oneDNN direct or oneDNN Winograd, with the same post-ops) follows the convolution policy; under "benchmark"
// both are timed on first use of the shape, as for training (conv_select.cc), under keys of their own ("infer|");
// a candidate whose output layout differs from direct's is timed with the reorder back to it included.
// oneDNN direct with the activations forced into the channel-blocked layout is one more (its blocked kernels, where
// format `any` picks another implementation: under bf16 an nhwc brgemm kernel, slower for the 512-channel layers).
// Our Winograd is not a candidate: it has no post-ops, and the separate add and ReLU it would need are what this
// kernel exists to avoid. Our direct kernel for few input channels (small_conv.cc: the stem) is one, with bias
// and ReLU of its own; it writes NHWC, the layout oneDNN direct's neighbours read. So is our matrix-product kernel
// for small output maps (gemm_conv.cc: the last stages at batch 1), with bias, residual and ReLU of its own, NHWC.
// Under bf16 a `chained` output (one that only further convolutions read) is written in bf16, so the activations
// of the graph stay bf16 from one convolution to the next, as under PyTorch's autocast. oneDNN's Winograd, which has
// no bf16 form in 2.6, stays a candidate under bf16 in f32 (its inputs converted, its output f32): more accurate than
// the bf16 direct kernel, and on some shapes faster (the timing includes the conversions).
// What it is not: training (no workspace, no backward).
// References: oneDNN 2.6 developer guide, "Primitive Attributes: Post-ops" (sum, eltwise) and "Convolution".
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "conv_geom.h"
#include "conv_select.h"
#include "gemm_conv.h"
#include "ops.h"
#include "small_conv.h"

namespace rn {

namespace {
using dnnl::algorithm;

/**
 * How one call runs: a oneDNN primitive `p`, (`small`) our kernel for few input channels, or (`gemm`) our kernel for
 * small output maps, which adds the residual itself where `residual` says there is one; dst: y's layout.
 */
struct InferPlan {
  std::shared_ptr<Prim> p;
  memory::desc dst;
  bool small = false;
  bool gemm = false;
  bool residual = false;
  bool valid() const { return p != nullptr || small || gemm; }
};

/** Whether small_conv.cc's kernel can run this call: few input channels, f32 throughout, no residual. */
bool smallConvApplies(const ConvGeom& g, bool residual, memory::data_type ydt) {
  return g.x[1] <= kSmallConvMaxC && !residual && ydt == memory::data_type::f32 && g.dt == memory::data_type::f32;
}

/** Whether gemm_conv.cc's kernel can run this call: a small output map, whole blocks of output channels, f32. */
bool gemmConvApplies(const ConvGeom& g, memory::data_type ydt) {
  return g.y[0] * g.y[2] * g.y[3] <= kGemmConvMaxPixels && g.w[0] % kGemmConvBlock == 0 &&
         ydt == memory::data_type::f32 && g.dt == memory::data_type::f32;
}

InferPlan inferPlan(const ConvGeom& g, ConvAlgo a, bool residual, bool relu, memory::data_type ydt);

/** The oneDNN inference primitive for `algo` with these post-ops, src and dst in `srcMd` and `dstMd` (format any or set). */
InferPlan onednnInferPlan(const ConvGeom& g, const std::string& name, dnnl::algorithm algo, memory::data_type dt,
                          const memory::desc& srcMd, const memory::desc& dstMd, bool residual, bool relu) {
  const std::string key = std::string("conv_infer|") + g.key + "|" + name + (residual ? "|sum" : "") + (relu ? "|relu" : "") +
                          (dstMd.data_type() == memory::data_type::bf16 ? "|ybf16" : "");
  try {
    auto p = cachedPrim(key, [&] {
      using F = dnnl::convolution_forward;
      dnnl::post_ops po;
      if (residual) po.append_sum(1.f);
      if (relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(po);
      F::desc d(dnnl::prop_kind::forward_inference, algo, srcMd, anyMd(g.w, dt), plainMd({g.w[0]}), dstMd, g.stride,
                g.padL, g.padR);
      F::primitive_desc pd(d, attr, engine());
      return Prim{F(pd), pd, {}};
    });
    return {p, p->pd.dst_desc()};
  } catch (const dnnl::error&) {
    return {};
  }
}

/**
 * oneDNN direct with src and dst in the channel-blocked layout (nChw16c, else nChw8c): its blocked kernels, where
 * format `any` would pick another implementation (under bf16, nhwc and the brgemm kernel). Invalid where it gives
 * the layout direct already has (nothing new to time) or no implementation takes it.
 */
InferPlan blockedPlan(const ConvGeom& g, bool residual, bool relu, memory::data_type ydt) {
  const InferPlan direct = inferPlan(g, ConvAlgo::Direct, residual, relu, ydt);
  for (auto tag : {memory::format_tag::nChw16c, memory::format_tag::nChw8c}) {
    if (g.x[1] % (tag == memory::format_tag::nChw16c ? 16 : 8) != 0) continue;
    const InferPlan p = onednnInferPlan(g, tag == memory::format_tag::nChw16c ? "direct-b16" : "direct-b8",
                                        dnnl::algorithm::convolution_direct, g.dt, memory::desc(g.x, g.dt, tag),
                                        memory::desc(g.y, ydt, tag), residual, relu);
    if (p.valid()) return direct.valid() && p.dst == direct.dst ? InferPlan{} : p;
  }
  return {};
}

/** The plan for algorithm a with these post-ops; invalid when a does not apply to this shape here. */
InferPlan inferPlan(const ConvGeom& g, ConvAlgo a, bool residual, bool relu, memory::data_type ydt) {
  if (a == ConvAlgo::OursDirect) {
    if (!smallConvApplies(g, residual, ydt)) return {};
    return {nullptr, memory::desc(g.y, memory::data_type::f32, memory::format_tag::nhwc), true};
  }
  if (a == ConvAlgo::OursGemm) {
    if (!gemmConvApplies(g, ydt)) return {};
    InferPlan p{nullptr, memory::desc(g.y, memory::data_type::f32, memory::format_tag::nhwc)};
    p.gemm = true;
    p.residual = residual;
    return p;
  }
  if (a == ConvAlgo::Ours) return {};
  if (a == ConvAlgo::DirectBlocked) return blockedPlan(g, residual, relu, ydt);
  // oneDNN 2.6 has no bf16 Winograd: under bf16 it runs in f32 (inputs converted, f32 output), which is only more
  // accurate, and is a candidate because it can still be the faster (the 512-channel stage on a Zen 5: about 1.8x)
  const bool f32Winograd = a == ConvAlgo::OnednnWinograd && g.dt == memory::data_type::bf16;
  const memory::data_type dt = f32Winograd ? memory::data_type::f32 : g.dt;
  if (f32Winograd) ydt = memory::data_type::f32;
  const algorithm algo = a == ConvAlgo::OnednnWinograd ? algorithm::convolution_winograd
                         : a == ConvAlgo::Auto         ? algorithm::convolution_auto
                                                       : algorithm::convolution_direct;
  return onednnInferPlan(g, convAlgoName(a), algo, dt, anyMd(g.x, dt), anyMd(g.y, ydt), residual, relu);
}

/** small_conv.cc's kernel: x read plain NCHW, the frozen weights kept transposed to [C][R][S][K] (tag bcda). */
void runSmall(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b, bool relu, void* y) {
  Scratch tx, tw, tb;
  const memory::desc xPlain = plainMd(g.x), wT(g.w, memory::data_type::f32, memory::format_tag::bcda);
  const float* xp = static_cast<const float*>(viewAs(x, g.x, &xPlain, tx).get_data_handle());
  const float* wt = static_cast<const float*>(viewFrozen(w, g.w, wT, tw).get_data_handle());
  const float* bp = static_cast<const float*>(viewAs(b, {g.w[0]}, nullptr, tb).get_data_handle());
  const SmallConvGeom sg{g.x[0], g.x[1], g.x[2], g.x[3], g.w[0], g.w[2], g.w[3], g.y[2], g.y[3],
                         g.stride[0], g.stride[1], g.padL[0], g.padL[1]};
  ProfScope prof("(small conv)");
  smallConvForward(sg, xp, wt, bp, relu, static_cast<float*>(y));
}

/**
 * gemm_conv.cc's kernel: x read NHWC, the frozen weights kept in Acdb16a. With `residual` null but the plan's
 * residual set, the residual is already in y (the in-place call of conv2dInfer) and is read from there.
 */
void runGemm(const InferPlan& ip, const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b,
             const Tensor* residual, bool relu, void* y) {
  Scratch tx, tw, tb, tr;
  const memory::desc xNhwc(g.x, memory::data_type::f32, memory::format_tag::nhwc);
  const memory::desc wBlocked(g.w, memory::data_type::f32, memory::format_tag::Acdb16a);
  const float* xp = static_cast<const float*>(viewAs(x, g.x, &xNhwc, tx).get_data_handle());
  const float* wp = static_cast<const float*>(viewFrozen(w, g.w, wBlocked, tw).get_data_handle());
  const float* bp = static_cast<const float*>(viewAs(b, {g.w[0]}, nullptr, tb).get_data_handle());
  const float* rp = residual ? static_cast<const float*>(viewAs(*residual, g.y, &ip.dst, tr).get_data_handle())
                    : ip.residual ? static_cast<const float*>(y)
                                  : nullptr;
  const GemmConvGeom gg{g.x[0], g.x[1], g.x[2], g.x[3], g.w[0], g.w[2], g.w[3], g.y[2], g.y[3],
                        g.stride[0], g.stride[1], g.padL[0], g.padL[1]};
  ProfScope prof("(gemm conv)");
  gemmConvForward(gg, xp, wp, bp, rp, relu, static_cast<float*>(y));
}

/** Runs plan into y: the residual (if any) is first copied into y in y's layout, for the sum post-op. */
void runInfer(const InferPlan& ip, const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b,
              const Tensor* residual, void* y, bool relu) {
  if (ip.small) return runSmall(g, x, w, b, relu, y);
  if (ip.gemm) return runGemm(ip, g, x, w, b, residual, relu, y);
  const memory::desc srcMd = ip.p->pd.src_desc(), wMd = ip.p->pd.weights_desc();
  Scratch tx, tw, tb, tr;
  if (residual) std::memcpy(y, viewAs(*residual, g.y, &ip.dst, tr).get_data_handle(), ip.dst.get_size());
  execute(*ip.p, {{DNNL_ARG_SRC, viewAs(x, g.x, &srcMd, tx)},
                  {DNNL_ARG_WEIGHTS, viewFrozen(w, g.w, wMd, tw)},
                  {DNNL_ARG_BIAS, viewAs(b, {g.w[0]}, nullptr, tb)},
                  {DNNL_ARG_DST, memory(ip.dst, engine(), y)}});
}

ConvAlgo chooseInfer(const ConvGeom& g, bool residual, bool relu, memory::data_type ydt, const Tensor& x,
                     const Tensor& w, const Tensor& b, const Tensor* r) {
  return chooseConvAlgo(
      "infer|" + g.key + (residual ? "|sum" : "") + (relu ? "|relu" : "") +
          (ydt == memory::data_type::bf16 ? "|ybf16" : ""),
      {ConvAlgo::Direct, ConvAlgo::DirectBlocked, ConvAlgo::OursDirect, ConvAlgo::OursGemm, ConvAlgo::OnednnWinograd},
      [&](ConvAlgo a) { return inferPlan(g, a, residual, relu, ydt).valid(); },
      [&](ConvAlgo a) {
        // a candidate writing another layout than oneDNN direct's (the one its direct neighbours read and
        // write) is charged the reorder back to it, which the next layer would otherwise pay unseen
        const InferPlan p = inferPlan(g, a, residual, relu, ydt);
        const InferPlan direct = a == ConvAlgo::Direct ? p : inferPlan(g, ConvAlgo::Direct, residual, relu, ydt);
        const bool relayout = direct.valid() && !(p.dst == direct.dst);
        Scratch out(p.dst.get_size()), back(relayout ? direct.dst.get_size() : 0);
        return timeConvCandidateCold([&] {
          runInfer(p, g, x, w, b, r, out.get(), relu);
          if (relayout) reorder(p.dst, out.get(), direct.dst, back.get());
        });
      });
}
}  // namespace

// conv2dInfer(x, xShape, w, wShape, b, stride, padding, residual | null, relu, chained, direct) -> y [N,K,P,Q]
// chained: y is read only by further conv2dInfer calls (as x or residual), so under bf16 it is written in bf16:
// the next convolution reads bf16 anyway, and the activation costs half the memory traffic and no reorder.
// direct: direct convolutions only, no Winograd (the graph's whole-forward comparison, inference.ts): oneDNN
// direct, or our small-channel kernel where the policy chose it.
// consume: the residual is disposed by the call; where it already has y's layout (and is not x), y is written
// into its buffer: no copy of the residual for the sum post-op and no new buffer.
Napi::Value conv2dInfer(const Napi::CallbackInfo& info) {
  const ConvGeom g = convGeom(dimsArg(info, 1, "xShape"), dimsArg(info, 3, "wShape"), pairArg(info, 5, "stride"),
                              pairArg(info, 6, "padding"));
  const Tensor& x = tensorArg(info, 0, "x");
  const Tensor& w = tensorArg(info, 2, "w");
  const Tensor& b = tensorArg(info, 4, "b");
  const Tensor* r = optTensorArg(info, 7, "residual");
  const bool relu = boolArg(info, 8, "relu");
  const bool chained = info.Length() > 9 && boolArg(info, 9, "chained");
  const memory::data_type ydt = chained && bf16Compute() ? memory::data_type::bf16 : memory::data_type::f32;
  checkNumel(x, g.x, "x");
  checkNumel(w, g.w, "w");
  checkNumel(b, {g.w[0]}, "b");
  if (r) checkNumel(*r, g.y, "residual");
  const bool direct = info.Length() > 10 && boolArg(info, 10, "direct");
  const bool consume = info.Length() > 11 && boolArg(info, 11, "consume");
  ConvAlgo algo = chooseInfer(g, r != nullptr, relu, ydt, x, w, b, r);
  if (direct && algo != ConvAlgo::OursDirect) algo = ConvAlgo::Direct;  // oneDNN's own direct layouts, no Winograd
  const InferPlan p = inferPlan(g, algo, r != nullptr, relu, ydt);
  if (!p.valid()) throw std::runtime_error(std::string("conv2dInfer: no ") + convAlgoName(algo) + " convolution for " + g.key);
  if (consume && r && !r->frozen && r->ptr != x.ptr && r->md == p.dst) {
    // y = conv(x) + y in place: the sum post-op reads the residual from the buffer the output goes to
    runInfer(p, g, x, w, b, nullptr, r->ptr, relu);
    return adoptBuffer(info.Env(), *const_cast<Tensor*>(r));
  }
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), p.dst, &y);
  runInfer(p, g, x, w, b, r, y->ptr, relu);
  if (consume && r) disposeTensor(info.Env(), *const_cast<Tensor*>(r));
  return out;
}

// freeze(t): t will never be written again; kernels may keep the copies they reorder it into
Napi::Value freeze(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "t").frozen = true;
  return info.Env().Undefined();
}

}  // namespace rn
