// native/pool.cc: 2-D average pooling, forward and backward, zero padding counted in the divisor.
//
// What it is: oneDNN pooling with algorithm pooling_avg_include_padding (PyTorch's count_include_pad=True),
// on the input's own layout. With symmetric padding no window reaches past the padded input, so dividing by
// the full kernel area is exactly PyTorch's rule.
// What it is not: max pooling (ResNet-18/CIFAR has none) or ceil mode.
// References: oneDNN 2.6 developer guide "Pooling" and dnnl.hpp pooling_forward / pooling_backward;
// PyTorch torch.nn.AvgPool2d documentation.
#include <stdexcept>

#include "context.h"
#include "ops.h"

namespace rn {

namespace {
using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;

struct PoolGeom {
  Dims x, y, kernel, stride, pad;
  std::string key;
};

PoolGeom poolGeom(const Napi::CallbackInfo& info, size_t xs) {
  PoolGeom g{dimsArg(info, xs, "xShape"), {}, pairArg(info, xs + 1, "kernel"), pairArg(info, xs + 2, "stride"),
             pairArg(info, xs + 3, "padding"), ""};
  if (g.x.size() != 4) throw std::invalid_argument("expected x of rank 4 [N,C,H,W], received " + dimsStr(g.x));
  if (g.stride[0] < 1 || g.stride[1] < 1 || g.kernel[0] < 1 || g.kernel[1] < 1)
    throw std::invalid_argument("expected kernel and stride >= 1, received kernel " + dimsStr(g.kernel) +
                                " stride " + dimsStr(g.stride));
  if (g.x[2] + 2 * g.pad[0] < g.kernel[0] || g.x[3] + 2 * g.pad[1] < g.kernel[1])
    throw std::invalid_argument("expected a kernel " + dimsStr(g.kernel) + " no larger than the padded input " +
                                dimsStr(g.x));
  const int64_t P = (g.x[2] + 2 * g.pad[0] - g.kernel[0]) / g.stride[0] + 1;
  const int64_t Q = (g.x[3] + 2 * g.pad[1] - g.kernel[1]) / g.stride[1] + 1;
  g.y = {g.x[0], g.x[1], P, Q};
  g.key = dimsStr(g.x) + dimsStr(g.kernel) + dimsStr(g.stride) + dimsStr(g.pad);
  return g;
}

dnnl::pooling_forward::primitive_desc fwdPd(const PoolGeom& g, const memory::desc& src) {
  using F = dnnl::pooling_forward;
  const memory::desc dst(g.y, memory::data_type::f32, tag::any);
  return F::primitive_desc(F::desc(prop_kind::forward_training, algorithm::pooling_avg_include_padding, src, dst,
                                   g.stride, g.kernel, g.pad, g.pad),
                           engine());
}

/** The format tag among the usual ones that describes md, or `undef` when none does. */
tag tagOf(const memory::desc& md) {
  for (tag t : {tag::nChw16c, tag::nChw8c, tag::nchw, tag::nhwc})
    if (md == memory::desc(md.dims(), memory::data_type::f32, t)) return t;
  return tag::undef;
}

/**
 * The layout each pooling geometry last saw its input in. Backward receives only dy, which often arrives plain
 * (ResNet's head reshapes [N,C,1,1] to [N,C] and back); producing dx in the forward input's layout keeps the
 * kernels before it (reluBackward, BN backward) on their blocked layout instead of reordering there.
 */
std::unordered_map<std::string, tag>& forwardTags() {
  static std::unordered_map<std::string, tag> m;
  return m;
}
}  // namespace

// avgPool2d(x, xShape, kernel, stride, padding) -> y [N,C,P,Q] in x's layout family
Napi::Value avgPool2d(const Napi::CallbackInfo& info) {
  const PoolGeom g = poolGeom(info, 1);
  const Tensor& x = tensorArg(info, 0, "x");
  Scratch tx;
  memory xm = viewAs(x, g.x, nullptr, tx);
  const tag t = tagOf(xm.get_desc());
  if (t != tag::undef) forwardTags()[g.key] = t;
  auto p = cachedPrim("pool_fwd|" + g.key + "|" + mdKey(xm.get_desc()), [&] {
    auto pd = fwdPd(g, xm.get_desc());
    return Prim{dnnl::pooling_forward(pd), pd, {}};
  });
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), p->pd.dst_desc(), &y);
  execute(*p, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, memory(y->md, engine(), y->ptr)}});
  return out;
}

// avgPool2dBackward(dy, xShape, kernel, stride, padding) -> dx [N,C,H,W]
Napi::Value avgPool2dBackward(const Napi::CallbackInfo& info) {
  const PoolGeom g = poolGeom(info, 1);
  const Tensor& dy = tensorArg(info, 0, "dy");
  checkNumel(dy, g.y, "dy");
  const auto seen = forwardTags().find(g.key);
  tag t = seen != forwardTags().end() ? seen->second : tagOf(dy.md.dims() == g.y ? dy.md : plainMd(g.y));
  if (t == tag::undef) t = tag::nchw;
  const memory::desc dyMd(g.y, memory::data_type::f32, t);
  auto p = cachedPrim("pool_bwd|" + g.key + "|" + std::to_string(int(t)), [&] {
    using B = dnnl::pooling_backward;
    auto hint = fwdPd(g, memory::desc(g.x, memory::data_type::f32, t));
    const memory::desc dxAny(g.x, memory::data_type::f32, tag::any);
    B::primitive_desc pd(B::desc(algorithm::pooling_avg_include_padding, dxAny, dyMd, g.stride, g.kernel, g.pad, g.pad),
                         engine(), hint);
    return Prim{B(pd), pd, hint};
  });
  const memory::desc want = p->pd.diff_dst_desc();
  Scratch tdy;
  memory dym = viewAs(dy, g.y, &want, tdy);
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), p->pd.diff_src_desc(), &dx);
  execute(*p, {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_SRC, memory(dx->md, engine(), dx->ptr)}});
  return out;
}

}  // namespace rn
