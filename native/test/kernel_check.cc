// Standalone check of every kernel table against a naive float64 GEMM and against each other, runnable
// on a CPU without AVX-512: run.sh compiles isa_avx512.cc with AVX2 flags, which keeps its 14×32 tile,
// blocking and 16-lane math (GCC splits the 512-bit vectors), so the AVX-512 table's logic is tested
// even where its instructions cannot execute. Usage: native/test/run.sh
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "gemm.h"
#include "kernels.h"

using namespace lmd;

/** Nearest bfloat16 (ties to even) of a finite float, as a float. */
static float bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

static double naive(const GemmArgs& g, int64_t b, int64_t i, int64_t j) {
  const float* A = g.a + b * g.a_batch_stride;
  const float* B = g.b + b * g.b_batch_stride;
  auto op = [&](float x) { return double(g.bf16 ? bf16(x) : x); };
  double s = 0;
  for (int64_t p = 0; p < g.k; ++p)
    s += op(g.trans_a ? A[p * g.m + i] : A[i * g.k + p]) * op(g.trans_b ? B[j * g.k + p] : B[p * g.n + j]);
  return s;
}

static int check_gemm(const KernelTable& kt, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  const int sizes[] = {1, 2, 3, 5, 7, 16, 17, 33, 65, 127, 200};
  int fails = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t m = sizes[rng() % 11], n = sizes[rng() % 11];
    const int64_t k = trial % 10 == 0 ? 600 + rng() % 300 : sizes[rng() % 11];
    const int64_t batch = 1 + rng() % 3;
    const bool ta = rng() % 2, tb = rng() % 2, acc = rng() % 2, bcast = rng() % 3 == 0, bf = rng() % 2;
    std::vector<float> a(batch * m * k), b(batch * k * n), c(batch * m * n);
    for (auto* v : {&a, &b, &c})
      for (float& x : *v) x = nd(rng);
    const std::vector<float> c0 = c;
    const GemmArgs g{a.data(), b.data(), c.data(), batch, m, n, k, ta, tb, m * k, bcast ? 0 : k * n, acc, bf};
    gemm(kt, g);
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t o = (bi * m + i) * n + j;
          const double want = naive(g, bi, i, j) + (acc ? c0[o] : 0.0);
          if (std::fabs(want - c[o]) > 4e-6 * std::sqrt(double(k)) * (1 + std::fabs(want))) {
            if (fails++ < 5) std::printf("  %s gemm %ldx%ldx%ld tA%d tB%d acc%d bf16 %d: %g vs %g\n", kt.isa, long(m), long(n), long(k), ta, tb, acc, bf, c[o], want);
          }
        }
  }
  return fails;
}

/** Unary, unary backward and softmax of table t against table ref (same math, other lane width). */
static int check_math(const KernelTable& t, const KernelTable& ref, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  int bad = 0;
  auto close = [](float x, float y, double r, double a) { return std::fabs(x - y) <= r * std::fabs(y) + a; };
  for (int n : {1, 3, 15, 16, 17, 31, 33, 100, 1001}) {
    std::vector<float> x(n), y1(n), y2(n), g(n), g1(n), g2(n);
    for (float& v : x) v = nd(rng) * 5;
    for (float& v : g) v = nd(rng);
    for (int op = 0; op < kUnaryCount; ++op) {
      std::vector<float> xx = x;
      if (op == kLog || op == kSqrt)
        for (float& v : xx) v = std::fabs(v);
      t.unary(op, xx.data(), y1.data(), n);
      ref.unary(op, xx.data(), y2.data(), n);
      t.unary_backward(op, xx.data(), y2.data(), g.data(), g1.data(), n);
      ref.unary_backward(op, xx.data(), y2.data(), g.data(), g2.data(), n);
      for (int i = 0; i < n; ++i)
        if (!close(y1[i], y2[i], 1e-6, 1e-30) || !close(g1[i], g2[i], 1e-5, 1e-6 * std::fabs(g[i]) + 1e-12))
          if (bad++ < 5) std::printf("  %s unary op %d n %d [%d]: %g vs %g, grad %g vs %g\n", t.isa, op, n, i, y1[i], y2[i], g1[i], g2[i]);
    }
    for (int log = 0; log < 2; ++log) {
      const int rows = 3;
      std::vector<float> xs(rows * n), o1(rows * n), o2(rows * n), gy(rows * n), b1(rows * n), b2(rows * n);
      for (float& v : xs) v = nd(rng) * 3;
      for (float& v : gy) v = nd(rng);
      t.softmax(xs.data(), o1.data(), 0, rows, n, log);
      ref.softmax(xs.data(), o2.data(), 0, rows, n, log);
      t.softmax_backward(o2.data(), gy.data(), b1.data(), 0, rows, n, log);
      ref.softmax_backward(o2.data(), gy.data(), b2.data(), 0, rows, n, log);
      for (int i = 0; i < rows * n; ++i)
        if (!close(o1[i], o2[i], 1e-6, 1e-30) || !close(b1[i], b2[i], 1e-5, 1e-8))
          if (bad++ < 10) std::printf("  %s softmax log %d n %d [%d]: %g vs %g, grad %g vs %g\n", t.isa, log, n, i, o1[i], o2[i], b1[i], b2[i]);
    }
  }
  return bad;
}

int main() {
  std::mt19937 rng(1);
  int fails = 0;
  for (const KernelTable* kt : {&kTableGeneric, &kTableAvx2, &kTableAvx512}) {
    const int f = check_gemm(*kt, rng) + (kt == &kTableGeneric ? 0 : check_math(*kt, kTableGeneric, rng));
    std::printf("%s (%dx%d tile): %s\n", kt->isa, kt->mr, kt->nr, f == 0 ? "ok" : "FAILED");
    fails += f;
  }
  return fails == 0 ? 0 : 1;
}
