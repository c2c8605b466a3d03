// native/conv_geom.h: the geometry of one convolution call, shared by conv.cc (training) and conv_infer.cc.
//
// What it is: the checked shapes (x, w, y, stride, padding), the data type its inputs are read in, and the key
// that names it in primitive caches and in the benchmark's choices. What it is not: any algorithm.
#pragma once

#include <stdexcept>
#include <string>

#include "context.h"
#include "precision.h"

namespace rn {

struct ConvGeom {
  Dims x, w, y, stride, padL, padR;
  memory::data_type dt;  // of inputs and weights (bf16 under mixed precision); outputs and gradients are f32
  std::string key;
};

inline memory::desc anyMd(const Dims& d, memory::data_type dt = memory::data_type::f32) {
  return memory::desc(d, dt, memory::format_tag::any);
}

inline ConvGeom convGeom(const Dims& x, const Dims& w, const Dims& stride, const Dims& pad) {
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
  ConvGeom g{x, w, {x[0], w[0], P, Q}, stride, pad, pad, computeDt(), ""};
  // oneDNN checks (H + padL + padR - R) / stride + 1 == P with integer division: symmetric padding satisfies it
  // exactly when PyTorch's floor formula does, and rows past the last window are simply never read.
  g.key = dimsStr(x) + dimsStr(w) + dimsStr(stride) + dimsStr(pad) + (bf16Compute() ? "|bf16" : "");
  return g;
}

}  // namespace rn
