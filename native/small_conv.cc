// native/small_conv.cc: direct convolution of a few input channels (the stem: 3 -> 64), written NHWC.
//
// What it is: for each output pixel, the C·R·S inputs under the filter (27 for 3x3 RGB) each scale one row of the
// transposed weights [C][R][S][K] into K accumulators, 64 at a time (held in vector registers: 4 AVX-512, 8 AVX2,
// 16 SSE registers), then bias, ReLU and one store of K contiguous outputs. At batch 1 the whole layer is a few
// thousand vector multiply-adds, which one thread does in microseconds; oneDNN's kernels for a 3-channel input
// spend more than that waking their threads and reordering the input, so the graph's stem runs here where the
// benchmark policy measures it faster (conv_infer.cc). Larger batches split the output rows over OpenMP threads.
// What it is not: a general convolution (no residual, no bf16, no backward).
// Built three times like winograd.cc (binding.gyp), each copy in the namespace RN_ISA_NS.
#include "small_conv.h"

#include <algorithm>

#ifndef RN_ISA_NS
#error "small_conv.cc is compiled once per ISA with -DRN_ISA_NS=<namespace> (binding.gyp)"
#endif

#include "vec16.h"

namespace rn {
namespace RN_ISA_NS {

namespace {
constexpr int kBlock = 64;  // output channels accumulated at once: four v16 (vec16.h), registers in all three copies

/** Channels k0..k0+63 of y at (n, p, q). */
inline void pixel64(const SmallConvGeom& g, const float* __restrict x, const float* __restrict wt,
                    const float* __restrict b, bool relu, int64_t n, int64_t p, int64_t q, int64_t k0, float* __restrict yo) {
  v16 a0 = load16(b + k0), a1 = load16(b + k0 + 16), a2 = load16(b + k0 + 32), a3 = load16(b + k0 + 48);
  for (int64_t c = 0; c < g.C; c++) {
    for (int64_t r = 0; r < g.R; r++) {
      const int64_t ih = p * g.strideH - g.padH + r;
      if (ih < 0 || ih >= g.H) continue;
      const float* xrow = x + ((n * g.C + c) * g.H + ih) * g.W;
      for (int64_t s = 0; s < g.S; s++) {
        const int64_t iw = q * g.strideW - g.padW + s;
        if (iw < 0 || iw >= g.W) continue;
        const float v = xrow[iw];
        const float* wr = wt + ((c * g.R + r) * g.S + s) * g.K + k0;
        a0 += load16(wr) * v;
        a1 += load16(wr + 16) * v;
        a2 += load16(wr + 32) * v;
        a3 += load16(wr + 48) * v;
      }
    }
  }
  store16(yo, a0);
  store16(yo + 16, a1);
  store16(yo + 32, a2);
  store16(yo + 48, a3);
  if (relu)
    for (int k = 0; k < kBlock; k++) yo[k] = std::max(yo[k], 0.f);
}

/** The remaining K % kBlock channels, one at a time (any K works; the stem's 64 never gets here). */
inline void pixelTail(const SmallConvGeom& g, const float* x, const float* wt, const float* b, bool relu, int64_t n,
                      int64_t p, int64_t q, int64_t k0, float* yo) {
  for (int64_t k = k0; k < g.K; k++) {
    float acc = b[k];
    for (int64_t c = 0; c < g.C; c++)
      for (int64_t r = 0; r < g.R; r++) {
        const int64_t ih = p * g.strideH - g.padH + r;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t s = 0; s < g.S; s++) {
          const int64_t iw = q * g.strideW - g.padW + s;
          if (iw < 0 || iw >= g.W) continue;
          acc += wt[((c * g.R + r) * g.S + s) * g.K + k] * x[((n * g.C + c) * g.H + ih) * g.W + iw];
        }
      }
    yo[k - k0] = relu ? std::max(acc, 0.f) : acc;
  }
}
}  // namespace

void smallConvForward(const SmallConvGeom& g, const float* x, const float* wt, const float* b, bool relu, float* y) {
  const int64_t rows = g.N * g.P;
#pragma omp parallel for if (rows >= 64)
  for (int64_t row = 0; row < rows; row++) {
    const int64_t n = row / g.P, p = row % g.P;
    for (int64_t q = 0; q < g.Q; q++) {
      float* yo = y + (row * g.Q + q) * g.K;
      int64_t k0 = 0;
      for (; k0 + kBlock <= g.K; k0 += kBlock) pixel64(g, x, wt, b, relu, n, p, q, k0, yo + k0);
      if (k0 < g.K) pixelTail(g, x, wt, b, relu, n, p, q, k0, yo + k0);
    }
  }
}

}  // namespace RN_ISA_NS
}  // namespace rn
