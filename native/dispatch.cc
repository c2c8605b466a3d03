// native/dispatch.cc: which compiled copy of our own kernels runs on this CPU.
//
// What it is: the run-time choice between the AVX-512, AVX2+FMA and baseline x86-64 builds of winograd.cc,
// small_conv.cc and gemm_conv.cc (binding.gyp compiles them three times), made once from the CPU's features (GCC's __builtin_cpu_supports,
// which also checks that the OS saves the wider registers). RESNET_ISA=avx2|x86-64 forces the choice down,
// for tests and for comparing builds on one machine; a request above what the CPU has is refused by name.
// What it is not: oneDNN's own dispatch (it picks its kernels itself; ONEDNN_MAX_CPU_ISA limits it).
// References: GCC manual, "x86 Built-in Functions" (__builtin_cpu_supports).
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "gemm_conv.h"
#include "small_conv.h"
#include "winograd.h"

namespace rn {

namespace {
enum class Isa { Base, Avx2, Avx512 };

Isa cpuIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
  return Isa::Base;
}

const char* isaName(Isa i) { return i == Isa::Avx512 ? "avx512" : i == Isa::Avx2 ? "avx2" : "x86-64"; }

Isa chosenIsa() {
  static const Isa isa = [] {
    const Isa have = cpuIsa();
    const char* v = std::getenv("RESNET_ISA");
    if (!v || !*v) return have;
    const std::string want(v);
    const Isa w = want == "avx512" ? Isa::Avx512 : want == "avx2" ? Isa::Avx2 : want == "x86-64" ? Isa::Base : have;
    if (want != "avx512" && want != "avx2" && want != "x86-64")
      throw std::invalid_argument("RESNET_ISA: expected avx512, avx2 or x86-64, received " + want);
    if (static_cast<int>(w) > static_cast<int>(have))
      throw std::invalid_argument("RESNET_ISA=" + want + ": this CPU supports at most " + isaName(have));
    return w;
  }();
  return isa;
}
}  // namespace

const char* kernelIsa() { return isaName(chosenIsa()); }

WinoGeom winoGeom(int64_t N, int64_t C, int64_t K, int64_t H, int64_t W, int64_t pad, int64_t VB) {
  WinoGeom g{};
  g.N = N, g.C = C, g.K = K, g.H = H, g.W = W, g.pad = pad, g.VB = VB;
  g.P = H + 2 * pad - 2, g.Q = W + 2 * pad - 2;
  g.tH = (g.P + 3) / 4, g.tW = (g.Q + 3) / 4, g.T = g.tH * g.tW;
  g.Cp = (C + VB - 1) / VB * VB, g.Kp = (K + VB - 1) / VB * VB;
  return g;
}

void winogradForward(const WinoGeom& g, const float* x, const float* w, bool flip, float* y) {
  switch (chosenIsa()) {
    case Isa::Avx512: return isa_avx512::winogradForward(g, x, w, flip, y);
    case Isa::Avx2: return isa_avx2::winogradForward(g, x, w, flip, y);
    case Isa::Base: return isa_base::winogradForward(g, x, w, flip, y);
  }
}

void smallConvForward(const SmallConvGeom& g, const float* x, const float* wt, const float* b, bool relu, float* y) {
  switch (chosenIsa()) {
    case Isa::Avx512: return isa_avx512::smallConvForward(g, x, wt, b, relu, y);
    case Isa::Avx2: return isa_avx2::smallConvForward(g, x, wt, b, relu, y);
    case Isa::Base: return isa_base::smallConvForward(g, x, wt, b, relu, y);
  }
}

void gemmConvForward(const GemmConvGeom& g, const float* x, const float* wp, const float* b, const float* residual,
                     bool relu, float* y) {
  switch (chosenIsa()) {
    case Isa::Avx512: return isa_avx512::gemmConvForward(g, x, wp, b, residual, relu, y);
    case Isa::Avx2: return isa_avx2::gemmConvForward(g, x, wp, b, residual, relu, y);
    case Isa::Base: return isa_base::gemmConvForward(g, x, wp, b, residual, relu, y);
  }
}

void winogradBackwardWeights(const WinoGeom& g, const float* x, const float* dy, float* dw) {
  switch (chosenIsa()) {
    case Isa::Avx512: return isa_avx512::winogradBackwardWeights(g, x, dy, dw);
    case Isa::Avx2: return isa_avx2::winogradBackwardWeights(g, x, dy, dw);
    case Isa::Base: return isa_base::winogradBackwardWeights(g, x, dy, dw);
  }
}

}  // namespace rn
