// native/softmax.cc: softmax, log-softmax, their backward passes, and cross-entropy with label smoothing,
// over the last axis of [N,C].
//
// What it is: plain loops (rows of the classifier's logits, N×10 in ResNet-18/CIFAR: far too small for a
// primitive to pay off), accumulating in double. What it is not: softmax over other axes.
// References: PyTorch torch.nn.CrossEntropyLoss documentation (label smoothing: target (1-ε)·onehot + ε/C,
// mean reduction); the formulas in src/backend/backend.ts.
#include <cmath>
#include <stdexcept>

#include "context.h"
#include "ops.h"

namespace rn {

namespace {
struct Rows {
  int64_t N, C;
};

Rows rowsOf(const Dims& s) {
  if (s.size() != 2) throw std::invalid_argument("expected shape of rank 2 [N,C], received " + dimsStr(s));
  return {s[0], s[1]};
}

const float* plainRows(const Tensor& t, const Dims& s, Scratch& tmp) {
  const memory::desc want = plainMd(s);
  return static_cast<const float*>(viewAs(t, s, &want, tmp).get_data_handle());
}

/** out = softmax(x) (log = false) or log-softmax(x) (log = true), one row of C. */
void softmaxRow(const float* x, float* out, int64_t C, bool log) {
  double m = -INFINITY;
  for (int64_t c = 0; c < C; c++) m = std::fmax(m, x[c]);
  double s = 0;
  for (int64_t c = 0; c < C; c++) s += std::exp(double(x[c]) - m);
  const double ls = std::log(s);
  for (int64_t c = 0; c < C; c++)
    out[c] = static_cast<float>(log ? double(x[c]) - m - ls : std::exp(double(x[c]) - m) / s);
}

Napi::Value softmaxCommon(const Napi::CallbackInfo& info, bool log) {
  const Dims s = dimsArg(info, 1, "shape");
  const Rows r = rowsOf(s);
  Scratch tmp;
  const float* x = plainRows(tensorArg(info, 0, "x"), s, tmp);
  Tensor* y;
  Napi::Value out = newTensor(info.Env(), plainMd(s), &y);
  for (int64_t i = 0; i < r.N; i++) softmaxRow(x + i * r.C, y->f() + i * r.C, r.C, log);
  return out;
}

Napi::Value softmaxBackwardCommon(const Napi::CallbackInfo& info, bool log) {
  const Dims s = dimsArg(info, 2, "shape");
  const Rows r = rowsOf(s);
  Scratch tdy, ty;
  const float* dy = plainRows(tensorArg(info, 0, "dy"), s, tdy);
  const float* y = plainRows(tensorArg(info, 1, "y"), s, ty);
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), plainMd(s), &dx);
  for (int64_t i = 0; i < r.N; i++) {
    const float* dyr = dy + i * r.C;
    const float* yr = y + i * r.C;
    float* o = dx->f() + i * r.C;
    double acc = 0;
    for (int64_t c = 0; c < r.C; c++) acc += log ? dyr[c] : double(dyr[c]) * yr[c];
    for (int64_t c = 0; c < r.C; c++)
      o[c] = static_cast<float>(log ? dyr[c] - std::exp(double(yr[c])) * acc : yr[c] * (dyr[c] - acc));
  }
  return out;
}

const int32_t* targetsArg(const Napi::CallbackInfo& info, size_t i, const Rows& r) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw std::invalid_argument("expected targets to be an Int32Array");
  auto t = info[i].As<Napi::Int32Array>();
  if (static_cast<int64_t>(t.ElementLength()) != r.N)
    throw std::invalid_argument("expected " + std::to_string(r.N) + " targets, received " +
                                std::to_string(t.ElementLength()));
  const int32_t* d = t.Data();
  for (int64_t k = 0; k < r.N; k++)
    if (d[k] < 0 || d[k] >= r.C)
      throw std::invalid_argument("expected targets in [0," + std::to_string(r.C) + "), received " +
                                  std::to_string(d[k]) + " at index " + std::to_string(k));
  return d;
}

double smoothingArg(const Napi::CallbackInfo& info, size_t i) {
  const double e = numArg(info, i, "labelSmoothing");
  if (!(e >= 0 && e <= 1)) throw std::invalid_argument("expected labelSmoothing in [0,1], received " + std::to_string(e));
  return e;
}
}  // namespace

Napi::Value softmax(const Napi::CallbackInfo& info) { return softmaxCommon(info, false); }
Napi::Value logSoftmax(const Napi::CallbackInfo& info) { return softmaxCommon(info, true); }
// softmaxBackward(dy, y, shape): dx = y·(dy - Σ dy·y)
Napi::Value softmaxBackward(const Napi::CallbackInfo& info) { return softmaxBackwardCommon(info, false); }
// logSoftmaxBackward(dy, y, shape): dx = dy - exp(y)·Σ dy
Napi::Value logSoftmaxBackward(const Napi::CallbackInfo& info) { return softmaxBackwardCommon(info, true); }

// crossEntropy(logits, shape, targets, labelSmoothing) -> [loss, probs]
Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  const Dims s = dimsArg(info, 1, "shape");
  const Rows r = rowsOf(s);
  const int32_t* t = targetsArg(info, 2, r);
  const double eps = smoothingArg(info, 3);
  Scratch tmp;
  const float* x = plainRows(tensorArg(info, 0, "logits"), s, tmp);
  Tensor* probs;
  Napi::Value probsOut = newTensor(info.Env(), plainMd(s), &probs);
  double total = 0;
  for (int64_t i = 0; i < r.N; i++) {
    const float* xr = x + i * r.C;
    double m = -INFINITY, se = 0, sx = 0;
    for (int64_t c = 0; c < r.C; c++) m = std::fmax(m, xr[c]);
    for (int64_t c = 0; c < r.C; c++) {
      se += std::exp(double(xr[c]) - m);
      sx += xr[c];
    }
    const double lse = m + std::log(se);
    // -[(1-ε)·logp[t] + ε/C·Σ_c logp[c]],  logp[c] = x[c] - lse
    total -= (1 - eps) * (double(xr[t[i]]) - lse) + eps / double(r.C) * (sx - double(r.C) * lse);
    for (int64_t c = 0; c < r.C; c++) probs->f()[i * r.C + c] = static_cast<float>(std::exp(double(xr[c]) - lse));
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(uint32_t(0), Napi::Number::New(info.Env(), r.N ? total / double(r.N) : NAN));
  out.Set(uint32_t(1), probsOut);
  return out;
}

// crossEntropyBackward(probs, shape, targets, labelSmoothing, gradOutput) -> dlogits = (p - q)·g/N
Napi::Value crossEntropyBackward(const Napi::CallbackInfo& info) {
  const Dims s = dimsArg(info, 1, "shape");
  const Rows r = rowsOf(s);
  const int32_t* t = targetsArg(info, 2, r);
  const double eps = smoothingArg(info, 3);
  const double g = numArg(info, 4, "gradOutput") / double(r.N ? r.N : 1);
  Scratch tmp;
  const float* p = plainRows(tensorArg(info, 0, "probs"), s, tmp);
  Tensor* dx;
  Napi::Value out = newTensor(info.Env(), plainMd(s), &dx);
  for (int64_t i = 0; i < r.N; i++)
    for (int64_t c = 0; c < r.C; c++) {
      const double q = (c == t[i] ? 1 - eps : 0) + eps / double(r.C);
      dx->f()[i * r.C + c] = static_cast<float>((p[i * r.C + c] - q) * g);
    }
  return out;
}

}  // namespace rn
