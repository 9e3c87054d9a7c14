// The per-ISA kernel table. Each instruction set (AVX-512, AVX2+FMA, portable) is one translation
// unit compiled with its own flags (see binding.gyp) that fills one KernelTable; dispatch.cc picks a
// table at load time with __builtin_cpu_supports. Kernels here are single-threaded over the range
// they are given: threading lives in the baseline code (gemm.cc, fused.cc, addon.cc) so that no std:: code is
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
  /**
   * bf16 mixed precision, emulated: every operand element is rounded to bfloat16 (round to nearest
   * even, NaN kept NaN) while it is packed, and the products are accumulated in fp32 FMAs as usual.
   * CPUs without AVX512-BF16 have no faster bf16 path, so this gives bf16 numerics at fp32 speed.
   */
  bool bf16 = false;
  /** optional row vector [n] added to every row of C (fp32, in the micro-kernel's store: no extra pass) */
  const float* bias = nullptr;
};

/** Scalars of one AdamW update (see Backend.adamw). */
struct RowLossArgs;  // rowloss.h

struct AdamParams {
  double beta1, beta2, eps, decay, step_size, sqrt_bc2;
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
  /** the two halves of gemm_tile, for threads that share one packed B block: pack columns [j0, j0+nc) of
   * op(B)'s k block [pc, pc+kc) into NR-wide panels at dst (panel of column j at dst + (j − block start)·kc) */
  void (*pack_b_block)(const GemmArgs& g, int64_t bi, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst);
  /** rows [m0, m1) × columns [jc, jc+nc) for k block [pc, pc+kc) from a packed B block; pack_a holds mc×kc */
  void (*gemm_packed_b)(const GemmArgs& g, int64_t bi, int64_t m0, int64_t m1, int64_t jc, int64_t nc, int64_t pc,
                        int64_t kc, const float* pb, float* pack_a);
  void (*unary)(int op, const float* x, float* out, int64_t n);
  void (*unary_backward)(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
  /** rows [r0, r1) of a row-wise (log-)softmax over `cols` columns */
  void (*softmax)(const float* x, float* out, int64_t r0, int64_t r1, int64_t cols, bool log);
  void (*softmax_backward)(const float* y, const float* gy, float* gx, int64_t r0, int64_t r1, int64_t cols, bool log);
  /** rows [r0, r1) of LayerNorm (rms=false) or RMSNorm; writes out, mean (0 for RMS) and rstd */
  void (*norm_forward)(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                       int64_t r0, int64_t r1, int64_t cols, double eps, bool rms);
  /** rows [r0, r1) of the norm backward: writes gx, adds into the float64 column sums gw_acc, gb_acc (may be null) */
  void (*norm_backward)(const float* x, const float* w, const float* mean, const float* rstd, const float* gy, float* gx,
                        int64_t r0, int64_t r1, int64_t cols, bool rms, double* gw_acc, double* gb_acc);
  /** AdamW over n elements (g may be null: zeros) */
  void (*adamw)(float* w, const float* g, float* m, float* v, int64_t n, const AdamParams& a);
  /** masked scaled softmax of an attention score block with its log-sum-exp (fused_impl.h) */
  void (*attn_probs)(float* p, int64_t rows, int64_t ld, int64_t vis0, float scale, const float* lse_in, float* lse_out);
  /** dS = P∘(dP − rowsum(dO∘O))·scale over a block (fused_impl.h) */
  void (*attn_ds)(const float* p, float* dp, const float* go, const float* o, int64_t rows, int64_t ld, int64_t D, float scale);
  /** rows [r0, r1) of the mixture row losses (rowloss_impl.h); qe and pe are V-float scratch rows */
  void (*row_loss)(const RowLossArgs& a, int64_t r0, int64_t r1, float* qe, float* pe);
};

// Plain data (constant-initialised, no code runs to build them), so that merely referring to the
// AVX-512 table executes no AVX-512 instruction on a CPU without it.
extern const KernelTable kTableGeneric;
#if defined(__x86_64__)
extern const KernelTable kTableAvx2;
extern const KernelTable kTableAvx512;
#endif

}  // namespace lmd
