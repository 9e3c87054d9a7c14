// Row kernels of the fused ops for one instruction set (included by isa_*.cc after math_impl.h):
// LayerNorm/RMSNorm forward and backward, the AdamW update, and the two elementwise stages of
// flash-style attention (masked softmax of a score block with its log-sum-exp, and dS = P∘(dP − δ)).
// The GEMMs of attention and all threading live in fused.cc (baseline code).
//
// Precision follows src/backend/ref-fused.ts: norm statistics, norm outputs and gradients and the
// whole AdamW update are computed in float64 lanes (the reference computes in JS doubles), so they
// differ from it only by summation order / FMA contraction, far below one float ulp before the
// final rounding. Attention probabilities use the float vexp of math_impl.h with the row sum in
// float64, like the native softmax.
#pragma once
#include <cmath>

#include "kernels.h"
#include "vec.h"

namespace lmd {
namespace {

typedef double vdhu __attribute__((vector_size(LMD_W * 4), aligned(8), __may_alias__));
constexpr int WD = W / 2;  // doubles per register

LMD_INLINE vdh loadud(const double* p) { return *reinterpret_cast<const vdhu*>(p); }
LMD_INLINE void storeud(double* p, vdh v) { *reinterpret_cast<vdhu*>(p) = v; }
LMD_INLINE vdh splatd(double x) { return x - vdh{}; }
LMD_INLINE vdh vsqrtd(vdh v) {
#if LMD_W == 16 && defined(__AVX512F__)
  return _mm512_sqrt_pd(v);
#elif LMD_W == 8 && defined(__AVX__)
  return _mm256_sqrt_pd(v);
#elif LMD_W == 4 && defined(__SSE2__)
  return _mm_sqrt_pd(v);
#else
  vdh r;
  for (int i = 0; i < WD; ++i) r[i] = __builtin_sqrt(v[i]);
  return r;
#endif
}
LMD_INLINE double hsumd(vdh v) {
  double s = 0;
  for (int i = 0; i < WD; ++i) s += v[i];
  return s;
}

void norm_forward(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                  int64_t r0, int64_t r1, int64_t cols, double eps, bool rms) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* orow = out + r * cols;
    double mu = 0;
    int64_t j = 0;
    if (!rms) {
      DoubleSum s;
      for (; j + W <= cols; j += W) s.add(loadu(xr + j));
      mu = s.total();
      for (; j < cols; ++j) mu += xr[j];
      mu /= static_cast<double>(cols);
    }
    const vdh mv = splatd(mu);
    vdh a0 = vdh{}, a1 = vdh{};
    for (j = 0; j + W <= cols; j += W) {
      const vf v = loadu(xr + j);
      const vdh d0 = widen(lower(v)) - mv, d1 = widen(upper(v)) - mv;
      a0 += d0 * d0;
      a1 += d1 * d1;
    }
    double ss = hsumd(a0 + a1);
    for (; j < cols; ++j) {
      const double d = static_cast<double>(xr[j]) - mu;
      ss += d * d;
    }
    const double rs = 1.0 / __builtin_sqrt(ss / static_cast<double>(cols) + eps);
    mean[r] = static_cast<float>(mu);
    rstd[r] = static_cast<float>(rs);
    const vdh rv = splatd(rs);
    for (j = 0; j + W <= cols; j += W) {
      const vf v = loadu(xr + j), wv = loadu(w + j);
      vdh y0 = (widen(lower(v)) - mv) * rv * widen(lower(wv));
      vdh y1 = (widen(upper(v)) - mv) * rv * widen(upper(wv));
      if (b) {
        const vf bv = loadu(b + j);
        y0 += widen(lower(bv));
        y1 += widen(upper(bv));
      }
      storeu(orow + j, join(narrow(y0), narrow(y1)));
    }
    for (; j < cols; ++j) {
      double y = (static_cast<double>(xr[j]) - mu) * rs * static_cast<double>(w[j]);
      if (b) y += static_cast<double>(b[j]);
      orow[j] = static_cast<float>(y);
    }
  }
}

/** Rows [r0, r1) of the norm backward: writes gx, adds Σ gy·x̂ / Σ gy into gw_acc / gb_acc (float64). */
void norm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* gy, float* gx,
                   int64_t r0, int64_t r1, int64_t cols, bool rms, double* gw_acc, double* gb_acc) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    const float* gr = gy + r * cols;
    float* xo = gx + r * cols;
    const double mu = mean[r], rs = rstd[r];
    const vdh mv = splatd(mu), rv = splatd(rs);
    vdh sg = vdh{}, sgx = vdh{};
    int64_t j = 0;
    for (; j + W <= cols; j += W) {
      const vf xv = loadu(xr + j), gv = loadu(gr + j), wv = loadu(w + j);
      const vdh xh0 = (widen(lower(xv)) - mv) * rv, xh1 = (widen(upper(xv)) - mv) * rv;
      const vdh gy0 = widen(lower(gv)), gy1 = widen(upper(gv));
      const vdh g0 = gy0 * widen(lower(wv)), g1 = gy1 * widen(upper(wv));
      sg += g0 + g1;
      sgx += g0 * xh0 + g1 * xh1;
      storeud(gw_acc + j, loadud(gw_acc + j) + gy0 * xh0);
      storeud(gw_acc + j + WD, loadud(gw_acc + j + WD) + gy1 * xh1);
      if (gb_acc) {
        storeud(gb_acc + j, loadud(gb_acc + j) + gy0);
        storeud(gb_acc + j + WD, loadud(gb_acc + j + WD) + gy1);
      }
    }
    double s_g = hsumd(sg), s_gx = hsumd(sgx);
    for (; j < cols; ++j) {
      const double xh = (static_cast<double>(xr[j]) - mu) * rs, gyj = gr[j];
      const double g = gyj * static_cast<double>(w[j]);
      s_g += g;
      s_gx += g * xh;
      gw_acc[j] += gyj * xh;
      if (gb_acc) gb_acc[j] += gyj;
    }
    const double mg = rms ? 0.0 : s_g / static_cast<double>(cols), mgx = s_gx / static_cast<double>(cols);
    const vdh mgv = splatd(mg), mgxv = splatd(mgx);
    for (j = 0; j + W <= cols; j += W) {
      const vf xv = loadu(xr + j), gv = loadu(gr + j), wv = loadu(w + j);
      const vdh xh0 = (widen(lower(xv)) - mv) * rv, xh1 = (widen(upper(xv)) - mv) * rv;
      const vdh y0 = rv * (widen(lower(gv)) * widen(lower(wv)) - mgv - xh0 * mgxv);
      const vdh y1 = rv * (widen(upper(gv)) * widen(upper(wv)) - mgv - xh1 * mgxv);
      storeu(xo + j, join(narrow(y0), narrow(y1)));
    }
    for (; j < cols; ++j) {
      const double xh = (static_cast<double>(xr[j]) - mu) * rs;
      xo[j] = static_cast<float>(rs * (static_cast<double>(gr[j]) * static_cast<double>(w[j]) - mg - xh * mgx));
    }
  }
}

/** AdamW over n elements, every step in float64 as the reference (m and v are rounded when stored). */
// No FMA contraction here: every product and sum is rounded as in the reference, so the update is
// bit-identical to it (float64 throughout, one rounding to float per stored value).
__attribute__((optimize("fp-contract=off"))) void adamw(float* w, const float* g, float* m, float* v, int64_t n, const AdamParams& a) {
  const double b1 = a.beta1, b2 = a.beta2, c1 = 1 - a.beta1, c2 = 1 - a.beta2;
  const double eps = a.eps, decay = a.decay, step = a.step_size, bc2 = a.sqrt_bc2;
  int64_t j = 0;
  const vdh vb1 = splatd(b1), vb2 = splatd(b2), vc1 = splatd(c1), vc2 = splatd(c2), veps = splatd(eps);
  const vdh vdecay = splatd(decay), vstep = splatd(step), vbc2 = splatd(bc2);
  for (; j + W <= n; j += W) {
    const vf gv = g ? loadu(g + j) : vf{}, mvf = loadu(m + j), vvf = loadu(v + j), wv = loadu(w + j);
    vdh mo[2], vo[2], wo[2];
    for (int h = 0; h < 2; ++h) {
      const vdh gd = widen(h ? upper(gv) : lower(gv));
      const vdh md = vb1 * widen(h ? upper(mvf) : lower(mvf)) + vc1 * gd;
      const vdh vd = vb2 * widen(h ? upper(vvf) : lower(vvf)) + vc2 * gd * gd;
      const vdh sq = vsqrtd(vd);
      wo[h] = widen(h ? upper(wv) : lower(wv)) * vdecay - (vstep * md) / (sq / vbc2 + veps);
      mo[h] = md;
      vo[h] = vd;
    }
    storeu(m + j, join(narrow(mo[0]), narrow(mo[1])));
    storeu(v + j, join(narrow(vo[0]), narrow(vo[1])));
    storeu(w + j, join(narrow(wo[0]), narrow(wo[1])));
  }
  for (; j < n; ++j) {
    const double gj = g ? static_cast<double>(g[j]) : 0.0;
    const double mj = b1 * static_cast<double>(m[j]) + c1 * gj;
    const double vj = b2 * static_cast<double>(v[j]) + c2 * gj * gj;
    m[j] = static_cast<float>(mj);
    v[j] = static_cast<float>(vj);
    w[j] = static_cast<float>(static_cast<double>(w[j]) * decay - (step * mj) / (__builtin_sqrt(vj) / bc2 + eps));
  }
}

/**
 * Scores → probabilities for `rows` rows of p (row stride ld): row i sees its first
 * nvis_i = clamp(vis0 + i, 0, ld) columns; those are scaled, then
 *  - backward (lse_in given): p = exp(s − L) with L = lse_in[i], the forward's log-sum-exp;
 *  - forward: p = exp(s − max) / Σ exp(s − max) (one exp per score, float64 sum) and
 *    L = max + log Σ written to lse_out[i] (−inf for a row that sees nothing).
 * The columns beyond nvis_i are zeroed.
 */
void attn_probs(float* p, int64_t rows, int64_t ld, int64_t vis0, float scale, const float* lse_in, float* lse_out) {
  const vf sv = splat(scale);
  const float ninf = -__builtin_inff();
  for (int64_t i = 0; i < rows; ++i) {
    float* pr = p + i * ld;
    const int64_t nv = vis0 + i < 0 ? 0 : (vis0 + i > ld ? ld : vis0 + i);
    int64_t j = 0;
    if (lse_in) {
      const float hi = lse_in[i];
      const vf vh = splat(hi);
      for (; j + W <= nv; j += W) storeu(pr + j, vexp(loadu(pr + j) * sv - vh));
      if (j < nv) store_partial(pr + j, vexp(load_partial(pr + j, nv - j, 0.0f) * sv - vh), nv - j);
    } else if (nv == 0) {
      lse_out[i] = ninf;
    } else {
      vf mv = splat(ninf);  // scale while finding the max: one pass
      for (; j + W <= nv; j += W) {
        const vf v = loadu(pr + j) * sv;
        storeu(pr + j, v);
        mv = select(v > mv, v, mv);
      }
      float mx = ninf;
      for (int l = 0; l < W; ++l) mx = mv[l] > mx ? mv[l] : mx;
      for (; j < nv; ++j) {
        pr[j] *= scale;
        mx = pr[j] > mx ? pr[j] : mx;
      }
      const vf m = splat(mx);
      DoubleSum acc;
      for (j = 0; j + W <= nv; j += W) {
        const vf e = vexp(loadu(pr + j) - m);
        storeu(pr + j, e);
        acc.add(e);
      }
      if (j < nv) {
        const vf e = vexp(load_partial(pr + j, nv - j, ninf) - m);
        store_partial(pr + j, e, nv - j);
        acc.add(e);
      }
      const double total = acc.total();
      lse_out[i] = static_cast<float>(static_cast<double>(mx) + ::log(total));
      const vf inv = splat(static_cast<float>(1.0 / total));
      for (j = 0; j + W <= nv; j += W) storeu(pr + j, loadu(pr + j) * inv);
      for (; j < nv; ++j) pr[j] *= inv[0];
    }
    for (j = nv; j < ld; ++j) pr[j] = 0.0f;
  }
}

/** dS = P∘(dP − δ)·scale in place of dp, δ_i = Σ_d gOut[i,d]·out[i,d] (float64), rows of width ld. */
void attn_ds(const float* p, float* dp, const float* go, const float* o, int64_t rows, int64_t ld, int64_t D, float scale) {
  const vf sv = splat(scale);
  for (int64_t i = 0; i < rows; ++i) {
    const float* gr = go + i * D;
    const float* orow = o + i * D;
    DoubleSum acc;
    int64_t j = 0;
    for (; j + W <= D; j += W) acc.add_product(loadu(gr + j), loadu(orow + j));
    double d = acc.total();
    for (; j < D; ++j) d += static_cast<double>(gr[j]) * orow[j];
    const float df = static_cast<float>(d);
    const vf dv = splat(df);
    const float* pr = p + i * ld;
    float* dr = dp + i * ld;
    for (j = 0; j + W <= ld; j += W) storeu(dr + j, loadu(pr + j) * (loadu(dr + j) - dv) * sv);
    for (; j < ld; ++j) dr[j] = pr[j] * (dr[j] - df) * scale;
  }
}

}  // namespace
}  // namespace lmd
