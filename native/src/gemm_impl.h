// BLIS-style fp32 GEMM for one instruction set (included by isa_*.cc after vec.h and LMD_MR,
// LMD_NV, LMD_MC, LMD_KC, LMD_NC). Loop nest, from outside in:
//   jc (NC columns of C)  → pc (KC of k; pack op(B) block, KC×NC, into NR-wide panels, lives in L3)
//   → ic (MC rows; pack op(A) block, MC×KC, into MR-high panels, lives in L2)
//   → jr (NR columns; one B panel stays in L1) → ir (MR rows) → micro-kernel: an MR×NR tile of C in
//   registers, updated by a rank-1 product per k (MR broadcasts × NV vector loads, MR·NV FMAs).
// Transposition is absorbed by the packing routines, so all four variants run the same kernel, and so
// is bf16 emulation (GemmArgs::bf16): each freshly packed panel, still in L1, is rounded to bfloat16
// in place, so the micro-kernel multiplies bf16 values and accumulates in fp32 at no extra cost.
#pragma once
#include "kernels.h"
#include "vec.h"

namespace lmd {
namespace {

constexpr int MR = LMD_MR;
constexpr int NV = LMD_NV;
constexpr int NR = LMD_W * LMD_NV;
constexpr int MC = LMD_MC;
constexpr int KC = LMD_KC;
constexpr int NC = LMD_NC;
static_assert(MC % MR == 0 && NC % NR == 0, "cache blocks must be whole micro-panels");

/**
 * The micro-kernel: C[0:MR, 0:NR] (+)= Ap · Bp (+ bias[0:NR] on every row when bias is given) where Ap
 * is kc×MR (packed, row i at Ap[p*MR + i]) and Bp is kc×NR (packed, aligned). Writes a full tile; the
 * caller handles edges.
 */
LMD_INLINE void micro_kernel(int64_t kc, const float* __restrict ap, const float* __restrict bp,
                             float* __restrict c, int64_t ldc, bool acc, const float* __restrict bias = nullptr) {
  vf r[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) r[i][j] = vf{};
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) __builtin_prefetch(c + i * ldc, 1, 3);
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    vf bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = loada(bp + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vf av = splat(ap[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) r[i][j] += av * bv[j];
    }
    ap += MR;
    bp += NR;
  }
  if (bias) {
    vf bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = loadu(bias + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) r[i][j] += bv[j];
  }
  if (acc) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) storeu(c + i * ldc + j * W, loadu(c + i * ldc + j * W) + r[i][j]);
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) storeu(c + i * ldc + j * W, r[i][j]);
  }
}

/** An edge tile (rows < MR or cols < NR): compute the full tile aside, then write the valid part. */
void edge_kernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t rows,
                 int64_t cols, bool acc, const float* bias) {
  alignas(64) float t[MR * NR];
  micro_kernel(kc, ap, bp, t, NR, false);
  for (int64_t i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    const float* ti = t + i * NR;
    // bias holds only `cols` valid entries here (the tile may overhang n)
    if (bias)
      for (int64_t j = 0; j < cols; ++j) ci[j] = acc ? ci[j] + (ti[j] + bias[j]) : ti[j] + bias[j];
    else if (acc)
      for (int64_t j = 0; j < cols; ++j) ci[j] += ti[j];
    else
      for (int64_t j = 0; j < cols; ++j) ci[j] = ti[j];
  }
}

typedef uint32_t vu __attribute__((vector_size(LMD_W * 4), __may_alias__));

/**
 * fp32 → nearest bfloat16 (ties to even), returned as the fp32 with the same value: add 0x7FFF plus
 * the lowest kept bit, drop the low 16 bits (overflow carries into the exponent, giving ±Inf as IEEE
 * rounding does). NaN would carry into Inf or lose its payload, so it keeps its top bits with the
 * quiet bit set. Same rule as src/backend/gemm.ts roundBf16 and torch's round_to_nearest_even (which
 * writes one canonical NaN instead; any NaN poisons the product alike).
 */
LMD_INLINE vf round_bf16(vf x) {
  const vu u = reinterpret_cast<vu>(x);
  const vu r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  const vu q = (u | 0x00400000u) & 0xFFFF0000u;
  const vi nan = (as_i(x) & 0x7FFFFFFF) > 0x7F800000;
  return as_f(reinterpret_cast<vi>(nan ? q : r));
}
LMD_INLINE float round_bf16(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  u = (u & 0x7FFFFFFFu) > 0x7F800000u ? (u | 0x00400000u) & 0xFFFF0000u : (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  __builtin_memcpy(&x, &u, 4);
  return x;
}
/** Rounds n packed floats in place (a panel just written, so it is in L1). */
void round_bf16_panel(float* p, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) storeu(p + i, round_bf16(loadu(p + i)));
  for (; i < n; ++i) p[i] = round_bf16(p[i]);
}

/** Packs rows [i0, i0+mc) × k-range [p0, p0+kc) of op(A) into MR-high panels (zero-padded). */
void pack_a(const float* a, bool trans, int64_t m, int64_t k, int64_t i0, int64_t mc, int64_t p0,
            int64_t kc, float* __restrict dst, bool bf16) {
  if (trans) {
    // A stored [k, m]: row p of the block is contiguous; walk it once, dealing MR-runs to the panels
    // (reading along rows keeps the hardware prefetcher on a single stream per k step)
    const int64_t full = mc / MR * MR;
    for (int64_t p = 0; p < kc; ++p) {
      const float* s = a + (p0 + p) * m + i0;
      float* d = dst + p * MR;
      int64_t ir = 0;
      for (; ir < full; ir += MR, d += MR * kc)
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) d[r] = s[ir + r];
      if (ir < mc)
        for (int r = 0; r < MR; ++r) d[r] = ir + r < mc ? s[ir + r] : 0.0f;
    }
    // this layout fills all panels at once, so round the block (mc×kc, sized for L2) afterwards
    if (bf16) round_bf16_panel(dst, (mc + MR - 1) / MR * MR * kc);
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {  // A stored [m, k]: read each row contiguously, scatter
    const int64_t rows = min_of<int64_t>(MR, mc - ir);
    float* d = dst + ir * kc;
    for (int r = 0; r < MR; ++r) {
      if (r < rows) {
        const float* s = a + (i0 + ir + r) * k + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = s[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = 0.0f;
      }
    }
    if (bf16) round_bf16_panel(d, MR * kc);
  }
}

/** Packs k-range [p0, p0+kc) × columns [j0, j0+nc) of op(B) into NR-wide panels (zero-padded). */
void pack_b(const float* b, bool trans, int64_t k, int64_t n, int64_t p0, int64_t kc, int64_t j0,
            int64_t nc, float* __restrict dst, bool bf16) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t cols = min_of<int64_t>(NR, nc - jr);
    float* d = dst + jr * kc;
    if (!trans) {  // B stored [k, n]: each k step is a contiguous run of columns
      const float* s = b + p0 * n + j0 + jr;
      if (cols == NR && bf16) {  // the common case rounds in the copy loop itself (no second pass)
        for (int64_t p = 0; p < kc; ++p, s += n, d += NR)
#pragma GCC unroll 4
          for (int j = 0; j < NV; ++j) *reinterpret_cast<vf*>(d + j * W) = round_bf16(loadu(s + j * W));
        continue;
      }
      if (cols == NR) {
        for (int64_t p = 0; p < kc; ++p, s += n, d += NR)
#pragma GCC unroll 4
          for (int j = 0; j < NV; ++j) *reinterpret_cast<vf*>(d + j * W) = loadu(s + j * W);
      } else {
        for (int64_t p = 0; p < kc; ++p, s += n, d += NR)
          for (int j = 0; j < NR; ++j) d[j] = j < cols ? s[j] : 0.0f;
      }
    } else {  // B stored [n, k]: column j of op(B) is row j of B; transpose 4 k-steps at a time
      const float* s = b + (j0 + jr) * k + p0;
      int64_t p = 0;
      for (; p + 4 <= kc; p += 4) {
        float* dp = d + p * NR;
        for (int j = 0; j < NR; ++j) {
          if (j < cols) {
            const float* sj = s + j * k + p;
            dp[j] = sj[0];
            dp[NR + j] = sj[1];
            dp[2 * NR + j] = sj[2];
            dp[3 * NR + j] = sj[3];
          } else {
            dp[j] = dp[NR + j] = dp[2 * NR + j] = dp[3 * NR + j] = 0.0f;
          }
        }
      }
      for (; p < kc; ++p)
        for (int j = 0; j < NR; ++j) d[p * NR + j] = j < cols ? s[j * k + p] : 0.0f;
    }
    if (bf16) round_bf16_panel(dst + jr * kc, NR * kc);  // d has moved on in the loops above
  }
}

/**
 * Rows [m0, m1) of C[bi][:, jc:jc+nc] for the k block [pc, pc+kc), from B's block already packed in pb
 * (by pack_b, possibly by several threads) and A packed here into the caller's pa.
 */
void gemm_packed_b(const GemmArgs& g, int64_t bi, int64_t m0, int64_t m1, int64_t jc, int64_t nc, int64_t pc,
                   int64_t kc, const float* pb, float* pa) {
  const int64_t m = g.m, n = g.n, k = g.k;
  const float* a = g.a + bi * g.a_batch_stride;
  float* c = g.c + bi * m * n;
  const bool acc = g.accumulate || pc > 0;
  const float* bias = pc == 0 ? g.bias : nullptr;  // added once, with the first k block
  for (int64_t ic = m0; ic < m1; ic += MC) {
    const int64_t mc = min_of<int64_t>(MC, m1 - ic);
    pack_a(a, g.trans_a, m, k, ic, mc, pc, kc, pa, g.bf16);
    for (int64_t jr = 0; jr < nc; jr += NR) {
      const int64_t cols = min_of<int64_t>(NR, nc - jr);
      const float* bp = pb + jr * kc;
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t rows = min_of<int64_t>(MR, mc - ir);
        float* ct = c + (ic + ir) * n + jc + jr;
        const float* bj = bias ? bias + jc + jr : nullptr;
        if (rows == MR && cols == NR)
          micro_kernel(kc, pa + ir * kc, bp, ct, n, acc, bj);
        else
          edge_kernel(kc, pa + ir * kc, bp, ct, n, rows, cols, acc, bj);
      }
    }
  }
}

/** Packs columns [j0, j0+nc) of op(B)'s k block [pc, pc+kc) of batch item bi into dst (NR-wide panels). */
void pack_b_block(const GemmArgs& g, int64_t bi, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  pack_b(g.b + bi * g.b_batch_stride, g.trans_b, g.k, g.n, pc, kc, j0, nc, dst, g.bf16);
}

void gemm_tile(const GemmArgs& g, int64_t bi, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
               float* pa, float* pb) {
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = min_of<int64_t>(NC, n1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += KC) {
      const int64_t kc = min_of<int64_t>(KC, g.k - pc);
      pack_b_block(g, bi, pc, kc, jc, nc, pb);
      gemm_packed_b(g, bi, m0, m1, jc, nc, pc, kc, pb, pa);
    }
  }
}

}  // namespace
}  // namespace lmd
