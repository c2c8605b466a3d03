// native/winograd.h: Winograd F(4x4, 3x3) convolutions on channel-blocked activations (see winograd.cc).
//
// What it is: the geometry record and the entry points conv.cc calls for 3x3 stride-1 layers. winograd.cc is
// compiled once per instruction set (namespaces isa_avx512, isa_avx2, isa_base); the unqualified functions
// below (dispatch.cc) forward to the copy chosen for this CPU.
// What it is not: layout handling; callers pass buffers already in nChw{VB}c with zero-padded channel lanes.
#pragma once

#include <cstdint>

#include "context.h"

namespace rn {

/** One 3x3 stride-1 convolution: x [N,C,H,W] -> y [N,K,P,Q], P = H + 2·pad - 2; tiles of 4x4 outputs. */
struct WinoGeom {
  int64_t N, C, K, H, W, pad, VB;
  int64_t P, Q, tH, tW, T;  // output size, tiles per column/row/image
  int64_t Cp, Kp;           // channels rounded up to the block VB
};

WinoGeom winoGeom(int64_t N, int64_t C, int64_t K, int64_t H, int64_t W, int64_t pad, int64_t VB);

#define RN_WINOGRAD_ENTRY_POINTS                                                                     \
  /** y = conv(x, w): x blocked [N][Cp/VB][H][W][VB], y blocked [N][Kp/VB][P][Q][VB], w plain        \
      [K][C][3][3]; with `flip`, w is [C][K][3][3] used rotated by 180° (backward-data). */          \
  void winogradForward(const WinoGeom& g, const float* x, const float* w, bool flip, float* y);      \
  /** dw [K][C][3][3] (plain) from x (blocked, as forward) and dy (blocked [N][Kp/VB][P][Q][VB]). */ \
  void winogradBackwardWeights(const WinoGeom& g, const float* x, const float* dy, float* dw);

namespace isa_avx512 { RN_WINOGRAD_ENTRY_POINTS }
namespace isa_avx2 { RN_WINOGRAD_ENTRY_POINTS }
namespace isa_base { RN_WINOGRAD_ENTRY_POINTS }
RN_WINOGRAD_ENTRY_POINTS

/** The instruction set our own loops run with here: "avx512", "avx2" or "x86-64" (dispatch.cc). */
const char* kernelIsa();

}  // namespace rn
