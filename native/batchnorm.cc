// native/batchnorm.cc: 2-D batch normalisation (per channel over N,H,W), forward and backward, with an
// optionally fused ReLU.
//
// What it is: oneDNN batch_normalization on the input's own layout (nChw16c after a convolution), with
// separate scale (gamma) and shift (beta). Training normalises with the batch statistics, saves the batch mean
// and (biased) variance for backward, and updates the running statistics here (PyTorch's rule: running =
// (1-m)·running + m·batch, the variance unbiased by n/(n-1), n = N·H·W). With the fused ReLU, training keeps
// oneDNN's workspace (the ReLU mask) for backward. Eval normalises with the running statistics and saves
// copies of them, so that backward in eval mode is possible too.
// What it is not: other normalisations (layer/group norm).
// References: oneDNN 2.6 developer guide "Batch Normalization" (flags use_scale, use_shift, fuse_norm_relu,
// use_global_stats); PyTorch torch.nn.BatchNorm2d documentation (momentum, unbiased running variance).
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "ops.h"

namespace rn {

namespace {
using dnnl::normalization_flags;
using dnnl::prop_kind;
using BnF = dnnl::batch_normalization_forward;
using BnB = dnnl::batch_normalization_backward;

normalization_flags flagsFor(bool training, bool relu) {
  normalization_flags f = normalization_flags::use_scale | normalization_flags::use_shift;
  if (!training) f = f | normalization_flags::use_global_stats;
  if (relu) f = f | normalization_flags::fuse_norm_relu;
  return f;
}

std::string bnKey(const memory::desc& md, float eps, normalization_flags f) {
  return mdKey(md) + "|" + std::to_string(eps) + "|" + std::to_string(static_cast<unsigned>(f));
}

BnF::primitive_desc fwdPd(const memory::desc& md, float eps, bool training, bool relu) {
  const prop_kind pk = training ? prop_kind::forward_training : prop_kind::forward_inference;
  return BnF::primitive_desc(BnF::desc(pk, md, eps, flagsFor(training, relu)), engine());
}

std::shared_ptr<Prim> fwdPrim(const memory::desc& md, float eps, bool training, bool relu) {
  return cachedPrim("bn_fwd|" + std::to_string(training) + bnKey(md, eps, flagsFor(training, relu)), [&] {
    auto pd = fwdPd(md, eps, training, relu);
    return Prim{BnF(pd), pd, {}};
  });
}

void checkShape(const Dims& s) {
  if (s.size() != 4) throw std::invalid_argument("expected x of rank 4 [N,C,H,W], received " + dimsStr(s));
}

memory vec(const Tensor& t, int64_t C, const char* what, Scratch& tmp) {
  checkNumel(t, {C}, what);
  return viewAs(t, {C}, nullptr, tmp);
}

/** running = (1-m)·running + m·batch; the variance unbiased by n/(n-1) as PyTorch does. */
void updateRunning(Tensor& rm, Tensor& rv, const float* mean, const float* var, int64_t C, double m, int64_t n) {
  adoptLayout(rm, plainMd({C}));
  adoptLayout(rv, plainMd({C}));
  const double unbias = n > 1 ? double(n) / double(n - 1) : 1.0;
  float* a = rm.f();
  float* b = rv.f();
  for (int64_t c = 0; c < C; c++) {
    a[c] = static_cast<float>((1 - m) * a[c] + m * mean[c]);
    b[c] = static_cast<float>((1 - m) * b[c] + m * var[c] * unbias);
  }
}
}  // namespace

// batchNorm2d(x, shape, gamma, beta, runningMean, runningVar, eps, momentum, training, relu)
//   -> [y, mean, var, workspace | null]   (mean/var: batch statistics, or copies of the running ones in eval)
Napi::Value batchNorm2d(const Napi::CallbackInfo& info) {
  const Tensor& x = tensorArg(info, 0, "x");
  const Dims s = dimsArg(info, 1, "shape");
  checkShape(s);
  const int64_t C = s[1];
  Tensor& rm = tensorArg(info, 4, "runningMean");
  Tensor& rv = tensorArg(info, 5, "runningVar");
  const float eps = static_cast<float>(numArg(info, 6, "eps"));
  const double momentum = numArg(info, 7, "momentum");
  const bool training = boolArg(info, 8, "training");
  const bool relu = boolArg(info, 9, "relu");
  Scratch tx, tg, tb, tm, tv;
  memory xm = viewAs(x, s, nullptr, tx);
  const memory::desc md = xm.get_desc();
  auto p = fwdPrim(md, eps, training, relu);
  Napi::Env env = info.Env();
  Tensor *y, *mean, *var, *ws = nullptr;
  Napi::Value yOut = newTensor(env, p->pd.dst_desc(), &y);
  Napi::Value meanOut = newTensor(env, plainMd({C}), &mean);
  Napi::Value varOut = newTensor(env, plainMd({C}), &var);
  Napi::Value wsOut = env.Null();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm},
                                       {DNNL_ARG_DST, memory(y->md, engine(), y->ptr)},
                                       {DNNL_ARG_SCALE, vec(tensorArg(info, 2, "gamma"), C, "gamma", tg)},
                                       {DNNL_ARG_SHIFT, vec(tensorArg(info, 3, "beta"), C, "beta", tb)},
                                       {DNNL_ARG_MEAN, memory(mean->md, engine(), mean->ptr)},
                                       {DNNL_ARG_VARIANCE, memory(var->md, engine(), var->ptr)}};
  if (training && relu) {
    wsOut = newTensor(env, p->pd.workspace_desc(), &ws);
    args[DNNL_ARG_WORKSPACE] = memory(ws->md, engine(), ws->ptr);
  }
  if (!training) {
    // global statistics are inputs: copy the running ones into the saved mean/var and read those
    const memory rmm = vec(rm, C, "runningMean", tm), rvm = vec(rv, C, "runningVar", tv);
    std::memcpy(mean->ptr, rmm.get_data_handle(), C * sizeof(float));
    std::memcpy(var->ptr, rvm.get_data_handle(), C * sizeof(float));
  }
  execute(*p, args);
  if (training) {
    checkNumel(rm, {C}, "runningMean");
    checkNumel(rv, {C}, "runningVar");
    updateRunning(rm, rv, mean->f(), var->f(), C, momentum, s[0] * s[2] * s[3]);
  }
  Napi::Array r = Napi::Array::New(env, 4);
  r.Set(uint32_t(0), yOut);
  r.Set(uint32_t(1), meanOut);
  r.Set(uint32_t(2), varOut);
  r.Set(uint32_t(3), wsOut);
  return r;
}

namespace {
/** Eval mode with a fused ReLU keeps no mask: recompute y and zero dy where y <= 0. */
void maskByEvalOutput(const memory& xm, const memory& gamma, const memory& beta, const memory& mean,
                      const memory& var, float eps, float* dy, Scratch& keep) {
  const memory::desc md = xm.get_desc();
  auto p = fwdPrim(md, eps, false, true);
  Scratch y(md.get_size());
  execute(*p, {{DNNL_ARG_SRC, xm},
               {DNNL_ARG_DST, memory(md, engine(), y.get())},
               {DNNL_ARG_SCALE, gamma},
               {DNNL_ARG_SHIFT, beta},
               {DNNL_ARG_MEAN, mean},
               {DNNL_ARG_VARIANCE, var}});
  const float* yp = static_cast<const float*>(y.get());
  const int64_t n = static_cast<int64_t>(md.get_size() / sizeof(float));
  float* out = static_cast<float*>(keep.get());
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; i++) out[i] = yp[i] > 0.f ? dy[i] : 0.f;
}
}  // namespace

// batchNorm2dBackward(dy, x, shape, gamma, beta, mean, var, workspace | null, eps, training, relu)
//   -> [dx, dgamma, dbeta]
Napi::Value batchNorm2dBackward(const Napi::CallbackInfo& info) {
  const Tensor& dyT = tensorArg(info, 0, "dy");
  const Tensor& x = tensorArg(info, 1, "x");
  const Dims s = dimsArg(info, 2, "shape");
  checkShape(s);
  const int64_t C = s[1];
  const float eps = static_cast<float>(numArg(info, 8, "eps"));
  const bool training = boolArg(info, 9, "training");
  const bool relu = boolArg(info, 10, "relu");
  const Tensor* ws = optTensorArg(info, 7, "workspace");
  if (training && relu && !ws) throw std::invalid_argument("expected the saved ReLU workspace, received null");
  checkNumel(dyT, s, "dy");
  Scratch tx, tdy, tg, tb, tm, tv, masked;
  memory xm = viewAs(x, s, nullptr, tx);
  const memory::desc md = xm.get_desc();
  memory dym = viewAs(dyT, s, &md, tdy);
  const memory gamma = vec(tensorArg(info, 3, "gamma"), C, "gamma", tg);
  const memory beta = vec(tensorArg(info, 4, "beta"), C, "beta", tb);
  const memory mean = vec(tensorArg(info, 5, "mean"), C, "mean", tm);
  const memory var = vec(tensorArg(info, 6, "var"), C, "var", tv);
  const bool fuse = training && relu;  // eval + relu masks dy itself (no workspace)
  if (!training && relu) {
    masked = Scratch(md.get_size());
    maskByEvalOutput(xm, gamma, beta, mean, var, eps, static_cast<float*>(dym.get_data_handle()), masked);
    dym = memory(md, engine(), masked.get());
  }
  const normalization_flags f = flagsFor(training, fuse);
  auto p = cachedPrim("bn_bwd|" + bnKey(md, eps, f), [&] {
    // the hint is a training forward: with use_global_stats it takes the statistics as inputs
    auto hint = BnF::primitive_desc(BnF::desc(prop_kind::forward_training, md, eps, f), engine());
    BnB::primitive_desc pd(BnB::desc(prop_kind::backward, md, md, eps, f), engine(), hint);
    return Prim{BnB(pd), pd, hint};
  });
  Napi::Env env = info.Env();
  Tensor *dx, *dg, *db;
  Napi::Value dxOut = newTensor(env, p->pd.diff_src_desc(), &dx);
  Napi::Value dgOut = newTensor(env, plainMd({C}), &dg);
  Napi::Value dbOut = newTensor(env, plainMd({C}), &db);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm},
                                       {DNNL_ARG_DIFF_DST, dym},
                                       {DNNL_ARG_SCALE, gamma},
                                       {DNNL_ARG_SHIFT, beta},  // not read, but oneDNN 2.6 checks it is passed
                                       {DNNL_ARG_MEAN, mean},
                                       {DNNL_ARG_VARIANCE, var},
                                       {DNNL_ARG_DIFF_SRC, memory(dx->md, engine(), dx->ptr)},
                                       {DNNL_ARG_DIFF_SCALE, memory(dg->md, engine(), dg->ptr)},
                                       {DNNL_ARG_DIFF_SHIFT, memory(db->md, engine(), db->ptr)}};
  if (fuse) args[DNNL_ARG_WORKSPACE] = memory(ws->md, engine(), ws->ptr);
  execute(*p, args);
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(uint32_t(0), dxOut);
  r.Set(uint32_t(1), dgOut);
  r.Set(uint32_t(2), dbOut);
  return r;
}

}  // namespace rn
