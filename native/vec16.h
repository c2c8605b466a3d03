// native/vec16.h: 16 floats as one value, for our kernels compiled once per instruction set (small_conv.cc,
// gemm_conv.cc).
//
// What it is: GCC's vector extension, lowered to one AVX-512 register, two AVX2 or four SSE ones by whichever copy
// is being compiled, with unaligned loads and stores. It sits in the copy's own namespace (RN_ISA_NS) and has
// internal linkage, so the AVX-512 copy's code can never be picked by the linker for the baseline one.
// What it is not: a SIMD library (no shuffles, no masks).
#pragma once

#include <cstring>

#ifndef RN_ISA_NS
#error "vec16.h is included by kernels compiled once per ISA with -DRN_ISA_NS=<namespace> (binding.gyp)"
#endif

// the 64-byte vectors never cross a function boundary that is not inlined; GCC's note that passing them changes
// the ABI without AVX-512 is about calls between translation units, which there are none of
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn {
namespace RN_ISA_NS {
namespace {
typedef float v16 __attribute__((vector_size(64)));
inline v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
}  // namespace
}  // namespace RN_ISA_NS
}  // namespace rn
