// native/small_conv.h: a direct convolution for layers with few input channels (a network's stem: 3 -> K),
// inference only (see small_conv.cc).
//
// What it is: the geometry record and the entry point conv_infer.cc calls. small_conv.cc is compiled once per
// instruction set (namespaces isa_avx512, isa_avx2, isa_base, as winograd.cc); the unqualified function below
// (dispatch.cc) forwards to the copy chosen for this CPU.
// What it is not: training, residuals, bf16 or wide inputs (oneDNN runs those).
#pragma once

#include <cstdint>

namespace rn {

/** x [N,C,H,W] (row-major) convolved with w [K,C,R,S] into y [N,K,P,Q] stored NHWC, stride and padding per axis. */
struct SmallConvGeom {
  int64_t N, C, H, W, K, R, S, P, Q, strideH, strideW, padH, padW;
};

/** The widest input this kernel is for: beyond it oneDNN's kernels are the faster ones. */
constexpr int64_t kSmallConvMaxC = 4;

#define RN_SMALL_CONV_ENTRY_POINTS                                                                   \
  /** y (NHWC) = act(conv(x, w) + b); x plain NCHW, wt the weights as [C][R][S][K] (K contiguous). */ \
  void smallConvForward(const SmallConvGeom& g, const float* x, const float* wt, const float* b, bool relu, float* y);

namespace isa_avx512 { RN_SMALL_CONV_ENTRY_POINTS }
namespace isa_avx2 { RN_SMALL_CONV_ENTRY_POINTS }
namespace isa_base { RN_SMALL_CONV_ENTRY_POINTS }
RN_SMALL_CONV_ENTRY_POINTS

}  // namespace rn
