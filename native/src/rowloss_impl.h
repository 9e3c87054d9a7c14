// The row-loss kernel (rowloss.h) for one instruction set; included by isa_*.cc after math_impl.h
// (vexp, DoubleSum). Per row, with a = (z − max z)/τ and b = (t − max t)/τ:
//   q = e^a / Sq, p = e^b / Sp,  d = b − a,  c = log Sq − log Sp  (so log p − log q = d + c)
//   ce  = log Sq − a_y (τ = 1)                 dce/dz  = q − onehot(y)
//   fkl = τ²·Σ p (d + c) = τ²·(Σ e^b·d / Sp + c)    dfkl/dz = τ·(q − p)        (Σ p = 1)
//   rkl = τ²·Σ q (−d − c) = τ²·(−Σ e^a·d / Sq − c)  drkl/dz = −τ·q·(d + c + L), L = rkl/τ²
// the exponentials in float (a few ulp), every sum and the loss-side d in double. The exponentials
// of one τ are kept in the two scratch rows and shared by consecutive parts with that τ (the common
// ce + fkl at τ = 1 costs two exponentials per logit).
#pragma once
#include <cmath>

#include "rowloss.h"

namespace lmd {
namespace {

/** Max of x[0..n) and whether every entry is finite (n > 0). */
LMD_INLINE float row_max_finite(const float* x, int64_t n, bool* finite) {
  vf mv = splat(-__builtin_inff());
  vi bad = vi{};
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const vf v = loadu(x + j);
    mv = select(v > mv, v, mv);
    bad |= (v - v) != vf{};  // inf − inf and NaN − NaN are NaN
  }
  if (j < n) {
    const vf v = load_partial(x + j, n - j, x[j]);  // padding with a real entry changes neither result
    mv = select(v > mv, v, mv);
    bad |= (v - v) != vf{};
  }
  float mx = -__builtin_inff();
  bool ok = true;
  for (int i = 0; i < W; ++i) {
    if (mv[i] > mx) mx = mv[i];
    if (bad[i]) ok = false;
  }
  *finite = ok;
  return mx;
}

/** e[j] = exp((x[j] − m)·s) for j < n; returns Σ e in double. */
LMD_INLINE double exp_row(const float* x, float m, float s, float* e, int64_t n) {
  const vf vm = splat(m), vs = splat(s);
  DoubleSum acc;
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const vf v = vexp((loadu(x + j) - vm) * vs);
    storeu(e + j, v);
    acc.add(v);
  }
  if (j < n) {  // −inf padding: exp → 0, nothing added
    const vf v = vexp((load_partial(x + j, n - j, -__builtin_inff()) - vm) * vs);
    store_partial(e + j, v, n - j);
    acc.add(v);
  }
  return acc.total();
}

/** Σ e[j]·d[j] with d = (t − mt)·s − (z − mz)·s formed in double (the loss side of fkl / rkl). */
LMD_INLINE double sum_e_d(const float* e, const float* z, const float* t, double mz, double mt, double s, int64_t n) {
  const vdh vmz = vdh{} + mz, vmt = vdh{} + mt, vs = vdh{} + s;
  vdh lo = vdh{}, hi = vdh{};
  auto step = [&](vf ev, vf zv, vf tv) {
    lo += widen(lower(ev)) * ((widen(lower(tv)) - vmt) * vs - (widen(lower(zv)) - vmz) * vs);
    hi += widen(upper(ev)) * ((widen(upper(tv)) - vmt) * vs - (widen(upper(zv)) - vmz) * vs);
  };
  int64_t j = 0;
  for (; j + W <= n; j += W) step(loadu(e + j), loadu(z + j), loadu(t + j));
  if (j < n) {  // zero padding of e: finite d times 0
    const int64_t r = n - j;
    step(load_partial(e + j, r, 0.0f), load_partial(z + j, r, 0.0f), load_partial(t + j, r, 0.0f));
  }
  const vdh c = lo + hi;
  double acc = 0;
  for (int i = 0; i < W / 2; ++i) acc += c[i];
  return acc;
}

/**
 * g = (first ? 0 : g) + f(j) over a row, f given per vector; the partial tail goes through padded
 * loads (padding chosen by the caller's f) and a partial store.
 */
template <typename F>
LMD_INLINE void grad_row(float* g, int64_t n, bool first, F f) {
  int64_t j = 0;
  for (; j + W <= n; j += W) storeu(g + j, (first ? vf{} : loadu(g + j)) + f(j, W));
  if (j < n) {
    const int64_t r = n - j;
    store_partial(g + j, (first ? vf{} : load_partial(g + j, r, 0.0f)) + f(j, r), r);
  }
}

LMD_INLINE vf load_n(const float* p, int64_t r) { return r == W ? loadu(p) : load_partial(p, r, 0.0f); }

void row_loss(const RowLossArgs& a, int64_t r0, int64_t r1, float* qe, float* pe) {
  const int64_t V = a.V;
  const int np = a.nparts;
  bool need_t = false, need_y = false;
  for (int i = 0; i < np; ++i) (a.parts[i].kind == kRowCe ? need_y : need_t) = true;
  for (int64_t r = r0; r < r1; ++r) {
    const float* z = a.z + r * V;
    const float* t = need_t ? a.t + r * V : nullptr;
    float* g = a.grad + r * V;
    double* pl = a.part_loss + r * np;
    for (int i = 0; i < np; ++i) pl[i] = 0;
    a.refused[r] = 0;
    const float w = a.w[r];
    if (w == 0) {  // masked row (padding): nothing to scan
      for (int64_t j = 0; j < V; ++j) g[j] = 0.0f;
      continue;
    }
    const int32_t y = need_y ? a.labels[r] : -100;
    bool fz = true, ft = true;
    const float mz = V > 0 ? row_max_finite(z, V, &fz) : 0.0f;
    const float mt = need_t && V > 0 ? row_max_finite(t, V, &ft) : 0.0f;
    if (V == 0 || !fz || !ft || (y != -100 && !(y >= 0 && y < V))) {
      // refused: the caller recomputes the row with the TypeScript kernels
      a.refused[r] = 1;
      for (int64_t j = 0; j < V; ++j) g[j] = 0.0f;
      continue;
    }
    double qtau = NAN, ptau = NAN, sq = 0, sp = 0;
    bool first = true;
    for (int i = 0; i < np; ++i) {
      const RowLossPart& part = a.parts[i];
      const double tau = part.kind == kRowCe ? 1.0 : part.tau;
      const float s = static_cast<float>(1.0 / tau);
      if (!(qtau == tau)) {
        sq = exp_row(z, mz, s, qe, V);
        qtau = tau;
      }
      const float iq = static_cast<float>(1.0 / sq);
      if (part.kind == kRowCe) {
        if (y == -100) continue;  // ignored label: loss 0, no gradient
        pl[i] = ::log(sq) - (static_cast<double>(z[y]) - mz);
        const vf k = splat(static_cast<float>(part.weight) * w * iq);
        grad_row(g, V, first, [&](int64_t j, int64_t n) { return k * load_n(qe + j, n); });
        g[y] -= static_cast<float>(part.weight) * w;
        first = false;
        continue;
      }
      if (!(ptau == tau)) {
        sp = exp_row(t, mt, s, pe, V);
        ptau = tau;
      }
      const double c = ::log(sq) - ::log(sp);
      const float k = static_cast<float>(part.weight * part.scale / tau) * w;
      if (part.kind == kRowFkl) {
        const double L = sum_e_d(pe, z, t, mz, mt, 1.0 / tau, V) / sp + c;
        pl[i] = L * part.scale;
        const vf kq = splat(k * iq), kp = splat(k * static_cast<float>(1.0 / sp));
        grad_row(g, V, first, [&](int64_t j, int64_t n) { return kq * load_n(qe + j, n) - kp * load_n(pe + j, n); });
      } else {
        const double L = -sum_e_d(qe, z, t, mz, mt, 1.0 / tau, V) / sq - c;
        pl[i] = L * part.scale;
        const vf kq = splat(-k * iq), vmz = splat(mz), vmt = splat(mt), vs = splat(s);
        const vf off = splat(static_cast<float>(c + L));
        grad_row(g, V, first, [&](int64_t j, int64_t n) {
          const vf d = (load_n(t + j, n) - vmt) * vs - (load_n(z + j, n) - vmz) * vs;
          const vf q = load_n(qe + j, n);
          // q = 0 contributes 0 even where d overflowed float (logit ranges beyond ~1e38)
          return select(q == vf{}, vf{}, kq * q * (d + off));
        });
      }
      first = false;
    }
    if (first)
      for (int64_t j = 0; j < V; ++j) g[j] = 0.0f;
  }
}

}  // namespace
}  // namespace lmd
