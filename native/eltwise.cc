// native/eltwise.cc: elementwise kernels (add, addInPlace, scale, relu, reluBackward, addRelu, sum) and the
// SGD update.
//
// What it is: our own OpenMP + SIMD loops over the physical buffer. They work on any layout, blocked ones
// included, as long as every operand shares it: the first operand's layout wins and the others are reordered
// to it when they differ (padding lanes of blocked layouts hold zeros and stay zero under every op here).
// What it is not: broadcasting or strided views; shapes above the seam are already equal.
// References: torch.optim.SGD's update rule (documented in src/backend/backend.ts); OpenMP 4.5 `parallel for
// simd`, `reduction`.
#include <cstring>
#include <stdexcept>

#include "context.h"
#include "ops.h"

namespace rn {

namespace {
// below this many elements a parallel region costs more than it saves
constexpr int64_t kParallel = 1 << 15;

int64_t physical(const Tensor& t) { return static_cast<int64_t>(t.md.get_size() / sizeof(float)); }

/** b's data in a's layout (a reorder into tmp when they differ). */
const float* like(const Tensor& a, const Tensor& b, Scratch& tmp) {
  return static_cast<const float*>(viewAs(b, a.md.dims(), &a.md, tmp).get_data_handle());
}

struct Binary {
  const Tensor& a;
  const float* b;
  Scratch tmp;
  Binary(const Napi::CallbackInfo& info, const char* an, const char* bn)
      : a(tensorArg(info, 0, an)) {
    const Tensor& bt = tensorArg(info, 1, bn);
    const Dims shape = dimsArg(info, 2, "shape");
    checkNumel(a, shape, an);
    checkNumel(bt, shape, bn);
    b = like(a, bt, tmp);
  }
};
}  // namespace

// add(a, b, shape) -> a + b
Napi::Value add(const Napi::CallbackInfo& info) {
  Binary op(info, "a", "b");
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), op.a.md, &y);
  const float* a = op.a.f();
  const float* b = op.b;
  float* o = y->f();
  const int64_t n = physical(op.a);
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
  return out;
}

// addInPlace(a, b, shape): a += b
Napi::Value addInPlace(const Napi::CallbackInfo& info) {
  Binary op(info, "a", "b");
  checkWritable(op.a, "a");
  float* a = op.a.f();
  const float* b = op.b;
  const int64_t n = physical(op.a);
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) a[i] += b[i];
  return info.Env().Undefined();
}

// addRelu(a, b, shape) -> max(0, a + b)
Napi::Value addRelu(const Napi::CallbackInfo& info) {
  Binary op(info, "a", "b");
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), op.a.md, &y);
  const float* a = op.a.f();
  const float* b = op.b;
  float* o = y->f();
  const int64_t n = physical(op.a);
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) {
    const float s = a[i] + b[i];
    o[i] = s <= 0.f ? 0.f : s;  // NaN stays NaN, as in PyTorch
  }
  return out;
}

// reluBackward(dy, y, shape) -> dy where y > 0, else 0 (in y's layout)
Napi::Value reluBackward(const Napi::CallbackInfo& info) {
  const Tensor& dyT = tensorArg(info, 0, "dy");
  const Tensor& yT = tensorArg(info, 1, "y");
  const Dims shape = dimsArg(info, 2, "shape");
  checkNumel(dyT, shape, "dy");
  checkNumel(yT, shape, "y");
  Scratch tmp;
  const float* dy = like(yT, dyT, tmp);
  const float* y = yT.f();
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), yT.md, &dx);
  float* o = dx->f();
  const int64_t n = physical(yT);
  // dy is read unconditionally so that the select vectorises (and/andnot): a conditional load compiled to a
  // scalar loop with a branch on the sign, which random signs mispredict (~7x slower than memory, measured).
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) {
    const float d = dy[i];
    o[i] = y[i] > 0.f ? d : 0.f;
  }
  return out;
}

// relu(x, shape) -> max(0, x)
Napi::Value relu(const Napi::CallbackInfo& info) {
  const Tensor& xT = tensorArg(info, 0, "x");
  checkNumel(xT, dimsArg(info, 1, "shape"), "x");
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), xT.md, &y);
  const float* x = xT.f();
  float* o = y->f();
  const int64_t n = physical(xT);
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) o[i] = x[i] <= 0.f ? 0.f : x[i];  // NaN stays NaN, as in PyTorch
  return out;
}

// scale(a, s, shape) -> a * s
Napi::Value scale(const Napi::CallbackInfo& info) {
  const Tensor& aT = tensorArg(info, 0, "a");
  const float s = static_cast<float>(numArg(info, 1, "s"));
  checkNumel(aT, dimsArg(info, 2, "shape"), "a");
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), aT.md, &y);
  const float* a = aT.f();
  float* o = y->f();
  const int64_t n = physical(aT);
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) o[i] = a[i] * s;
  return out;
}

// sum(a, shape) -> number (accumulated in double)
Napi::Value sum(const Napi::CallbackInfo& info) {
  const Tensor& aT = tensorArg(info, 0, "a");
  checkNumel(aT, dimsArg(info, 1, "shape"), "a");
  const float* a = aT.f();
  const int64_t n = physical(aT);
  double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) if (n > kParallel)
  for (int64_t i = 0; i < n; i++) acc += a[i];
  return Napi::Number::New(info.Env(), acc);
}

// sgdStep(param, grad, momentumBuf | null, shape, lr, momentum, dampening, weightDecay, nesterov, firstStep)
Napi::Value sgdStep(const Napi::CallbackInfo& info) {
  Tensor& pT = tensorArg(info, 0, "param");
  const Tensor& gT = tensorArg(info, 1, "grad");
  Tensor* bT = optTensorArg(info, 2, "momentumBuf");
  const Dims shape = dimsArg(info, 3, "shape");
  const float lr = static_cast<float>(numArg(info, 4, "lr"));
  const float mom = static_cast<float>(numArg(info, 5, "momentum"));
  const float damp = static_cast<float>(numArg(info, 6, "dampening"));
  const float wd = static_cast<float>(numArg(info, 7, "weightDecay"));
  const bool nesterov = boolArg(info, 8, "nesterov");
  const bool first = boolArg(info, 9, "firstStep");
  checkNumel(pT, shape, "param");
  checkNumel(gT, shape, "grad");
  checkWritable(pT, "param");
  if (mom != 0.f && !bT) throw std::invalid_argument("expected a momentumBuf when momentum is non-zero, received null");
  Scratch tmp;
  const float* g = like(pT, gT, tmp);
  float* p = pT.f();
  const int64_t n = physical(pT);
  if (mom == 0.f) {
#pragma omp parallel for simd if (n > kParallel)
    for (int64_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
    return info.Env().Undefined();
  }
  checkNumel(*bT, shape, "momentumBuf");
  adoptLayout(*bT, pT.md);
  float* buf = bT->f();
  const float keep = 1.f - damp;
#pragma omp parallel for simd if (n > kParallel)
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] + wd * p[i];
    const float bi = first ? gi : mom * buf[i] + keep * gi;
    buf[i] = bi;
    p[i] -= lr * (nesterov ? gi + mom * bi : bi);
  }
  return info.Env().Undefined();
}

}  // namespace rn
