// native/gemm_conv.cc: convolution of a small output map as one matrix product, written NHWC.
//
// What it is: at batch 1 the last stages of ResNet-18 have 16 or 64 output pixels and 256-512 channels, so a
// convolution is a product of a short matrix (pixels x R·S·C, the input unfolded, "im2col") with a tall one (the
// R·S·C x K weights, 9.4 MB for a 512-channel 3x3 layer). Each weight is used by only 16-64 pixels: the work is
// reading the weights once while keeping the multiply-add units busy. Here the unfolded input is laid out
// [tile][R·S·C][MT] (MT pixels per tile, 16 with AVX-512), so one step of the inner loop loads 16 output channels'
// weights and multiplies them into MT accumulators, each with one input value broadcast from the same cache line;
// the weights stream in oneDNN's Acdb16a order ([K/16][R][S][C][16]), each block once per pixel tile. Bias, the
// residual and ReLU are applied as the accumulators are stored. oneDNN 2.6's direct kernels, made for larger maps,
// ran the 512-channel layer at 4x4 in 0.34 ms of a batch-1 graph on a Zen 5, this kernel in 0.21 (about the rate
// memory delivers its weights), so the graph's benchmark policy offers it as one more candidate (conv_infer.cc).
// The unfolding and the product are split over the OpenMP threads (the product by blocks of output channels).
// What it is not: a general convolution (no bf16, no backward, no large maps).
// Built three times like winograd.cc (binding.gyp), each copy in the namespace RN_ISA_NS.
#include "gemm_conv.h"

#include <vector>

#ifndef RN_ISA_NS
#error "gemm_conv.cc is compiled once per ISA with -DRN_ISA_NS=<namespace> (binding.gyp)"
#endif

#include "vec16.h"

namespace rn {
namespace RN_ISA_NS {

namespace {
// how far ahead the weights are prefetched, in steps of the inner loop (one 64-byte line each): 96 lines, about
// the latency of memory at the rate the loop consumes them (on a Zen 5: 0.21 ms per 512-channel layer in a graph,
// 0.33 without prefetch; 32 lines ahead gave 0.27, 128 no better than 96)
constexpr int64_t kPrefetchAhead = 96;
// pixels per tile: as many accumulators as leave registers for the weights (32 zmm, 16 ymm or 16 xmm). With AVX-512,
// 16 pixels and 16 channels beat 8 pixels and 32 channels (two weight streams) on the memory-bound 512-channel layer.
#if defined(__AVX512F__)
constexpr int MT = 16;
#elif defined(__AVX2__)
constexpr int MT = 6;
#else
constexpr int MT = 3;
#endif

/** Unfolds the input under tap (r, s) for the pixels of tile t into dst [C][MT] (zeros off the map and past M). */
void unfoldTap(const GemmConvGeom& g, const float* __restrict x, int64_t t, int64_t r, int64_t s, float* __restrict dst) {
  const int64_t M = g.N * g.P * g.Q;
  for (int m = 0; m < MT; m++) {
    const int64_t pix = t * MT + m;
    const float* src = nullptr;
    if (pix < M) {
      const int64_t n = pix / (g.P * g.Q), p = pix / g.Q % g.P, q = pix % g.Q;
      const int64_t ih = p * g.strideH - g.padH + r, iw = q * g.strideW - g.padW + s;
      if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) src = x + ((n * g.H + ih) * g.W + iw) * g.C;
    }
    if (src)
      for (int64_t c = 0; c < g.C; c++) dst[c * MT + m] = src[c];
    else
      for (int64_t c = 0; c < g.C; c++) dst[c * MT + m] = 0.f;
  }
}

/** Output channels kb·16.. of the pixels of tile t: the product over the unfolded tile ct, then the epilogue. */
void tileProduct(const GemmConvGeom& g, const float* __restrict ct, const float* __restrict wk, const float* __restrict b,
                 const float* residual, bool relu, int64_t t, int64_t kb, float* y) {  // residual may be y
  const int64_t KK = g.R * g.S * g.C, M = g.N * g.P * g.Q;
  v16 acc[MT];
  const v16 bias = load16(b + kb * kGemmConvBlock);
  for (int m = 0; m < MT; m++) acc[m] = bias;
  for (int64_t k = 0; k < KK; k++) {
    // the weights come from memory (a graph's 45 MB do not stay in cache): ask for them well ahead
    __builtin_prefetch(wk + (k + kPrefetchAhead) * kGemmConvBlock, 0, 0);
    const v16 w = load16(wk + k * kGemmConvBlock);
    const float* c = ct + k * MT;
    for (int m = 0; m < MT; m++) acc[m] += w * c[m];
  }
  const v16 zero = {};
  for (int m = 0; m < MT; m++) {
    const int64_t pix = t * MT + m;
    if (pix >= M) break;
    const int64_t off = pix * g.K + kb * kGemmConvBlock;
    v16 v = acc[m];
    if (residual) v += load16(residual + off);
    if (relu) v = v > zero ? v : zero;
    store16(y + off, v);
  }
}
}  // namespace

void gemmConvForward(const GemmConvGeom& g, const float* x, const float* wp, const float* b, const float* residual,
                     bool relu, float* y) {
  const int64_t M = g.N * g.P * g.Q, KK = g.R * g.S * g.C, T = (M + MT - 1) / MT, KB = g.K / kGemmConvBlock;
  static thread_local std::vector<float> unfolded;  // the calling thread's, reused: no allocation per call
  if (unfolded.size() < static_cast<size_t>(T * KK * MT)) unfolded.resize(T * KK * MT);
  float* col = unfolded.data();
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < T * g.R * g.S; i++) {
      const int64_t t = i / (g.R * g.S), rs = i % (g.R * g.S);
      unfoldTap(g, x, t, rs / g.S, rs % g.S, col + (t * KK + rs * g.C) * MT);
    }
    // (the loop's barrier: every tile is unfolded before any product reads it)
#pragma omp for schedule(static)
    for (int64_t i = 0; i < KB * T; i++) {
      const int64_t kb = i / T, t = i % T;
      tileProduct(g, col + t * KK * MT, wp + kb * KK * kGemmConvBlock, b, residual, relu, t, kb, y);
    }
  }
}

}  // namespace RN_ISA_NS
}  // namespace rn
