#include "strided.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "pool.h"

namespace lmd {
namespace {

// Below this many elements a strided op runs on the calling thread (the pool wake-up costs more).
constexpr int64_t kParallelElems = 1 << 17;

/** Shape and per-operand strides after coalescing; rank >= 1. */
struct Coalesced {
  Dims shape;
  std::vector<Dims> strides;
  int64_t outer() const {
    int64_t o = 1;
    for (size_t d = 0; d + 1 < shape.size(); ++d) o *= shape[d];
    return o;
  }
  int64_t len() const { return shape.back(); }
};

Coalesced coalesce(const Dims& shape, const std::vector<const Dims*>& strides) {
  Coalesced c;
  c.strides.resize(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !c.shape.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k) merge = c.strides[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      c.shape.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) c.strides[k].back() = (*strides[k])[d];
    } else {
      c.shape.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) c.strides[k].push_back((*strides[k])[d]);
    }
  }
  if (c.shape.empty()) {
    c.shape.push_back(1);
    for (auto& s : c.strides) s.push_back(0);
  }
  return c;
}

/**
 * Calls row(off, len, inner) for outer rows [r0, r1), where off[k] is operand k's start offset
 * (base[k] plus the outer index's offset) and inner[k] its innermost stride.
 */
template <int N, typename Row>
void for_rows(const Coalesced& c, const int64_t* base, int64_t r0, int64_t r1, Row row) {
  if (r0 >= r1) return;
  const int rank = static_cast<int>(c.shape.size());
  int64_t idx[64];
  int64_t off[N], inner[N];
  for (int k = 0; k < N; ++k) {
    off[k] = base[k];
    inner[k] = c.strides[k][rank - 1];
  }
  int64_t rem = r0;
  for (int d = rank - 2; d >= 0; --d) {
    idx[d] = rem % c.shape[d];
    rem /= c.shape[d];
    for (int k = 0; k < N; ++k) off[k] += idx[d] * c.strides[k][d];
  }
  const int64_t len = c.len();
  for (int64_t r = r0; r < r1; ++r) {
    row(off, len, inner);
    for (int d = rank - 2; d >= 0; --d) {
      for (int k = 0; k < N; ++k) off[k] += c.strides[k][d];
      if (++idx[d] < c.shape[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= c.strides[k][d] * c.shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * Runs rows [0, outer) of `c`, split over the pool when there are enough elements: by rows when there
 * are several per thread, else by column ranges of each row (a contiguous same-shape op coalesces to a
 * single long row). Only for ops whose rows and columns write disjoint outputs (elementwise, copies).
 */
template <int N, typename Row>
void run_rows(const Coalesced& c, const int64_t* base, Row row) {
  const int64_t outer = c.outer(), len = c.len(), total = outer * len;
  const int threads = pool_threads();
  if (total < kParallelElems || threads < 2) return for_rows<N>(c, base, 0, outer, row);
  struct Ctx {
    const Coalesced* c;
    const int64_t* base;
    const Row* row;
    int64_t outer, parts, len, col_parts;
  } ctx{&c, base, &row, outer, 0, len, 1};
  if (outer >= 2 * threads) {
    ctx.parts = std::min<int64_t>(outer, threads * 4);
    pool_run(static_cast<long>(ctx.parts), [](void* p, long t) {
      const Ctx& x = *static_cast<const Ctx*>(p);
      for_rows<N>(*x.c, x.base, x.outer * t / x.parts, x.outer * (t + 1) / x.parts, *x.row);
    }, &ctx);
    return;
  }
  ctx.col_parts = std::max<int64_t>(1, (threads * 4 + outer - 1) / outer);
  ctx.parts = outer * ctx.col_parts;
  pool_run(static_cast<long>(ctx.parts), [](void* p, long t) {
    const Ctx& x = *static_cast<const Ctx*>(p);
    const int64_t r = t / x.col_parts, q = t % x.col_parts;
    // 64-element aligned column ranges
    const Chunks cols{x.len, x.col_parts};
    const int64_t j0 = cols.begin(q), j1 = cols.end(q);
    if (j1 <= j0) return;
    for_rows<N>(*x.c, x.base, r, r + 1, [&](const int64_t* off, int64_t, const int64_t* in) {
      int64_t o[N];
      for (int k = 0; k < N; ++k) o[k] = off[k] + j0 * in[k];
      (*x.row)(o, j1 - j0, in);
    });
  }, &ctx);
}

/** Math.pow semantics: unlike C's pow, pow(±1, ±inf) and pow(1, NaN) are NaN in JavaScript. */
inline float js_pow(float a, float b) {
  if (std::isnan(b) || (std::isinf(b) && std::fabs(a) == 1.0f)) return std::numeric_limits<float>::quiet_NaN();
  return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
}

template <int OP>
inline float apply(float a, float b) {
  switch (OP) {
    case kAdd: return a + b;
    case kSub: return a - b;
    case kMul: return a * b;
    case kDiv: return a / b;
    case kMaximum: return a >= b ? a : b;  // ties and NaN in a pick b, as the reference does
    case kPow: return js_pow(a, b);
    case kEq: return a == b ? 1.0f : 0.0f;
    case kLt: return a < b ? 1.0f : 0.0f;
    case kGt: return a > b ? 1.0f : 0.0f;
  }
  return 0.0f;
}

template <int OP>
void binary_op(const float* a, const float* b, float* out, const Coalesced& c) {
  const int64_t base[3] = {0, 0, 0};
  run_rows<3>(c, base, [=](const int64_t* off, int64_t len, const int64_t* in) {
    const float* __restrict pa = a + off[0];
    const float* __restrict pb = b + off[1];
    float* __restrict po = out + off[2];
    const int64_t sa = in[0], sb = in[1], so = in[2];
    if (so == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < len; ++i) po[i] = apply<OP>(pa[i], pb[i]);
    } else if (so == 1 && sa == 1 && sb == 0) {
      const float vb = *pb;
      for (int64_t i = 0; i < len; ++i) po[i] = apply<OP>(pa[i], vb);
    } else if (so == 1 && sa == 0 && sb == 1) {
      const float va = *pa;
      for (int64_t i = 0; i < len; ++i) po[i] = apply<OP>(va, pb[i]);
    } else {
      for (int64_t i = 0; i < len; ++i) po[i * so] = apply<OP>(pa[i * sa], pb[i * sb]);
    }
  });
}

}  // namespace

Dims contiguous_strides(const Dims& shape) {
  Dims s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

void offset_range(const Dims& shape, const Dims& strides, int64_t base, int64_t* lo, int64_t* hi) {
  *lo = *hi = base;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] <= 0) continue;
    const int64_t span = (shape[d] - 1) * strides[d];
    if (span < 0) *lo += span; else *hi += span;
  }
}

void binary(int op, const float* a, const Dims& as, const float* b, const Dims& bs, float* out, const Dims& shape) {
  const Dims os = contiguous_strides(shape);
  const Coalesced c = coalesce(shape, {&as, &bs, &os});
  switch (op) {
    case kAdd: return binary_op<kAdd>(a, b, out, c);
    case kSub: return binary_op<kSub>(a, b, out, c);
    case kMul: return binary_op<kMul>(a, b, out, c);
    case kDiv: return binary_op<kDiv>(a, b, out, c);
    case kMaximum: return binary_op<kMaximum>(a, b, out, c);
    case kPow: return binary_op<kPow>(a, b, out, c);
    case kEq: return binary_op<kEq>(a, b, out, c);
    case kLt: return binary_op<kLt>(a, b, out, c);
    case kGt: return binary_op<kGt>(a, b, out, c);
  }
}

void where(const float* cond, const Dims& cs, const float* a, const Dims& as, const float* b, const Dims& bs,
           float* out, const Dims& shape) {
  const Dims os = contiguous_strides(shape);
  const Coalesced c = coalesce(shape, {&cs, &as, &bs, &os});
  const int64_t base[4] = {0, 0, 0, 0};
  run_rows<4>(c, base, [=](const int64_t* off, int64_t len, const int64_t* in) {
    const float* pc = cond + off[0];
    const float* pa = a + off[1];
    const float* pb = b + off[2];
    float* po = out + off[3];
    if (in[0] == 1 && in[1] == 1 && in[2] == 1 && in[3] == 1) {
      for (int64_t i = 0; i < len; ++i) po[i] = pc[i] != 0.0f ? pa[i] : pb[i];
    } else {
      for (int64_t i = 0; i < len; ++i) po[i * in[3]] = pc[i * in[0]] != 0.0f ? pa[i * in[1]] : pb[i * in[2]];
    }
  });
}

void reduce(int op, const float* x, const Dims& shape, float* out, int64_t out_len, const Dims& out_strides) {
  // float64 accumulators, rounded once at the end, as the reference does.
  std::vector<double> acc(static_cast<size_t>(out_len), op == kSum ? 0.0 : -std::numeric_limits<double>::infinity());
  double* ac = acc.data();
  const Dims xs = contiguous_strides(shape);
  const Coalesced c = coalesce(shape, {&xs, &out_strides});
  const int64_t base[2] = {0, 0};
  const auto reduce_row = [=](const int64_t* off, int64_t len, const int64_t* in) {
    const float* px = x + off[0];
    const int64_t sx = in[0], so = in[1];
    double* po = ac + off[1];
    if (so == 0 && op == kSum) {
      double s[4] = {0, 0, 0, 0};  // four chains hide the add latency; the order change is ≪ float ulp
      int64_t i = 0;
      if (sx == 1) {
        for (; i + 4 <= len; i += 4) {
          s[0] += px[i]; s[1] += px[i + 1]; s[2] += px[i + 2]; s[3] += px[i + 3];
        }
      }
      double t = (s[0] + s[1]) + (s[2] + s[3]);
      for (; i < len; ++i) t += px[i * sx];
      *po += t;
    } else if (so == 0) {
      double s = *po;
      for (int64_t i = 0; i < len; ++i) {
        const double v = px[i * sx];
        if (v > s || v != v) s = v;  // NaN propagates
      }
      *po = s;
    } else if (op == kSum && so == 1 && sx == 1) {  // a kept contiguous axis (bias gradients): vectorised
      double* __restrict d = po;
      const float* __restrict f = px;
      for (int64_t i = 0; i < len; ++i) d[i] += static_cast<double>(f[i]);
    } else if (op == kSum) {
      for (int64_t i = 0; i < len; ++i) po[i * so] += px[i * sx];
    } else {
      for (int64_t i = 0; i < len; ++i) {
        const double v = px[i * sx];
        if (v > po[i * so] || v != v) po[i * so] = v;
      }
    }
  };
  // Rows may share output slots (e.g. a column sum), so rows are never split across threads. When the
  // innermost axis is kept (out stride ≠ 0, e.g. a bias gradient [rows, n] → [n]) each column range is
  // an independent reduction: split the columns, every column still summed over rows in order, so the
  // result is the same on any number of threads.
  const int threads = pool_threads();
  const int64_t len = c.len();
  if (c.strides[1].back() != 0 && threads > 1 && c.outer() * len >= kParallelElems && len >= 128) {
    struct Ctx { const Coalesced* c; const int64_t* base; const decltype(reduce_row)* row; int64_t len, parts; } ctx{&c, base, &reduce_row, len, std::min<int64_t>(threads * 4, len / 64)};
    pool_run(static_cast<long>(ctx.parts), [](void* p, long t) {
      const Ctx& x = *static_cast<const Ctx*>(p);
      const Chunks cols{x.len, x.parts};
      const int64_t j0 = cols.begin(t), j1 = cols.end(t);
      if (j1 <= j0) return;
      for_rows<2>(*x.c, x.base, 0, x.c->outer(), [&](const int64_t* off, int64_t, const int64_t* in) {
        const int64_t o[2] = {off[0] + j0 * in[0], off[1] + j0 * in[1]};
        (*x.row)(o, j1 - j0, in);
      });
    }, &ctx);
  } else {
    for_rows<2>(c, base, 0, c.outer(), reduce_row);
  }
  for (int64_t i = 0; i < out_len; ++i) out[i] = static_cast<float>(ac[i]);
}

void copy_strided(const float* x, int64_t offset, const Dims& strides, float* out, const Dims& shape) {
  const Dims os = contiguous_strides(shape);
  const Coalesced c = coalesce(shape, {&strides, &os});
  const int64_t base[2] = {offset, 0};
  run_rows<2>(c, base, [=](const int64_t* off, int64_t len, const int64_t* in) {
    const float* px = x + off[0];
    float* po = out + off[1];
    if (in[0] == 1 && in[1] == 1) std::memcpy(po, px, sizeof(float) * static_cast<size_t>(len));
    else for (int64_t i = 0; i < len; ++i) po[i * in[1]] = px[i * in[0]];
  });
}

void gather(const float* table, const int32_t* ids, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * d, table + static_cast<int64_t>(ids[i]) * d, sizeof(float) * static_cast<size_t>(d));
}

void scatter_add(const float* src, const int32_t* ids, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float* __restrict o = out + static_cast<int64_t>(ids[i]) * d;
    const float* __restrict s = src + i * d;
    for (int64_t j = 0; j < d; ++j) o[j] += s[j];
  }
}

}  // namespace lmd
