// The per-ISA kernel table. Each instruction set (AVX-512, AVX2+FMA, portable) is one translation
// unit compiled with its own flags (see binding.gyp) that fills one KernelTable; dispatch.cc picks a
// table at load time with __builtin_cpu_supports. Kernels here are single-threaded over the range
// they are given: threading lives in the baseline code (gemm.cc, addon.cc) so that no std:: code is
// instantiated under AVX-512 flags.
#pragma once
#include <cstdint>

namespace lmd {

enum UnaryOp : int { kNeg, kExp, kLog, kSqrt, kTanh, kSigmoid, kRelu, kGelu, kSilu, kAbs, kUnaryCount };

/** One batched GEMM, C_b = op(A_b)·op(B_b) (+ C_b), row-major, C contiguous [batch, m, n]. */
struct GemmArgs {
  const float* a;
  const float* b;
  float* c;
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  int64_t a_batch_stride, b_batch_stride;
  bool accumulate;
};

struct KernelTable {
  const char* isa;
  /** micro-tile rows / columns and cache blocks (in floats) of the GEMM */
  int mr, nr, mc, kc, nc;
  /**
   * C[bi][m0:m1, n0:n1] of one batch item with the caller's scratch: pack_a holds mc×kc and
   * pack_b holds kc×nc floats (64-byte aligned). m0 must be a multiple of mr or m1 == m.
   */
  void (*gemm_tile)(const GemmArgs& g, int64_t bi, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    float* pack_a, float* pack_b);
  void (*unary)(int op, const float* x, float* out, int64_t n);
  void (*unary_backward)(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
  /** rows [r0, r1) of a row-wise (log-)softmax over `cols` columns */
  void (*softmax)(const float* x, float* out, int64_t r0, int64_t r1, int64_t cols, bool log);
  void (*softmax_backward)(const float* y, const float* gy, float* gx, int64_t r0, int64_t r1, int64_t cols, bool log);
};

// Plain data (constant-initialised, no code runs to build them), so that merely referring to the
// AVX-512 table executes no AVX-512 instruction on a CPU without it.
extern const KernelTable kTableGeneric;
#if defined(__x86_64__)
extern const KernelTable kTableAvx2;
extern const KernelTable kTableAvx512;
#endif

}  // namespace lmd
