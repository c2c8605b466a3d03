// bench/peak-flops.c: the arithmetic ceiling of this CPU, to set the engine's speeds against.
//
// Runs independent chains of multiply-adds in registers (no memory traffic), on 1 thread and on every core, and
// prints GFLOP/s for: AVX2 fp32 FMA (8 lanes), AVX-512 fp32 FMA (16 lanes) and AVX512_BF16's dot product
// (vdpbf16ps: 16 fp32 lanes, each adding two bf16 products). Each kind runs only where the CPU has it (checked at
// run time). A direct convolution cannot beat these; only an algorithm with fewer multiplications (Winograd) can
// show an "effective" rate (1.114 GFLOP per image forward x images/s) above them.
//
//   gcc -O2 -pthread bench/peak-flops.c -o /tmp/peak-flops && /tmp/peak-flops
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ITERS 10000000L
#define ACC 24  // independent accumulators (of 32 vector registers): more than latency x issue width on the cores we have seen

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static float sink[64];
// keeps each result in a register and opaque to the optimiser, so that every multiply-add is really executed
#define KEEP(v) __asm__ volatile("" : "+v"(v))

// One kernel: ACC (24) named accumulators (named, not an array, so that they live in registers), each updated once per
// iteration by OP, the results summed into `sink` at the end.
#define STEP(v) { v = OP(v, x, y); KEEP(v); }
#define BODY(VT, INIT, ADD, STORE)                                                                   \
  VT a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5), a6 = INIT(6),   \
     a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11), b0 = INIT(0), b1 = INIT(1), \
     b2 = INIT(2), b3 = INIT(3), b4 = INIT(4), b5 = INIT(5), b6 = INIT(6), b7 = INIT(7), b8 = INIT(8),      \
     b9 = INIT(9), b10 = INIT(10), b11 = INIT(11);                                                     \
  for (long it = 0; it < ITERS; it++) {                                                             \
    STEP(a0) STEP(a1) STEP(a2) STEP(a3) STEP(a4) STEP(a5) STEP(a6) STEP(a7) STEP(a8) STEP(a9) STEP(a10) STEP(a11) \
    STEP(b0) STEP(b1) STEP(b2) STEP(b3) STEP(b4) STEP(b5) STEP(b6) STEP(b7) STEP(b8) STEP(b9) STEP(b10) STEP(b11) \
  }                                                                                                 \
  a0 = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                            \
  a0 = ADD(a0, ADD(ADD(a8, a9), ADD(a10, a11)));                                                    \
  b0 = ADD(ADD(ADD(b0, b1), ADD(b2, b3)), ADD(ADD(b4, b5), ADD(b6, b7)));                            \
  a0 = ADD(a0, ADD(b0, ADD(ADD(b8, b9), ADD(b10, b11))));                                           \
  STORE(sink, a0);

#define INIT256(i) _mm256_set1_ps((float)(i))
#define INIT512(i) _mm512_set1_ps((float)(i))

__attribute__((target("avx2,fma"))) static void fma256(void) {
  const __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
#define OP _mm256_fmadd_ps
  BODY(__m256, INIT256, _mm256_add_ps, _mm256_storeu_ps)
#undef OP
}

__attribute__((target("avx512f"))) static void fma512(void) {
  const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
#define OP _mm512_fmadd_ps
  BODY(__m512, INIT512, _mm512_add_ps, _mm512_storeu_ps)
#undef OP
}

__attribute__((target("avx512f,avx512bf16"))) static void dpbf16(void) {
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0 in bf16
#define OP _mm512_dpbf16_ps
  BODY(__m512, INIT512, _mm512_add_ps, _mm512_storeu_ps)
#undef OP
}

typedef void (*kernel_fn)(void);
static void* run_thread(void* f) {
  ((kernel_fn)f)();
  return NULL;
}

/** GFLOP/s of `threads` copies of f running at once; flops = per-call count. */
static double measure(kernel_fn f, int threads, double flops) {
  pthread_t t[256];
  f();  // warm-up (clocks up, pages in)
  const double t0 = now();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run_thread, (void*)f);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return flops * threads / (now() - t0) / 1e9;
}

int main(void) {
  __builtin_cpu_init();
  const int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  struct { const char* name; kernel_fn f; int lanes_flops; int ok; } kinds[] = {
      {"avx2 fp32 fma", fma256, 8 * 2, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
      {"avx512 fp32 fma", fma512, 16 * 2, __builtin_cpu_supports("avx512f")},
      {"avx512_bf16 dot (vdpbf16ps)", dpbf16, 16 * 4, __builtin_cpu_supports("avx512bf16")},
  };
  printf("peak arithmetic, GFLOP/s (1 thread | %d threads):\n", cores);
  for (unsigned k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    if (!kinds[k].ok) {
      printf("  %-28s not on this CPU\n", kinds[k].name);
      continue;
    }
    const double flops = (double)ITERS * ACC * kinds[k].lanes_flops;
    const double one = measure(kinds[k].f, 1, flops), all = measure(kinds[k].f, cores, flops);
    printf("  %-28s %8.1f | %8.1f\n", kinds[k].name, one, all);
  }
  return 0;
}
