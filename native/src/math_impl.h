// Elementwise transcendental kernels and row softmax for one instruction set (included by isa_*.cc
// after vec.h). exp, log and tanh are Cephes-style float approximations (a few ulp over the normal
// range; test/conformance/native-vs-ref.test.ts pins the bounds); sigmoid, SiLU and GELU are built
// on exp so that their tails keep full relative accuracy: GELU(x) = x·σ(2u) with
// u = √(2/π)(x + 0.044715x³) is the same function as 0.5·x·(1 + tanh u) without the cancellation of
// 1 + tanh u for x ≪ 0, and its argument 2u is formed in double.
#pragma once
#include <cmath>

#include "kernels.h"
#include "vec.h"

namespace lmd {
namespace {

/** e^x: round(x/ln2) split off, a degree-6 polynomial on the remainder, scaled by 2^n in two steps
 *  so that results down to the subnormal range stay exact. +inf/-inf/NaN map to +inf/0/NaN. */
LMD_INLINE vf vexp(vf x) {
  const vf hi = splat(88.72283935546875f), lo = splat(-103.97208404541015625f);
  vf xc = select(x > hi, hi, x);
  xc = select(xc < lo, lo, xc);
  vf t = xc * splat(1.44269504088896341f);
  const vf magic = splat(12582912.0f);  // 1.5·2^23: adding and subtracting it rounds to an integer
  vf nf = (t + magic) - magic;
  nf = select(nf == nf, nf, vf{});  // NaN → 0 so the integer conversion below stays defined
  vf r = xc - nf * splat(0.693359375f);
  r = r - nf * splat(-2.12194440e-4f);
  vf p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * (r * r) + r + splat(1.0f);
  const vi n = __builtin_convertvector(nf, vi);
  const vi n1 = n >> 1;  // arithmetic shift: floor(n/2)
  const vi n2 = n - n1;
  const vf s1 = as_f((n1 + 127) << 23), s2 = as_f((n2 + 127) << 23);
  vf y = (p * s1) * s2;
  y = select(x > hi, splat(__builtin_inff()), y);
  y = select(x < lo, vf{}, y);
  return y;
}

/** ln x: x = m·2^e with m in [√½, √2), ln(m) by a degree-9 polynomial in m − 1 (Cephes logf, ≤ 1 ulp
 *  typical), + e·ln 2 in two parts. Subnormals are rescaled first; 0 → −inf, x < 0 → NaN, inf → inf. */
LMD_INLINE vf vlog(vf x) {
  const vi sub = x < splat(1.17549435e-38f);
  const vf xs = select(sub, x * splat(33554432.0f), x);  // 2^25
  const vi bits = as_i(xs);
  vi e = ((bits >> 23) & splati(0xff)) - splati(126);
  e = e - (sub & splati(25));
  vf m = as_f((bits & splati(0x807fffff)) | splati(0x3f000000));  // [0.5, 1)
  const vi small = m < splat(0.707106781186547524f);
  e = e - (small & splati(1));
  m = select(small, m + m, m) - splat(1.0f);
  const vf fe = __builtin_convertvector(e, vf);
  const vf z = m * m;
  vf y = splat(7.0376836292e-2f);
  y = y * m + splat(-1.1514610310e-1f);
  y = y * m + splat(1.1676998740e-1f);
  y = y * m + splat(-1.2420140846e-1f);
  y = y * m + splat(1.4249322787e-1f);
  y = y * m + splat(-1.6668057665e-1f);
  y = y * m + splat(2.0000714765e-1f);
  y = y * m + splat(-2.4999993993e-1f);
  y = y * m + splat(3.3333331174e-1f);
  y = y * m * z;
  y = y + fe * splat(-2.12194440e-4f);
  y = y - splat(0.5f) * z;
  vf r = m + y;
  r = r + fe * splat(0.693359375f);
  r = select(x == splat(__builtin_inff()), x, r);
  r = select(x == vf{}, splat(-__builtin_inff()), r);
  r = select((x < vf{}) | (x != x), splat(__builtin_nanf("")), r);
  return r;
}

/** tanh: odd polynomial below 0.625, 1 − 2/(e^{2|x|} + 1) above, with the sign of x restored. */
LMD_INLINE vf vtanh(vf x) {
  const vi sign = as_i(x) & splati(INT32_MIN);
  const vf ax = as_f(as_i(x) & splati(INT32_MAX));
  const vf z = x * x;
  vf p = splat(-5.70498872745e-3f);
  p = p * z + splat(2.06390887954e-2f);
  p = p * z + splat(-5.37397155531e-2f);
  p = p * z + splat(1.33314422036e-1f);
  p = p * z + splat(-3.33332819422e-1f);
  const vf small = p * z * x + x;
  const vf e = vexp(ax + ax);
  const vf big = as_f(as_i(splat(1.0f) - splat(2.0f) / (e + splat(1.0f))) | sign);
  return select(ax < splat(0.625f), small, big);
}

/** σ(x) as 1/(1 + e^−|x|) or e^−|x|/(1 + e^−|x|): e^−|x| never overflows, so σ(x) for x ≪ 0 keeps
 *  its relative accuracy down to the subnormals instead of collapsing to 0 at x ≈ −88.7. */
LMD_INLINE vf vsigmoid(vf x) {
  const vf e = vexp(-as_f(as_i(x) & splati(INT32_MAX)));
  const vf r = splat(1.0f) / (splat(1.0f) + e);
  return select(x >= vf{}, r, e * r);
}

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluC = 0.044715;

/**
 * 2u = 2·√(2/π)(x + 0.044715x³) as an unevaluated float sum hi + lo, computed in double: e^(2u) is
 * sensitive to the absolute error of its argument (δe/e = δ(2u)), which in float grows like |u|·u.
 */
LMD_INLINE void gelu_2u(vf x, vf* hi, vf* lo) {
  const auto arg = [](vfh xh, vfh* h, vfh* l) {
    const vdh xd = widen(xh);
    const vdh t = (2.0 * kSqrt2OverPi) * (xd + kGeluC * xd * xd * xd);
    *h = narrow(t);
    *l = narrow(t - widen(*h));
  };
  vfh h0, l0, h1, l1;
  arg(lower(x), &h0, &l0);
  arg(upper(x), &h1, &l1);
  *hi = join(h0, h1);
  *lo = select(*hi - *hi == vf{}, join(l0, l1), vf{});  // hi = ±inf (x = ±inf or 2u beyond float): no correction
}

/** σ(hi + lo) for |lo| ≪ |hi| ulp-sized: e^−|hi+lo| ≈ e^−|hi|·(1 ∓ lo). */
LMD_INLINE vf vsigmoid2(vf hi, vf lo) {
  const vi neg = as_i(hi) & splati(INT32_MIN);
  vf e = vexp(-as_f(as_i(hi) & splati(INT32_MAX)));
  e = e * (splat(1.0f) - as_f(as_i(lo) ^ neg));
  const vf r = splat(1.0f) / (splat(1.0f) + e);
  return select(hi >= vf{}, r, e * r);
}

LMD_INLINE vf unary_vec(int op, vf x) {
  switch (op) {
    case kNeg: return -x;
    case kExp: return vexp(x);
    case kTanh: return vtanh(x);
    case kSigmoid: return vsigmoid(x);
    case kRelu: return select(x > vf{}, x, vf{});
    case kSilu: return x * vsigmoid(x);
    case kGelu: {  // 0.5·x·(1 + tanh u) = x·σ(2u)
      vf hi, lo;
      gelu_2u(x, &hi, &lo);
      return x * vsigmoid2(hi, lo);
    }
    case kAbs: return as_f(as_i(x) & splati(INT32_MAX));
    case kLog: return vlog(x);
    default: return x;
  }
}

template <int OP>
void unary_loop(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) storeu(out + i, unary_vec(OP, loadu(x + i)));
  if (i < n) store_partial(out + i, unary_vec(OP, load_partial(x + i, n - i, 0.0f)), n - i);
}

void unary(int op, const float* x, float* out, int64_t n) {
  switch (op) {
    case kNeg: return unary_loop<kNeg>(x, out, n);
    case kExp: return unary_loop<kExp>(x, out, n);
    case kTanh: return unary_loop<kTanh>(x, out, n);
    case kSigmoid: return unary_loop<kSigmoid>(x, out, n);
    case kRelu: return unary_loop<kRelu>(x, out, n);
    case kSilu: return unary_loop<kSilu>(x, out, n);
    case kGelu: return unary_loop<kGelu>(x, out, n);
    case kAbs: return unary_loop<kAbs>(x, out, n);
    case kSqrt:
      for (int64_t i = 0; i < n; ++i) out[i] = __builtin_sqrtf(x[i]);
      return;
    case kLog: return unary_loop<kLog>(x, out, n);
    default: return;
  }
}

LMD_INLINE vf unary_grad_vec(int op, vf x, vf y, vf gy) {
  switch (op) {
    case kNeg: return -gy;
    case kExp: return gy * y;
    case kLog: return gy / x;
    case kSqrt: return (splat(0.5f) * gy) / y;
    case kTanh: return gy * ((splat(1.0f) - y) * (splat(1.0f) + y));  // no cancellation near |y| = 1
    case kSigmoid: return gy * y * (splat(1.0f) - y);
    case kRelu: return select(x > vf{}, gy, vf{});
    case kAbs: return select(x > vf{}, gy, select(x < vf{}, -gy, vf{}));
    case kSilu: {
      const vf s = vsigmoid(x);
      return gy * s * (splat(1.0f) + x * (splat(1.0f) - s));
    }
    case kGelu: {  // d/dx x·σ(2u) = σ + 2x·σ(1−σ)·u'   (equal to the reference's tanh form)
      vf hi, lo;
      gelu_2u(x, &hi, &lo);
      const vf s = vsigmoid2(hi, lo);
      const vf du = splat(static_cast<float>(kSqrt2OverPi)) * (splat(1.0f) + splat(static_cast<float>(3.0 * kGeluC)) * x * x);
      const vf t = s * (splat(1.0f) - s);
      // t is 0 in both tails, where x·u' may overflow: the term is 0 there, NaN only for x = ±inf
      const vf term = select((t == vf{}) & (x - x == vf{}), vf{}, splat(2.0f) * x * t * du);
      return gy * (s + term);
    }
    default: return gy;
  }
}

template <int OP>
void unary_grad_loop(const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) storeu(gx + i, unary_grad_vec(OP, loadu(x + i), loadu(y + i), loadu(gy + i)));
  if (i < n) {
    const int64_t r = n - i;
    store_partial(gx + i, unary_grad_vec(OP, load_partial(x + i, r, 1.0f), load_partial(y + i, r, 1.0f),
                                         load_partial(gy + i, r, 0.0f)), r);
  }
}

void unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  switch (op) {
    case kNeg: return unary_grad_loop<kNeg>(x, y, gy, gx, n);
    case kExp: return unary_grad_loop<kExp>(x, y, gy, gx, n);
    case kLog: return unary_grad_loop<kLog>(x, y, gy, gx, n);
    case kSqrt: return unary_grad_loop<kSqrt>(x, y, gy, gx, n);
    case kTanh: return unary_grad_loop<kTanh>(x, y, gy, gx, n);
    case kSigmoid: return unary_grad_loop<kSigmoid>(x, y, gy, gx, n);
    case kRelu: return unary_grad_loop<kRelu>(x, y, gy, gx, n);
    case kAbs: return unary_grad_loop<kAbs>(x, y, gy, gx, n);
    case kSilu: return unary_grad_loop<kSilu>(x, y, gy, gx, n);
    case kGelu: return unary_grad_loop<kGelu>(x, y, gy, gx, n);
    default: return;
  }
}

/** Σ of float lanes accumulated in double: two register-wide double accumulators. */
struct DoubleSum {
  vdh a = vdh{}, b = vdh{};
  LMD_INLINE void add(vf v) {
    a += widen(lower(v));
    b += widen(upper(v));
  }
  LMD_INLINE void add_product(vf u, vf v) {
    a += widen(lower(u)) * widen(lower(v));
    b += widen(upper(u)) * widen(upper(v));
  }
  LMD_INLINE double total() const {
    const vdh c = a + b;
    double s = 0;
    for (int i = 0; i < W / 2; ++i) s += c[i];
    return s;
  }
};

/** Max of a row ignoring NaN, as the reference's `x > mx` does. */
LMD_INLINE float row_max(const float* x, int64_t cols) {
  vf mv = splat(-__builtin_inff());
  int64_t j = 0;
  for (; j + W <= cols; j += W) {
    const vf v = loadu(x + j);
    mv = select(v > mv, v, mv);
  }
  if (j < cols) {
    const vf v = load_partial(x + j, cols - j, -__builtin_inff());
    mv = select(v > mv, v, mv);
  }
  float mx = -__builtin_inff();
  for (int i = 0; i < W; ++i)
    if (mv[i] > mx) mx = mv[i];
  return mx;
}

void softmax(const float* x, float* out, int64_t r0, int64_t r1, int64_t cols, bool log) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* orow = out + r * cols;
    float mx = row_max(xr, cols);
    if (mx == -__builtin_inff()) mx = 0.0f;  // fully masked row: NaN-free shift, as the reference
    const vf m = splat(mx);
    // Σ e^(x − max) in double lanes; the padded tail is −inf → contributes 0. Non-log keeps e in out.
    DoubleSum acc;
    int64_t j = 0;
    for (; j + W <= cols; j += W) {
      const vf e = vexp(loadu(xr + j) - m);
      if (!log) storeu(orow + j, e);
      acc.add(e);
    }
    if (j < cols) {
      const vf e = vexp(load_partial(xr + j, cols - j, -__builtin_inff()) - m);
      if (!log) store_partial(orow + j, e, cols - j);
      acc.add(e);
    }
    const double s = acc.total();
    if (log) {  // x − lse with lse carried as hi + lo, so outputs near 0 keep their relative accuracy
      const double lse = static_cast<double>(mx) + ::log(s);
      const float hi = static_cast<float>(lse), lo = static_cast<float>(lse - static_cast<double>(hi));
      const vf vh = splat(hi), vl = splat(lo);
      for (j = 0; j + W <= cols; j += W) storeu(orow + j, (loadu(xr + j) - vh) - vl);
      for (; j < cols; ++j) orow[j] = (xr[j] - hi) - lo;
    } else {
      const float inv = static_cast<float>(1.0 / s);
      const vf vi = splat(inv);
      for (j = 0; j + W <= cols; j += W) storeu(orow + j, loadu(orow + j) * vi);
      for (; j < cols; ++j) orow[j] *= inv;
    }
  }
}

void softmax_backward(const float* y, const float* gy, float* gx, int64_t r0, int64_t r1, int64_t cols, bool log) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* yr = y + r * cols;
    const float* gr = gy + r * cols;
    float* xr = gx + r * cols;
    DoubleSum acc;
    int64_t j = 0;
    if (log) {  // gx = gy − e^y · Σ gy
      for (; j + W <= cols; j += W) acc.add(loadu(gr + j));
      double s = acc.total();
      for (; j < cols; ++j) s += gr[j];
      const vf sv = splat(static_cast<float>(s));
      for (j = 0; j + W <= cols; j += W) storeu(xr + j, loadu(gr + j) - vexp(loadu(yr + j)) * sv);
      if (j < cols) {
        const int64_t t = cols - j;
        store_partial(xr + j, load_partial(gr + j, t, 0.0f) - vexp(load_partial(yr + j, t, 0.0f)) * sv, t);
      }
    } else {  // gx = y ⊙ (gy − Σ gy ⊙ y), the sum of products formed in double
      for (; j + W <= cols; j += W) acc.add_product(loadu(gr + j), loadu(yr + j));
      double s = acc.total();
      for (; j < cols; ++j) s += static_cast<double>(gr[j]) * yr[j];
      const vf sv = splat(static_cast<float>(s));
      for (j = 0; j + W <= cols; j += W) storeu(xr + j, loadu(yr + j) * (loadu(gr + j) - sv));
      for (; j < cols; ++j) xr[j] = yr[j] * (gr[j] - static_cast<float>(s));
    }
  }
}

}  // namespace
}  // namespace lmd
