// native/winograd.cc: 3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3), forward,
// backward-data and backward-weights, on oneDNN's channel-blocked activation layout (nChw8c / nChw16c).
//
// What it is: y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ)]A over 6x6 input tiles that produce 4x4 output tiles. The
// elementwise products over channels become 36 independent GEMMs (one per tile position ξ), run by oneDNN's
// matmul; the transforms are our own loops, vectorised over the channel block. Per output, the GEMMs do 36/16 =
// 2.25 multiply-adds per input channel instead of 9, which is why oneDNN 2.6 (whose Winograd kernels need
// AVX-512) is beaten on AVX2 machines. Backward-data is the same convolution of dy with the filters rotated by
// 180° and channels swapped (padding 2-p); backward-weights is the adjoint: dM = A dY Aᵀ, dU[ξ] = V[ξ]ᵀ dM[ξ],
// dg = Gᵀ dU G.
// What it is not: strided, dilated or non-3x3 convolutions (conv.cc runs those with oneDNN's direct kernels).
// Numerics: F(4x4,3x3) in float32 loses a few bits against direct summation (relative error ~1e-5 of the
// output's magnitude); the parity tests state that tolerance.
// Built three times (binding.gyp: baseline x86-64, AVX2+FMA, AVX-512), each copy in its own namespace named by
// RN_ISA_NS; dispatch.cc picks one at run time from the CPU, so one .node runs on every x86-64 machine.
// References: A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016
// (arXiv:1509.09308), the F(4x4,3x3) matrices Bᵀ, G, Aᵀ; oneDNN 2.6 matmul (strided descriptors).
#include "winograd.h"

#include <algorithm>
#include <stdexcept>

#ifndef RN_ISA_NS
#error "winograd.cc is compiled once per ISA with -DRN_ISA_NS=<namespace> (binding.gyp)"
#endif

namespace rn {
namespace RN_ISA_NS {

namespace {
constexpr int kAlpha = 6;  // input tile side
constexpr int kM = 4;      // output tile side
constexpr int kXi = kAlpha * kAlpha;

// The 1-D transforms along one axis of a tile held as [points][VB]: `S` is the distance between points in
// VB-vectors (1 along a row, the row length along a column). Straight-line code over the channel lanes `e`,
// which the compiler turns into SIMD.
template <int VB, int S>
inline void bt(const float* __restrict z, float* __restrict o) {  // Bᵀ z, 6 -> 6
  for (int e = 0; e < VB; e++) {
    const float z0 = z[e], z1 = z[S * VB + e], z2 = z[2 * S * VB + e], z3 = z[3 * S * VB + e];
    const float z4 = z[4 * S * VB + e], z5 = z[5 * S * VB + e];
    o[e] = 4 * z0 - 5 * z2 + z4;
    o[S * VB + e] = -4 * (z1 + z2) + z3 + z4;
    o[2 * S * VB + e] = 4 * (z1 - z2) - z3 + z4;
    o[3 * S * VB + e] = -2 * (z1 - z3) - z2 + z4;
    o[4 * S * VB + e] = 2 * (z1 - z3) - z2 + z4;
    o[5 * S * VB + e] = 4 * z1 - 5 * z3 + z5;
  }
}

template <int VB, int SI, int SO>
inline void at(const float* __restrict m, float* __restrict o) {  // Aᵀ m, 6 -> 4
  for (int e = 0; e < VB; e++) {
    const float m0 = m[e], m1 = m[SI * VB + e], m2 = m[2 * SI * VB + e], m3 = m[3 * SI * VB + e];
    const float m4 = m[4 * SI * VB + e], m5 = m[5 * SI * VB + e];
    o[e] = m0 + m1 + m2 + m3 + m4;
    o[SO * VB + e] = m1 - m2 + 2 * (m3 - m4);
    o[2 * SO * VB + e] = m1 + m2 + 4 * (m3 + m4);
    o[3 * SO * VB + e] = m1 - m2 + 8 * (m3 - m4) + m5;
  }
}

template <int VB, int SI, int SO>
inline void a(const float* __restrict y, float* __restrict o) {  // A y = (Aᵀ)ᵀ y, 4 -> 6 (adjoint of at)
  for (int e = 0; e < VB; e++) {
    const float y0 = y[e], y1 = y[SI * VB + e], y2 = y[2 * SI * VB + e], y3 = y[3 * SI * VB + e];
    o[e] = y0;
    o[SO * VB + e] = y0 + y1 + y2 + y3;
    o[2 * SO * VB + e] = y0 - y1 + y2 - y3;
    o[3 * SO * VB + e] = y0 + 2 * y1 + 4 * y2 + 8 * y3;
    o[4 * SO * VB + e] = y0 - 2 * y1 + 4 * y2 - 8 * y3;
    o[5 * SO * VB + e] = y3;
  }
}

// G's entries are multiples of 1/4, 1/6, 1/12, 1/24: multiply by the reciprocals (a division costs ~10x more)
constexpr double k4 = 1.0 / 4, k6 = 1.0 / 6, k12 = 1.0 / 12, k24 = 1.0 / 24;

/** One tile of input: d [6x6][VB] -> v = Bᵀ d B [6x6][VB] (columns, then rows). */
template <int VB>
inline void inputTile(const float (*d)[VB], float (*v)[VB]) {
  alignas(64) float t[kXi][VB];
  for (int j = 0; j < kAlpha; j++) bt<VB, kAlpha>(d[j], t[j]);
  for (int i = 0; i < kAlpha; i++) bt<VB, 1>(t[i * kAlpha], v[i * kAlpha]);
}

/** x (blocked [N][Cp/VB][H][W][VB]) -> V[ξ][n·T + t][Cp]: Bᵀ d B of every 6x6 tile, d read at offset -pad. */
template <int VB>
void inputTransform(const WinoGeom& g, const float* x, float* V) {
  const int64_t CB = g.Cp / VB, NT = g.N * g.T;
  // tile-major with the channel blocks innermost, so that each tile's Cp values per ξ are written together
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t th = 0; th < g.tH; th++) {
      alignas(64) float d[kXi][VB];
      alignas(64) float v[kXi][VB];
      for (int64_t tw = 0; tw < g.tW; tw++) {
        const int64_t h0 = th * kM - g.pad, w0 = tw * kM - g.pad, nt = n * g.T + th * g.tW + tw;
        const bool interior = h0 >= 0 && w0 >= 0 && h0 + kAlpha <= g.H && w0 + kAlpha <= g.W;
        for (int64_t cb = 0; cb < CB; cb++) {
          const float* plane = x + ((n * CB + cb) * g.H) * g.W * VB;
          for (int i = 0; i < kAlpha; i++)
            for (int j = 0; j < kAlpha; j++) {
              const int64_t h = h0 + i, w = w0 + j;
              const float* p = plane + (h * g.W + w) * VB;
              if (interior || (h >= 0 && h < g.H && w >= 0 && w < g.W)) {
                for (int e = 0; e < VB; e++) d[i * kAlpha + j][e] = p[e];
              } else {
                for (int e = 0; e < VB; e++) d[i * kAlpha + j][e] = 0.f;
              }
            }
          inputTile<VB>(d, v);
          for (int xi = 0; xi < kXi; xi++) {
            float* o = V + (xi * NT + nt) * g.Cp + cb * VB;
            for (int e = 0; e < VB; e++) o[e] = v[xi][e];
          }
        }
      }
    }
}

/** M[ξ][n·T + t][Kp] -> y (blocked [N][Kp/VB][P][Q][VB]): Aᵀ m A, cropped to the output. */
template <int VB>
void outputTransform(const WinoGeom& g, const float* M, float* y) {
  const int64_t KB = g.Kp / VB, NT = g.N * g.T;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t th = 0; th < g.tH; th++) {
      alignas(64) float m[kXi][VB];
      alignas(64) float t[kM * kAlpha][VB];
      alignas(64) float o[kM * kM][VB];
      for (int64_t tw = 0; tw < g.tW; tw++) {
        const int64_t nt = n * g.T + th * g.tW + tw;
        for (int64_t kb = 0; kb < KB; kb++) {
          for (int xi = 0; xi < kXi; xi++) {
            const float* s = M + (xi * NT + nt) * g.Kp + kb * VB;
            for (int e = 0; e < VB; e++) m[xi][e] = s[e];
          }
          for (int j = 0; j < kAlpha; j++) at<VB, kAlpha, kAlpha>(m[j], t[j]);     // columns: t[4][6]
          for (int i = 0; i < kM; i++) at<VB, 1, 1>(t[i * kAlpha], o[i * kM]);     // rows: o[4][4]
          float* plane = y + ((n * KB + kb) * g.P) * g.Q * VB;
          for (int i = 0; i < kM && th * kM + i < g.P; i++)
            for (int j = 0; j < kM && tw * kM + j < g.Q; j++) {
              float* p = plane + ((th * kM + i) * g.Q + tw * kM + j) * VB;
              for (int e = 0; e < VB; e++) p[e] = o[i * kM + j][e];
            }
        }
      }
    }
}

/** dy (blocked [N][Kp/VB][P][Q][VB]) -> dM[ξ][n·T + t][Kp] = A dY Aᵀ (zero past the output's edge). */
template <int VB>
void outputAdjoint(const WinoGeom& g, const float* dy, float* dM) {
  const int64_t KB = g.Kp / VB, NT = g.N * g.T;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t th = 0; th < g.tH; th++) {
      alignas(64) float t[kM * kM][VB];
      alignas(64) float u[kAlpha * kM][VB];
      alignas(64) float m[kXi][VB];
      for (int64_t tw = 0; tw < g.tW; tw++) {
        const int64_t nt = n * g.T + th * g.tW + tw;
        for (int64_t kb = 0; kb < KB; kb++) {
          const float* plane = dy + ((n * KB + kb) * g.P) * g.Q * VB;
          for (int i = 0; i < kM; i++)
            for (int j = 0; j < kM; j++) {
              const int64_t p = th * kM + i, q = tw * kM + j;
              const float* s = plane + (p * g.Q + q) * VB;
              const bool in = p < g.P && q < g.Q;
              for (int e = 0; e < VB; e++) t[i * kM + j][e] = in ? s[e] : 0.f;
            }
          for (int j = 0; j < kM; j++) a<VB, kM, kM>(t[j], u[j]);             // columns: u[6][4]
          for (int i = 0; i < kAlpha; i++) a<VB, 1, 1>(u[i * kM], m[i * kAlpha]);  // rows: m[6][6]
          for (int xi = 0; xi < kXi; xi++) {
            float* o = dM + (xi * NT + nt) * g.Kp + kb * VB;
            for (int e = 0; e < VB; e++) o[e] = m[xi][e];
          }
        }
      }
    }
}

/** G g along one axis for `L` filters at once: 3 points (distance S lanes-arrays) -> 6. */
template <int L, int SI, int SO>
inline void gL(const float* __restrict g, float* __restrict o) {
  for (int e = 0; e < L; e++) {
    const float g0 = g[e], g1v = g[SI * L + e], g2 = g[2 * SI * L + e];
    o[e] = g0 * float(k4);
    o[SO * L + e] = -(g0 + g1v + g2) * float(k6);
    o[2 * SO * L + e] = -(g0 - g1v + g2) * float(k6);
    o[3 * SO * L + e] = g0 * float(k24) + g1v * float(k12) + g2 * float(k6);
    o[4 * SO * L + e] = g0 * float(k24) - g1v * float(k12) + g2 * float(k6);
    o[5 * SO * L + e] = g2;
  }
}

/**
 * Filters -> U[ξ] = G g Gᵀ, stored so that the filter bank is read in order: forward (w [K][C][3][3]) as
 * U[ξ][Kp][Cp] (the GEMM reads it transposed); backward-data (`flip`: w is the forward's [C_in][K_out] bank,
 * i.e. our [g.C][g.K], each filter rotated by 180°) as U[ξ][Cp][Kp]. Eight filters of a row at a time, so
 * the arithmetic is SIMD and every store writes eight consecutive floats.
 */
void weightTransform(const WinoGeom& g, const float* w, bool flip, float* U) {
  constexpr int L = 8;
  const int64_t outer = flip ? g.C : g.K, inner = flip ? g.K : g.C;
  const int64_t outerP = flip ? g.Cp : g.Kp, innerP = flip ? g.Kp : g.Cp;
  if (outer != outerP || inner != innerP) std::fill(U, U + kXi * g.Cp * g.Kp, 0.f);
  const int64_t chunks = (inner + L - 1) / L;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r = 0; r < outer; r++)
    for (int64_t ch = 0; ch < chunks; ch++) {
      const int64_t c0 = ch * L, n = std::min<int64_t>(L, inner - c0);
      alignas(64) float gg[9][L] = {}, mid[18][L], u[kXi][L];
      for (int64_t e = 0; e < n; e++) {
        const float* f = w + (r * inner + c0 + e) * 9;
        for (int i = 0; i < 9; i++) gg[i][e] = flip ? f[8 - i] : f[i];
      }
      for (int j = 0; j < 3; j++) gL<L, 3, 3>(gg[j], mid[j]);      // columns: mid[6][3]
      for (int i = 0; i < 6; i++) gL<L, 1, 1>(mid[i * 3], u[i * 6]);  // rows: u[6][6]
      for (int xi = 0; xi < kXi; xi++) {
        float* o = U + (xi * outerP + r) * innerP + c0;
        for (int64_t e = 0; e < n; e++) o[e] = u[xi][e];
      }
    }
}

/** Gᵀ u along one axis for `L` filters at once: 6 points -> 3 (the adjoint of gL). */
template <int L, int SI, int SO>
inline void gtL(const float* __restrict u, float* __restrict o) {
  for (int e = 0; e < L; e++) {
    const float u0 = u[e], u1 = u[SI * L + e], u2 = u[2 * SI * L + e], u3 = u[3 * SI * L + e];
    const float u4 = u[4 * SI * L + e], u5 = u[5 * SI * L + e];
    o[e] = u0 * float(k4) - (u1 + u2) * float(k6) + (u3 + u4) * float(k24);
    o[SO * L + e] = (u2 - u1) * float(k6) + (u3 - u4) * float(k12);
    o[2 * SO * L + e] = (u3 + u4 - u1 - u2) * float(k6) + u5;
  }
}

/**
 * dU[ξ][Cp][Kp] -> dw [K][C][3][3] = Gᵀ dU G (the adjoint of the forward weightTransform), eight consecutive
 * output channels at a time so that dU is read in order.
 */
void weightAdjoint(const WinoGeom& g, const float* dU, float* dw) {
  constexpr int L = 8;
  const int64_t chunks = (g.K + L - 1) / L;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t c = 0; c < g.C; c++)
    for (int64_t ch = 0; ch < chunks; ch++) {
      const int64_t k0 = ch * L, n = std::min<int64_t>(L, g.K - k0);
      alignas(64) float u[kXi][L] = {}, mid[18][L], d[9][L];
      for (int xi = 0; xi < kXi; xi++) {
        const float* s = dU + (xi * g.Cp + c) * g.Kp + k0;
        for (int64_t e = 0; e < n; e++) u[xi][e] = s[e];
      }
      for (int j = 0; j < 6; j++) gtL<L, 6, 6>(u[j], mid[j]);     // columns: mid[3][6]
      for (int i = 0; i < 3; i++) gtL<L, 1, 1>(mid[i * 6], d[i * 3]);  // rows: d[3][3]
      for (int64_t e = 0; e < n; e++)
        for (int t = 0; t < 9; t++) dw[((k0 + e) * g.C + c) * 9 + t] = d[t][e];
    }
}

/**
 * 36 GEMMs: dst[ξ] (m×n) = src[ξ] (m×k) · wei[ξ] (k×n), row-major. `transSrc`: src[ξ] is stored k×m;
 * `transWei`: wei[ξ] is stored n×k. One OpenMP region hands whole GEMMs to the threads (oneDNN's sgemm runs
 * single-threaded inside it): one barrier per convolution instead of dozens, which matters on a loaded machine.
 */
void gemms(int64_t m, int64_t k, int64_t n, const float* src, bool transSrc, const float* wei, bool transWei,
           float* dst) {
  int failures = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : failures)
  for (int xi = 0; xi < kXi; xi++) {
    const dnnl_status_t st = dnnl_sgemm(transSrc ? 'T' : 'N', transWei ? 'T' : 'N', m, n, k, 1.f, src + xi * m * k,
                                        transSrc ? m : k, wei + xi * k * n, transWei ? k : n, 0.f, dst + xi * m * n, n);
    failures += st != dnnl_success;
  }
  if (failures) throw std::runtime_error("winograd: oneDNN sgemm failed");
}

template <int VB>
void forwardT(const WinoGeom& g, const float* x, const float* w, bool flip, float* y) {
  const int64_t NT = g.N * g.T;
  Scratch V(sizeof(float) * kXi * NT * g.Cp), U(sizeof(float) * kXi * g.Cp * g.Kp), M(sizeof(float) * kXi * NT * g.Kp);
  {
    ProfScope prof("(winograd input transform)");
    inputTransform<VB>(g, x, static_cast<float*>(V.get()));
  }
  {
    ProfScope prof("(winograd weight transform)");
    weightTransform(g, w, flip, static_cast<float*>(U.get()));
  }
  {
    ProfScope prof("(winograd gemms)");
    gemms(NT, g.Cp, g.Kp, static_cast<float*>(V.get()), false, static_cast<float*>(U.get()), !flip,
          static_cast<float*>(M.get()));
  }
  ProfScope prof("(winograd output transform)");
  outputTransform<VB>(g, static_cast<float*>(M.get()), y);
}

template <int VB>
void backwardWeightsT(const WinoGeom& g, const float* x, const float* dy, float* dw) {
  const int64_t NT = g.N * g.T;
  Scratch V(sizeof(float) * kXi * NT * g.Cp), dM(sizeof(float) * kXi * NT * g.Kp), dU(sizeof(float) * kXi * g.Cp * g.Kp);
  {
    ProfScope prof("(winograd input transform)");
    inputTransform<VB>(g, x, static_cast<float*>(V.get()));
    outputAdjoint<VB>(g, dy, static_cast<float*>(dM.get()));
  }
  {
    ProfScope prof("(winograd gemms)");
    gemms(g.Cp, NT, g.Kp, static_cast<float*>(V.get()), true, static_cast<float*>(dM.get()), false,
          static_cast<float*>(dU.get()));
  }
  ProfScope prof("(winograd weight transform)");
  weightAdjoint(g, static_cast<float*>(dU.get()), dw);
}
}  // namespace

void winogradForward(const WinoGeom& g, const float* x, const float* w, bool flip, float* y) {
  if (g.VB == 8) return forwardT<8>(g, x, w, flip, y);
  if (g.VB == 16) return forwardT<16>(g, x, w, flip, y);
  throw std::invalid_argument("winograd: expected a channel block of 8 or 16, received " + std::to_string(g.VB));
}

void winogradBackwardWeights(const WinoGeom& g, const float* x, const float* dy, float* dw) {
  if (g.VB == 8) return backwardWeightsT<8>(g, x, dy, dw);
  if (g.VB == 16) return backwardWeightsT<16>(g, x, dy, dw);
  throw std::invalid_argument("winograd: expected a channel block of 8 or 16, received " + std::to_string(g.VB));
}

}  // namespace RN_ISA_NS
}  // namespace rn
