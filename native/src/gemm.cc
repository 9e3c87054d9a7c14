#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "pool.h"

namespace lmd {
namespace {

// Below this many flops a GEMM runs on the calling thread: waking the pool costs ~10–30 µs.
constexpr double kParallelFlops = 4.0e6;
// Relative cost of packing one operand element vs one output element's FMA per k (see gemm()).
constexpr double kPackWeight = 10.0;

struct Plan {
  const KernelTable* kt;
  const GemmArgs* g;
  int64_t mt, nt;            // tiles per matrix along m and n
  int64_t m_panels, n_panels; // micro-panels per matrix
  std::atomic<bool> failed{false};
};

/** Start of part `i` of `parts` when `panels` panels of `size` elements cover `total`. */
int64_t split(int64_t i, int64_t parts, int64_t panels, int64_t size, int64_t total) {
  const int64_t p = panels * i / parts;
  return std::min(total, p * size);
}

void run_tile(void* ctx, long task) {
  Plan& plan = *static_cast<Plan*>(ctx);
  const KernelTable& kt = *plan.kt;
  const GemmArgs& g = *plan.g;
  const int64_t per = plan.mt * plan.nt;
  const int64_t bi = task / per, t = task % per;
  const int64_t ti = t / plan.nt, tj = t % plan.nt;
  const int64_t m0 = split(ti, plan.mt, plan.m_panels, kt.mr, g.m), m1 = split(ti + 1, plan.mt, plan.m_panels, kt.mr, g.m);
  const int64_t n0 = split(tj, plan.nt, plan.n_panels, kt.nr, g.n), n1 = split(tj + 1, plan.nt, plan.n_panels, kt.nr, g.n);
  if (m0 >= m1 || n0 >= n1) return;
  try {
    const int64_t kc = std::min<int64_t>(kt.kc, g.k);
    const int64_t nc = std::min<int64_t>(kt.nc, (n1 - n0 + kt.nr - 1) / kt.nr * kt.nr);
    const int64_t mc = std::min<int64_t>(kt.mc, (m1 - m0 + kt.mr - 1) / kt.mr * kt.mr);
    float* pa = scratch(0, static_cast<size_t>(mc * kc));
    float* pb = scratch(1, static_cast<size_t>(kc * nc));
    kt.gemm_tile(g, bi, m0, m1, n0, n1, pa, pb);
  } catch (...) {
    plan.failed.store(true);
  }
}

/**
 * One matrix split into `parts` row blocks that share each packed B block: per (column block, k
 * block), the pool first packs disjoint NR-panels of B into one buffer, then multiplies each row block
 * by the whole block (tasks are taken dynamically, so parts may exceed the threads). Without sharing,
 * every thread would pack the entire B block for itself.
 * The packed panels and micro-kernel calls are those of gemm_tile, so C is bit-identical to it.
 */
void gemm_rows_shared_b(const KernelTable& kt, const GemmArgs& g, int64_t parts, int64_t m_panels) {
  struct Ctx {
    const KernelTable* kt;
    const GemmArgs* g;
    float* pb;
    int64_t parts, m_panels, jc, nc, pc, kc, n_panels;
    std::atomic<bool> failed{false};
  } c;
  c.kt = &kt;
  c.g = &g;
  c.parts = parts;
  c.m_panels = m_panels;
  c.pb = scratch(12, static_cast<size_t>(kt.kc) * static_cast<size_t>(std::min<int64_t>(kt.nc, (g.n + kt.nr - 1) / kt.nr * kt.nr)));
  for (c.jc = 0; c.jc < g.n; c.jc += kt.nc) {
    c.nc = std::min<int64_t>(kt.nc, g.n - c.jc);
    c.n_panels = (c.nc + kt.nr - 1) / kt.nr;
    for (c.pc = 0; c.pc < g.k; c.pc += kt.kc) {
      c.kc = std::min<int64_t>(kt.kc, g.k - c.pc);
      pool_run(static_cast<long>(std::min(parts, c.n_panels)), [](void* p, long t) {
        Ctx& x = *static_cast<Ctx*>(p);
        const int64_t tasks = std::min(x.parts, x.n_panels);
        const int64_t j0 = x.n_panels * t / tasks * x.kt->nr, j1 = std::min(x.nc, x.n_panels * (t + 1) / tasks * x.kt->nr);
        if (j1 > j0) x.kt->pack_b_block(*x.g, 0, x.pc, x.kc, x.jc + j0, j1 - j0, x.pb + j0 * x.kc);
      }, &c);
      pool_run(static_cast<long>(parts), [](void* p, long t) {
        Ctx& x = *static_cast<Ctx*>(p);
        const GemmArgs& g = *x.g;
        const int64_t m0 = split(t, x.parts, x.m_panels, x.kt->mr, g.m), m1 = split(t + 1, x.parts, x.m_panels, x.kt->mr, g.m);
        if (m0 >= m1) return;
        try {
          const int64_t mc = std::min<int64_t>(x.kt->mc, (m1 - m0 + x.kt->mr - 1) / x.kt->mr * x.kt->mr);
          float* pa = scratch(0, static_cast<size_t>(mc * x.kc));
          x.kt->gemm_packed_b(g, 0, m0, m1, x.jc, x.nc, x.pc, x.kc, x.pb, pa);
        } catch (...) {
          x.failed.store(true);
        }
      }, &c);
      if (c.failed.load()) throw std::bad_alloc();
    }
  }
}

}  // namespace

void gemm(const KernelTable& kt, const GemmArgs& g) {
  if (g.batch <= 0 || g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {
    if (!g.accumulate) std::memset(g.c, 0, sizeof(float) * static_cast<size_t>(g.batch * g.m * g.n));
    if (g.bias)
      for (int64_t r = 0; r < g.batch * g.m; ++r)
        for (int64_t j = 0; j < g.n; ++j) g.c[r * g.n + j] += g.bias[j];
    return;
  }
  Plan plan;
  plan.kt = &kt;
  plan.g = &g;
  plan.m_panels = (g.m + kt.mr - 1) / kt.mr;
  plan.n_panels = (g.n + kt.nr - 1) / kt.nr;
  plan.mt = plan.nt = 1;
  const double flops = 2.0 * static_cast<double>(g.batch) * g.m * g.n * g.k;
  const int64_t threads = flops < kParallelFlops ? 1 : pool_threads();
  if (threads > 1 && g.batch % threads != 0 && g.batch < 4 * threads) {
    // Too few batch items to share evenly: split each matrix into `threads` tiles, choosing the
    // grid whose largest tile is cheapest: its FMAs (rows·cols per k, in whole micro-panels) plus
    // packing its A rows and B columns (rows + cols per k; a packed element costs roughly what
    // kPackWeight output FMAs do, since the FMA units retire 16 per cycle and packing moves ~1–2
    // elements). Without the packing term a split of n looks as cheap as a split of m, and every
    // thread then packs the whole (large) activation A. Ties favour splitting m.
    double best = 1e300;
    for (int64_t mt = threads; mt >= 1; --mt) {
      if (threads % mt != 0) continue;
      const int64_t nt = threads / mt;
      const double rows = static_cast<double>((plan.m_panels + mt - 1) / mt) * kt.mr;
      const double cols = static_cast<double>((plan.n_panels + nt - 1) / nt) * kt.nr;
      const double cost = rows * cols + kPackWeight * (rows + cols) + 1e-6 * nt;
      if (cost < best) {
        best = cost;
        plan.mt = mt;
        plan.nt = nt;
      }
    }
  }
  if (threads > 1 && g.batch == 1 && plan.nt == 1 && plan.mt > 1) {
    // Row blocks of up to MC rows, about four per thread, taken by whichever thread is free: one
    // thread slowed by another process (or a late wake-up) no longer holds up every k block. C does
    // not depend on the split (each element's FMAs run in the same order).
    const int64_t per = std::max<int64_t>(1, std::min<int64_t>(kt.mc / kt.mr, plan.m_panels / (4 * threads)));
    gemm_rows_shared_b(kt, g, (plan.m_panels + per - 1) / per, plan.m_panels);
    return;
  }
  const long tasks = static_cast<long>(g.batch * plan.mt * plan.nt);
  if (threads == 1) {
    for (long t = 0; t < tasks; ++t) run_tile(&plan, t);
  } else {
    pool_run(tasks, run_tile, &plan);
  }
  if (plan.failed.load()) throw std::bad_alloc();
}

}  // namespace lmd
