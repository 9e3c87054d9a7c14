#include "fused.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <vector>

#include "pool.h"

namespace lmd {
namespace {

// Below roughly this many bytes touched a kernel stays on the calling thread (pool wake-up ≈ 10–30 µs).
constexpr int64_t kParallelElems = 1 << 15;
// Norm backward: rows are split into at most this many parts of at least this many elements.
constexpr int64_t kMaxNormParts = 32;
constexpr int64_t kNormChunkElems = 1 << 13;

int64_t parts_for(int64_t rows, int64_t elems) {
  if (elems < kParallelElems || rows < 2) return 1;
  return std::min<int64_t>(rows, balanced_parts(elems, kParallelElems / 2));
}

/** One single-threaded GEMM on contiguous operands through the table's blocked tile kernel. */
void mm(const KernelTable& kt, const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool ta,
        bool tb, bool acc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!acc) std::memset(c, 0, sizeof(float) * static_cast<size_t>(m * n));
    return;
  }
  // attention's internal GEMMs (scores, P·V and their gradients) stay fp32 even under bf16 autocast
  const GemmArgs g{a, b, c, 1, m, n, k, ta, tb, 0, 0, acc, false};
  const int64_t kc = std::min<int64_t>(kt.kc, k);
  const int64_t nc = std::min<int64_t>(kt.nc, (n + kt.nr - 1) / kt.nr * kt.nr);
  const int64_t mc = std::min<int64_t>(kt.mc, (m + kt.mr - 1) / kt.mr * kt.mr);
  float* pa = scratch(0, static_cast<size_t>(mc * kc));
  float* pb = scratch(1, static_cast<size_t>(kc * nc));
  kt.gemm_tile(g, 0, 0, m, 0, n, pa, pb);
}

/** Query rows per block: a block's score tile (rows × S floats) stays within ~budget floats. */
int64_t block_rows(int64_t T, int64_t S, int64_t budget) {
  const int64_t r = std::max<int64_t>(8, budget / std::max<int64_t>(S, 1));
  return std::max<int64_t>(1, std::min(T, r));
}

/** Keys visible to the last row of the query block [t0, t1): 0..n−1. */
int64_t visible(const AttnDims& d, int64_t t1) {
  if (!d.causal) return d.S;
  return std::max<int64_t>(0, std::min(d.S, d.S - d.T + t1));
}

}  // namespace

void norm_forward(const KernelTable& kt, const float* x, const float* w, const float* b, float* out, float* mean,
                  float* rstd, int64_t rows, int64_t cols, double eps, bool rms) {
  struct Ctx { const KernelTable* kt; const float *x, *w, *b; float *out, *mean, *rstd; int64_t rows, cols, parts; double eps; bool rms; } c{
      &kt, x, w, b, out, mean, rstd, rows, cols, parts_for(rows, rows * cols), eps, rms};
  pool_run(static_cast<long>(c.parts), [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    c.kt->norm_forward(c.x, c.w, c.b, c.out, c.mean, c.rstd, c.rows * t / c.parts, c.rows * (t + 1) / c.parts, c.cols, c.eps, c.rms);
  }, &c);
}

void norm_backward(const KernelTable& kt, const float* x, const float* w, const float* mean, const float* rstd,
                   const float* gy, float* gx, float* gw, float* gb, int64_t rows, int64_t cols, bool rms) {
  // The row partition depends on the shape only (not on the thread count), so the float64 partial
  // column sums and their fixed-order reduction give the same gw/gb on any number of threads.
  const int64_t parts = std::min<int64_t>({rows, kMaxNormParts, std::max<int64_t>(1, rows * cols / kNormChunkElems)});
  const int64_t per = cols * (gb ? 2 : 1);
  std::vector<double> acc(static_cast<size_t>(parts * per), 0.0);
  struct Ctx { const KernelTable* kt; const float *x, *w, *mean, *rstd, *gy; float* gx; double* acc; int64_t rows, cols, parts, per; bool rms, hasB; } c{
      &kt, x, w, mean, rstd, gy, gx, acc.data(), rows, cols, parts, per, rms, gb != nullptr};
  const TaskFn fn = [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    double* a = c.acc + t * c.per;
    c.kt->norm_backward(c.x, c.w, c.mean, c.rstd, c.gy, c.gx, c.rows * t / c.parts, c.rows * (t + 1) / c.parts, c.cols,
                        c.rms, a, c.hasB ? a + c.cols : nullptr);
  };
  if (rows * cols >= kParallelElems) pool_run(static_cast<long>(parts), fn, &c);
  else for (long t = 0; t < parts; ++t) fn(&c, t);
  for (int64_t j = 0; j < cols; ++j) {
    double sw = 0, sb = 0;
    for (int64_t t = 0; t < parts; ++t) {
      sw += acc[t * per + j];
      if (gb) sb += acc[t * per + cols + j];
    }
    gw[j] = static_cast<float>(static_cast<double>(gw[j]) + sw);
    if (gb) gb[j] = static_cast<float>(static_cast<double>(gb[j]) + sb);
  }
}

void adamw(const KernelTable& kt, float* w, const float* g, float* m, float* v, int64_t n, const AdamParams& a) {
  const int64_t parts = n < 4 * kParallelElems ? 1 : balanced_parts(n, kParallelElems / 2);
  struct Ctx { const KernelTable* kt; float* w; const float* g; float *m, *v; int64_t n, parts; const AdamParams* a; } c{&kt, w, g, m, v, n, parts, &a};
  pool_run(static_cast<long>(parts), [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    // 64-float aligned chunk starts
    const Chunks ch{c.n, c.parts};
    const int64_t b = ch.begin(t), e = ch.end(t);
    if (e > b) c.kt->adamw(c.w + b, c.g ? c.g + b : nullptr, c.m + b, c.v + b, e - b, *c.a);
  }, &c);
}

namespace {

struct AttnCtx {
  const KernelTable* kt;
  AttnDims d;
  const float *q, *k, *v, *out, *lse, *gout;
  float *o, *l, *gq, *gk, *gv;
  std::atomic<bool> failed{false};
};

/** Forward tasks are (batch, head, block of query rows): independent outputs, balanced causal work. */
int64_t fwd_block_rows(const AttnDims& d) { return block_rows(d.T, d.S, 1 << 12); }

/** Start of row t of head h in batch b under layout L. */
inline int64_t at(const HeadLayout& L, int64_t b, int64_t h, int64_t t) { return L.off + b * L.sb + h * L.sh + t * L.st; }

/**
 * `rows` consecutive rows (D floats each) of a head as one contiguous block: the source itself when its
 * rows are dense, else a copy in scratch slot `slot` (a few KiB, in cache — far cheaper than permuting
 * the whole tensor into [B, H, T, D] beforehand).
 */
const float* rows_in(const float* base, const HeadLayout& L, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t D, int slot) {
  const float* src = base + at(L, b, h, t0);
  if (L.st == D || rows <= 1) return src;
  float* dst = scratch(slot, static_cast<size_t>(rows * D));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * D, src + r * L.st, sizeof(float) * static_cast<size_t>(D));
  return dst;
}

/** Where a kernel writes `rows` rows of a head: in place when dense, else scratch (then rows_out). */
float* rows_dst(float* base, const HeadLayout& L, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t D, int slot) {
  if (L.st == D || rows <= 1) return base + at(L, b, h, t0);
  return scratch(slot, static_cast<size_t>(rows * D));
}
void rows_out(float* base, const HeadLayout& L, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t D, const float* tmp) {
  float* dst = base + at(L, b, h, t0);
  if (tmp == dst) return;
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * L.st, tmp + r * D, sizeof(float) * static_cast<size_t>(D));
}

// Scratch slots: 0/1 GEMM packing (mm), 2/3 score tiles, 4.. head rows copied in or out.
void attn_fwd_task(void* p, long task) {
  AttnCtx& c = *static_cast<AttnCtx*>(p);
  const AttnDims& d = c.d;
  const KernelTable& kt = *c.kt;
  try {
    const int64_t tb = fwd_block_rows(d), nblk = (d.T + tb - 1) / tb;
    const int64_t bh = task / nblk, t0 = (task % nblk) * tb;
    const int64_t b = bh / d.H, h = bh % d.H, kvh = h / (d.H / d.Hkv);
    float* lh = c.l + (b * d.H + h) * d.T;
    const int64_t t1 = std::min(d.T, t0 + tb), rows = t1 - t0, n = visible(d, t1);
    float* ob = rows_dst(c.o, d.o, b, h, t0, rows, d.D, 4);
    if (n == 0) {
      for (int64_t r = 0; r < rows; ++r) std::memset(ob + r * d.D, 0, sizeof(float) * static_cast<size_t>(d.D));
      rows_out(c.o, d.o, b, h, t0, rows, d.D, ob);
      for (int64_t t = t0; t < t1; ++t) lh[t] = -__builtin_inff();
      return;
    }
    const float* qb = rows_in(c.q, d.q, b, h, t0, rows, d.D, 5);
    const float* kh = rows_in(c.k, d.k, b, kvh, 0, n, d.D, 6);
    const float* vh = rows_in(c.v, d.v, b, kvh, 0, n, d.D, 7);
    float* pbuf = scratch(2, static_cast<size_t>(tb * std::max<int64_t>(d.S, 1)));
    mm(kt, qb, kh, pbuf, rows, n, d.D, false, true, false);  // scores [rows, n]
    kt.attn_probs(pbuf, rows, n, d.causal ? d.S - d.T + t0 + 1 : n + rows, d.scale, nullptr, lh + t0);
    mm(kt, pbuf, vh, ob, rows, d.D, n, false, false, false);
    rows_out(c.o, d.o, b, h, t0, rows, d.D, ob);
  } catch (...) {
    c.failed.store(true);
  }
}

void attn_bwd_task(void* p, long task) {
  AttnCtx& c = *static_cast<AttnCtx*>(p);
  const AttnDims& d = c.d;
  const KernelTable& kt = *c.kt;
  try {
    const int64_t b = task / d.Hkv, kvh = task % d.Hkv, rep = d.H / d.Hkv;
    const size_t kv_floats = static_cast<size_t>(d.S * d.D);
    const float* kh = rows_in(c.k, d.k, b, kvh, 0, d.S, d.D, 4);
    const float* vh = rows_in(c.v, d.v, b, kvh, 0, d.S, d.D, 5);
    // dK, dV accumulate over the group's query heads and row blocks: dense per task, written out once
    float* gkh = rows_dst(c.gk, d.k, b, kvh, 0, d.S, d.D, 6);
    float* gvh = rows_dst(c.gv, d.v, b, kvh, 0, d.S, d.D, 7);
    std::memset(gkh, 0, sizeof(float) * kv_floats);
    std::memset(gvh, 0, sizeof(float) * kv_floats);
    // two tiles (P and dP) of tb × S: together at most about one [T, S] tile
    const int64_t tb = block_rows(std::max<int64_t>(1, (d.T + 1) / 2), d.S, 1 << 12);
    const size_t tile = static_cast<size_t>(tb * std::max<int64_t>(d.S, 1));
    float* pbuf = scratch(2, tile);
    float* dpbuf = scratch(3, tile);
    for (int64_t h = kvh * rep; h < (kvh + 1) * rep; ++h) {
      const float* lh = c.lse + (b * d.H + h) * d.T;
      for (int64_t t0 = 0; t0 < d.T; t0 += tb) {
        const int64_t t1 = std::min(d.T, t0 + tb), rows = t1 - t0, n = visible(d, t1);
        float* gqb = rows_dst(c.gq, d.q, b, h, t0, rows, d.D, 8);
        if (n == 0) {
          for (int64_t r = 0; r < rows; ++r) std::memset(gqb + r * d.D, 0, sizeof(float) * static_cast<size_t>(d.D));
          rows_out(c.gq, d.q, b, h, t0, rows, d.D, gqb);
          continue;
        }
        const float* qb = rows_in(c.q, d.q, b, h, t0, rows, d.D, 9);
        const float* gob = rows_in(c.gout, d.o, b, h, t0, rows, d.D, 10);
        const float* ob = rows_in(c.out, d.o, b, h, t0, rows, d.D, 11);
        mm(kt, qb, kh, pbuf, rows, n, d.D, false, true, false);
        kt.attn_probs(pbuf, rows, n, d.causal ? d.S - d.T + t0 + 1 : n + rows, d.scale, lh + t0, nullptr);
        mm(kt, pbuf, gob, gvh, n, d.D, rows, true, false, true);       // dV += Pᵀ·dO
        mm(kt, gob, vh, dpbuf, rows, n, d.D, false, true, false);      // dP = dO·vᵀ
        kt.attn_ds(pbuf, dpbuf, gob, ob, rows, n, d.D, d.scale);
        mm(kt, dpbuf, kh, gqb, rows, d.D, n, false, false, false);     // dQ = dS·k
        mm(kt, dpbuf, qb, gkh, n, d.D, rows, true, false, true);       // dK += dSᵀ·q
        rows_out(c.gq, d.q, b, h, t0, rows, d.D, gqb);
      }
    }
    rows_out(c.gk, d.k, b, kvh, 0, d.S, d.D, gkh);
    rows_out(c.gv, d.v, b, kvh, 0, d.S, d.D, gvh);
  } catch (...) {
    c.failed.store(true);
  }
}

void run_attn(AttnCtx& c, long tasks, TaskFn fn) {
  const AttnDims& d = c.d;
  const double work = static_cast<double>(d.B) * d.H * d.T * d.S * (d.D + 8);
  if (tasks > 1 && work >= 2.0e5) pool_run(tasks, fn, &c);
  else for (long t = 0; t < tasks; ++t) fn(&c, t);
  if (c.failed.load()) throw std::bad_alloc();
}

}  // namespace

void attention_forward(const KernelTable& kt, const float* q, const float* k, const float* v, float* out, float* lse,
                       const AttnDims& d) {
  if (d.B * d.H * d.T == 0) return;
  AttnCtx c;
  c.kt = &kt;
  c.d = d;
  c.q = q; c.k = k; c.v = v; c.o = out; c.l = lse;
  const int64_t tb = fwd_block_rows(d);
  run_attn(c, static_cast<long>(d.B * d.H * ((d.T + tb - 1) / tb)), attn_fwd_task);
}

void attention_backward(const KernelTable& kt, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const float* gout, float* gq, float* gk, float* gv, const AttnDims& d) {
  if (d.B * d.Hkv == 0) return;
  AttnCtx c;
  c.kt = &kt;
  c.d = d;
  c.q = q; c.k = k; c.v = v; c.out = out; c.lse = lse; c.gout = gout;
  c.gq = gq; c.gk = gk; c.gv = gv;
  run_attn(c, static_cast<long>(d.B * d.Hkv), attn_bwd_task);
}

}  // namespace lmd
