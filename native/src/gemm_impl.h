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

#if LMD_W == 8 && defined(__AVX2__)
/** 8×8 transpose in registers: on return r[j] holds element j of every input row (column j). */
LMD_INLINE void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

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
#if LMD_W == 8 && LMD_MR == 6 && defined(__AVX2__)
    if (rows == MR) {  // 8 k-steps of the 6 rows at a time through a register transpose
      const float* s = a + (i0 + ir) * k + p0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        __m256 v[8];
        for (int r = 0; r < 6; ++r) v[r] = _mm256_loadu_ps(s + r * k + p);
        v[6] = v[7] = _mm256_setzero_ps();
        transpose8(v);
        for (int j = 0; j < 8; ++j) {  // column j = k-step p+j: rows 0–3, then rows 4–5
          float* dj = d + (p + j) * MR;
          _mm_storeu_ps(dj, _mm256_castps256_ps128(v[j]));
          _mm_store_sd(reinterpret_cast<double*>(dj + 4), _mm_castps_pd(_mm256_extractf128_ps(v[j], 1)));
        }
      }
      for (; p < kc; ++p)
        for (int r = 0; r < MR; ++r) d[p * MR + r] = s[r * k + p];
      if (bf16) round_bf16_panel(d, MR * kc);
      continue;
    }
#endif
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
#if LMD_W == 8 && defined(__AVX2__)
      if (cols == NR) {  // whole panels: 8 columns × 8 k-steps per register transpose
        for (; p + 8 <= kc; p += 8) {
          for (int h = 0; h < NR; h += 8) {
            __m256 v[8];
            for (int j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(s + (h + j) * k + p);
            transpose8(v);
            for (int q = 0; q < 8; ++q) _mm256_store_ps(d + (p + q) * NR + h, v[q]);
          }
        }
      }
#endif
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
