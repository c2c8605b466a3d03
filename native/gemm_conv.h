// native/gemm_conv.h: a convolution for small output maps (few output pixels, many channels), inference only
// (see gemm_conv.cc).
//
// What it is: the geometry record and the entry point conv_infer.cc calls. gemm_conv.cc is compiled once per
// instruction set (namespaces isa_avx512, isa_avx2, isa_base, as winograd.cc); the unqualified function below
// (dispatch.cc) forwards to the copy chosen for this CPU.
// What it is not: training, bf16, or large maps (oneDNN runs those).
#pragma once

#include <cstdint>

namespace rn {

/** x [N,H,W,C] (NHWC) convolved with w [K,C,R,S] into y [N,P,Q,K] (NHWC), stride and padding per axis. */
struct GemmConvGeom {
  int64_t N, C, H, W, K, R, S, P, Q, strideH, strideW, padH, padW;
};

/** The most output pixels (N·P·Q) the kernel is offered for: beyond it the unfolded input outgrows the L2 cache. */
constexpr int64_t kGemmConvMaxPixels = 256;
/** Output channels are taken 16 at a time: K must be a multiple of it (the weights' layout Acdb16a). */
constexpr int64_t kGemmConvBlock = 16;

#define RN_GEMM_CONV_ENTRY_POINTS                                                                             \
  /** y (NHWC) = act(conv(x, w) + b [+ residual]); x NHWC, wp the weights in oneDNN's Acdb16a layout         \
   *  ([K/16][R][S][C][16]), residual NHWC like y or null. */                                                  \
  void gemmConvForward(const GemmConvGeom& g, const float* x, const float* wp, const float* b, const float* residual, \
                       bool relu, float* y);

namespace isa_avx512 { RN_GEMM_CONV_ENTRY_POINTS }
namespace isa_avx2 { RN_GEMM_CONV_ENTRY_POINTS }
namespace isa_base { RN_GEMM_CONV_ENTRY_POINTS }
RN_GEMM_CONV_ENTRY_POINTS

}  // namespace rn
