/**
 * Differential tests: every Backend method of the native addon against the reference backend on
 * randomized inputs (odd sizes, broadcast and permuted strides, all GEMM transpositions, batch
 * stride 0, accumulate, sizes that cross every cache block), on every instruction set this CPU runs.
 *
 * Tolerances (u = 2⁻²⁴, the float32 unit roundoff):
 * - bit-exact: neg/relu/abs/sqrt, add/sub/mul/div/maximum/compare, where, copyStrided, gather,
 *   scatterAdd, max-reduce (NaN-aware), and the backward of neg/exp/log/sqrt/relu/abs — both sides
 *   round the same exactly-rounded float operation.
 * - pow: 4u relative (libm in double on both sides; the two libms may differ in the last bit).
 * - log: 4u relative; exp, tanh, sigmoid, silu: 8u relative (vectorised float approximations,
 *   measured ≤ 2u for log and ≤ 4u for the others).
 * - gelu: 8u relative + 1e-16·|x|: the argument 2u = 2√(2/π)(x + 0.044715x³) of its exp is formed in
 *   float64 and carried as hi + lo, so the tail x ≪ 0 keeps full relative accuracy; the absolute term
 *   is the reference's own error (its 0.5x(1 + tanh u) is 0 below x ≈ −6, where native is not).
 * - sum-reduce: 2u·Σ|x| (float64 accumulation in a different order on both sides).
 * - GEMM: (2√k + 2)·u·Σₚ|a_ip·b_pj| + 2u·|C_ij| (+ u·|C⁰_ij| when accumulating) — fp32 accumulation
 *   against the reference's float64, each side rounding its result once more.
 * - softmax: (16 + |x − max|)·u relative (the shift x − max is rounded to float before exp; entries
 *   far below the max are tiny); log-softmax is formed in float64: 16u. Backward: 16u of the terms.
 * - normForward / normBackward: both sides work in float64 and round once, so the bounds are a few
 *   u of the magnitudes involved: out 4u·(|x̂·w| + |b|), mean and rstd 2u relative (+ 1e-15·mean|x| for
 *   the mean's summation order), gx 4u·rstd·(|gy·w| + |mean(g)| + |x̂·mean(g·x̂)|), gw/gb 2u·|result| +
 *   1e-13·(|gw⁰| + Σ|gy·x̂|) (float64 partial sums in another order).
 * - adamw: bit-exact (float64 throughout with the reference's operation order, FMA contraction off).
 * - attention forward: with A = max over rows and keys of scale·Σ_d|q·k| (the score magnitude) and
 *   E = 32 + 2√S + 4(√D + 2)·A: out E·u·Σ_s p_ts|v_s| (float GEMMs and float exp against float64),
 *   lse (4|lse| + E)·u. Rows that see no key (T > S, causal): out 0, lse −inf on both sides.
 * - attention backward: E·u times the magnitude of each gradient's terms (with E over max(S, T)):
 *   with M_ts = P_ts·(Σ_e|dO_te·v_se| + Σ_e|dO_te·O_te|)·scale (the size of dS before its
 *   cancellation), gq Σ_s M_ts|k_sd|, gk Σ_{h,t} M_ts|q_td|, gv Σ_{h,t} P_ts|dO_td|.
 * Every bound also allows an absolute 1e-37 (a subnormal on one side, 0 on the other).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend, BinaryOp, MatmulArgs, UnaryOp } from '../../src/backend/backend.js';
import { refBackend as ref } from '../../src/backend/ref.js';
import { Rng } from '../../src/util/rng.js';
import { U, TINY, expectClose, exact, rel, randn, pick, numel, contiguous, unaryInput, geluTol, UNARY_TOL, UNARY_OPS, BINARY_OPS, randomView, randomShape, type GemmCase, gemmCases, runGemm, gemmOperands, attnBackwardMagnitudes , forEachNativeIsa, onOneAndAllThreads } from '../helpers/native-diff.js';

forEachNativeIsa((nb, use) => {

  test('unary', (t) => {
    use();
    const rng = new Rng(11);
    for (const op of UNARY_OPS) {
      let worst = 0;
      for (const n of [1, 3, 17, 33, 65, 127, 1000, 70_001]) {
        const x = unaryInput(n, rng);
        const want = new Float32Array(n), got = new Float32Array(n);
        ref.unary(op, x, want);
        nb.unary(op, x, got);
        worst = Math.max(worst, expectClose(`${op} n=${n}`, got, want, UNARY_TOL[op](x, want)));
      }
      t.diagnostic(`${op}: worst |Δ|/tol ${worst.toFixed(3)}`);
    }
  });

  test('unaryBackward', (t) => {
    use();
    const rng = new Rng(12);
    for (const op of UNARY_OPS) {
      let worst = 0;
      for (const n of [1, 3, 17, 65, 1000, 70_001]) {
        const x = unaryInput(n, rng);
        if (op === 'log' || op === 'sqrt') for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]);
        const y = new Float32Array(n);
        ref.unary(op, x, y);
        const gy = randn(n, rng);
        const want = new Float32Array(n), got = new Float32Array(n);
        ref.unaryBackward(op, x, y, gy, want);
        nb.unaryBackward(op, x, y, gy, got);
        // exact where both round one float op; else relative to the magnitude of the terms
        const tol = ['neg', 'exp', 'log', 'sqrt', 'relu', 'abs'].includes(op) ? exact
          : op === 'gelu' ? (i: number) => geluTol(x, want, 16)(i) + 16 * U * Math.abs(gy[i]) * (1 + Math.min(Math.abs(x[i]), 1e6) * 1e-1)
            : (i: number) => 16 * U * (Math.abs(want[i]) + Math.abs(gy[i]) * Math.abs(y[i]) * (1 + Math.min(Math.abs(x[i]), 1e6)) * 1e-1);
        worst = Math.max(worst, expectClose(`${op}' n=${n}`, got, want, tol));
      }
      t.diagnostic(`${op}': worst |Δ|/tol ${worst.toFixed(3)}`);
    }
  });

  test('binary with broadcast and permuted strides', () => {
    use();
    const rng = new Rng(13);
    for (let r = 0; r < 150; r++) {
      const shape = randomShape(rng);
      const a = randomView(shape, rng, 0.25), b = randomView(shape, rng, 0.25);
      if (r % 10 === 0) a.data[0] = NaN;
      for (const op of BINARY_OPS) {
        const want = new Float32Array(numel(shape)), got = new Float32Array(numel(shape));
        ref.binary(op, a.data, a.strides, b.data, b.strides, want, shape);
        nb.binary(op, a.data, a.strides, b.data, b.strides, got, shape);
        expectClose(`${op} [${shape}] a${a.strides} b${b.strides}`, got, want, op === 'pow' ? rel(want, 4 * U) : exact);
      }
    }
    // pow's JavaScript special cases
    const a = Float32Array.from([1, -1, 1, NaN, 0, -0, 2, -8]);
    const b = Float32Array.from([NaN, Infinity, -Infinity, 0, -1, -1, 0.5, 1 / 3]);
    const want = new Float32Array(8), got = new Float32Array(8);
    ref.binary('pow', a, [1], b, [1], want, [8]);
    nb.binary('pow', a, [1], b, [1], got, [8]);
    expectClose('pow specials', got, want, exact);
  });

  test('where with broadcast strides', () => {
    use();
    const rng = new Rng(14);
    for (let r = 0; r < 100; r++) {
      const shape = randomShape(rng);
      const c = randomView(shape, rng, 0.3), a = randomView(shape, rng, 0.3), b = randomView(shape, rng, 0.3);
      for (let i = 0; i < c.data.length; i++) c.data[i] = c.data[i] > 0 ? 1 : i % 7 === 0 ? NaN : 0;
      const want = new Float32Array(numel(shape)), got = new Float32Array(numel(shape));
      ref.where(c.data, c.strides, a.data, a.strides, b.data, b.strides, want, shape);
      nb.where(c.data, c.strides, a.data, a.strides, b.data, b.strides, got, shape);
      expectClose(`where [${shape}]`, got, want, exact);
    }
  });

  test('reduce sum/max over random axes', () => {
    use();
    const rng = new Rng(15);
    for (let r = 0; r < 150; r++) {
      const shape = randomShape(rng);
      const reduced = shape.map(() => rng.nextFloat() < 0.5);
      const outShape = shape.map((s, i) => (reduced[i] ? 1 : s));
      const os = contiguous(outShape).map((s, i) => (reduced[i] ? 0 : s));
      const x = randn(numel(shape), rng, 3);
      if (r % 5 === 0) x[rng.int(x.length)] = NaN;
      if (r % 7 === 0) x.fill(-Infinity);
      const absSum = new Float32Array(numel(outShape));
      ref.reduce('sum', x.map(Math.abs), shape, absSum, os);
      for (const op of ['sum', 'max'] as const) {
        const want = new Float32Array(numel(outShape)).fill(7), got = new Float32Array(numel(outShape)).fill(-7);
        ref.reduce(op, x, shape, want, os);
        nb.reduce(op, x, shape, got, os);
        expectClose(`${op} [${shape}] out ${os}`, got, want, op === 'max' ? exact : (i) => 2 * U * absSum[i]);
      }
    }
    for (const op of ['sum', 'max'] as const) { // empty reductions initialise the output
      const want = new Float32Array(3).fill(5), got = new Float32Array(3).fill(5);
      ref.reduce(op, new Float32Array(0), [0, 3], want, [0, 1]);
      nb.reduce(op, new Float32Array(0), [0, 3], got, [0, 1]);
      expectClose(`${op} of empty`, got, want, exact);
    }
  });

  test('large strided ops take the threaded paths (row split, column split of one long row, column-split reductions): equal to ref and to one thread', () => {
    use();
    const rng = new Rng(16);
    const runAll = (): Float32Array[] => {
      const res: Float32Array[] = [];
      for (const [shape, reducedAxes] of [[[1024, 300], [0]], [[3, 70_000], [0]], [[4, 256, 192], [0, 1]], [[2, 300, 400], [1]], [[600, 500], [1]]] as [number[], number[]][]) {
        const x = randn(numel(shape), new Rng(shape[0] * 7 + shape[1]), 2);
        const os = contiguous(shape.map((d, i) => (reducedAxes.includes(i) ? 1 : d))).map((st, i) => (reducedAxes.includes(i) ? 0 : st));
        const outLen = numel(shape.filter((_, i) => !reducedAxes.includes(i)));
        for (const op of ['sum', 'max'] as const) {
          const got = new Float32Array(outLen), want = new Float32Array(outLen);
          nb.reduce(op, x, shape, got, os);
          ref.reduce(op, x, shape, want, os);
          const absSum = new Float32Array(outLen);
          ref.reduce('sum', x.map(Math.abs), shape, absSum, os);
          expectClose(`${op} [${shape}] over ${reducedAxes}`, got, want, op === 'max' ? exact : (i) => 2 * U * absSum[i]);
          res.push(got);
        }
      }
      // one long contiguous row (outer 1) and a few long rows, binary and copy
      for (const shape of [[300_000], [3, 90_001]]) {
        const a = randn(numel(shape), rng), b = randn(numel(shape), rng);
        const st = contiguous(shape);
        const got = new Float32Array(a.length), want = new Float32Array(a.length);
        nb.binary('add', a, st, b, st, got, shape);
        ref.binary('add', a, st, b, st, want, shape);
        expectClose(`add [${shape}]`, got, want, exact);
        const cp = new Float32Array(a.length);
        nb.copyStrided(a, 0, st, cp, shape);
        expectClose(`copy [${shape}]`, cp, a, exact);
        res.push(got);
      }
      return res;
    };
    const [one, all] = onOneAndAllThreads(runAll);
    assert.deepEqual(all.slice(0, 10), one.slice(0, 10), 'reductions depend on the thread count');
  });

  test('copyStrided (permute, expand, slice offsets, negative strides)', () => {
    use();
    const rng = new Rng(16);
    for (let r = 0; r < 150; r++) {
      const shape = randomShape(rng);
      const v = randomView(shape, rng, 0.2);
      let offset = 0;
      const strides = v.strides.slice();
      if (r % 4 === 0) { // reverse one axis: start at its last element
        const d = rng.int(shape.length);
        offset = (shape[d] - 1) * strides[d];
        strides[d] = -strides[d];
      }
      const want = new Float32Array(numel(shape)), got = new Float32Array(numel(shape));
      ref.copyStrided(v.data, offset, strides, want, shape);
      nb.copyStrided(v.data, offset, strides, got, shape);
      expectClose(`copy [${shape}] strides ${strides} +${offset}`, got, want, exact);
    }
  });

  test('matmul: all transpositions, batch strides, accumulate, block edges', (t) => {
    use();
    const rng = new Rng(17);
    let worst = 0;
    for (const g of gemmCases(rng)) {
      const { a, b, c } = gemmOperands(g, rng);
      const want = runGemm(ref, a, b, c, g), got = runGemm(nb, a, b, c, g);
      // Σ|a||b| per element: the reference GEMM on absolute values
      const scale = runGemm(ref, a.map(Math.abs), b.map(Math.abs), new Float32Array(c.length), { ...g, accumulate: false });
      const tol = (i: number): number => (2 * Math.sqrt(g.k) + 2) * U * scale[i] + 2 * U * Math.abs(want[i]) + (g.accumulate ? U * Math.abs(c[i]) : 0);
      worst = Math.max(worst, expectClose(`matmul ${g.label}`, got, want, tol));
    }
    t.diagnostic(`matmul: worst |Δ|/tol ${worst.toFixed(3)}`);
  });

  test('matmul with a bias row (linear epilogue): both backends equal an fp64 A·B + bias (+ C), over k blocks and tile edges', (t) => {
    use();
    const rng = new Rng(23);
    let worst = 0;
    const cases = [...gemmCases(rng).filter((_, i) => i % 3 === 0),
      { label: 'k over two blocks', batch: 1, m: 37, n: 45, k: 600, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false },
      { label: 'k over two blocks, accumulate', batch: 2, m: 13, n: 70, k: 300, transA: true, transB: false, aBatchStride: 300 * 13, bBatchStride: 0, accumulate: true },
      { label: 'k = 0', batch: 1, m: 3, n: 5, k: 0, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: true }];
    for (const g0 of cases) {
      const g: MatmulArgs = { ...g0, bias: randn(g0.n, rng, 3) };
      const { a, b, c } = gemmOperands(g, rng);
      const exact = new Float64Array(c.length), mag = new Float64Array(c.length);
      for (let bi = 0; bi < g.batch; bi++) for (let i = 0; i < g.m; i++) for (let j = 0; j < g.n; j++) {
        let s = 0, sa = 0;
        for (let p = 0; p < g.k; p++) {
          const av = a[bi * g.aBatchStride + (g.transA ? p * g.m + i : i * g.k + p)];
          const bv = b[bi * g.bBatchStride + (g.transB ? j * g.k + p : p * g.n + j)];
          s += av * bv;
          sa += Math.abs(av * bv);
        }
        const o = (bi * g.m + i) * g.n + j;
        exact[o] = s + g.bias![j] + (g.accumulate ? c[o] : 0);
        mag[o] = sa + Math.abs(g.bias![j]) + (g.accumulate ? Math.abs(c[o]) : 0);
      }
      const want = Float32Array.from(exact);
      const tol = (i: number): number => (2 * Math.sqrt(g.k) + 4) * U * mag[i];
      for (const [name, be] of [['ref', ref], ['native', nb]] as const) {
        worst = Math.max(worst, expectClose(`matmul+bias ${name} ${g0.label}`, runGemm(be, a, b, c, g), want, tol));
      }
    }
    assert.throws(() => nb.matmul(new Float32Array(4), new Float32Array(4), new Float32Array(4), { batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: false, bias: new Float32Array(1) }), /bias is shorter than n/);
    t.diagnostic(`matmul+bias: worst |Δ|/tol ${worst.toFixed(3)}`);
  });

  test('matmul results do not depend on the thread count', () => {
    use();
    const rng = new Rng(18);
    for (const [m, n, k] of [[257, 129, 300], [64, 1000, 64]]) {
      const g: MatmulArgs = { batch: 1, m, n, k, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false };
      const { a, b, c } = gemmOperands(g, rng);
      const [one, many] = onOneAndAllThreads(() => runGemm(nb, a, b, c, g));
      assert.deepEqual(many, one);
    }
  });

  test('sumSquares: float64 sum of squares equals an exact-order float64 sum; independent of threads', () => {
    use();
    const rng = new Rng(19);
    for (const n of [0, 1, 3, 4097, 32768, 32769, 1_000_003]) {
      const x = randn(n, rng, 3);
      let want = 0;
      for (let i = 0; i < n; i++) want += x[i] * x[i];
      const got = nb.sumSquares(x);
      assert.ok(Math.abs(got - want) <= 1e-12 * want + 1e-300, `n=${n}: ${got} vs ${want}`);
      assert.equal(ref.sumSquares(x), want);
      const [one, all] = onOneAndAllThreads(() => nb.sumSquares(x));
      assert.equal(all, one, `n=${n}: thread count changed the sum`);
    }
    assert.ok(Number.isNaN(nb.sumSquares(Float32Array.of(1, NaN, 2))));
    const big = Math.fround(3e38);
    assert.equal(nb.sumSquares(Float32Array.of(big, big)), 2 * big * big); // no float32 overflow
  });

  test('softmax and log-softmax (masked rows, wide rows)', (t) => {
    use();
    const rng = new Rng(19);
    let worst = 0;
    for (const [rows, cols] of [[1, 1], [3, 1], [2, 3], [5, 17], [7, 33], [4, 127], [3, 1000], [2, 5003], [300, 130]]) {
      const x = randn(rows * cols, rng, 4);
      for (let i = 0; i < x.length; i++) if (rng.nextFloat() < 0.1) x[i] = -Infinity;
      if (rows > 1) x.fill(-Infinity, cols, 2 * cols); // a fully masked row → NaN on both sides
      x[0] = 80;
      for (const log of [false, true]) {
        const want = new Float32Array(x.length), got = new Float32Array(x.length);
        ref.softmax(x, want, rows, cols, log);
        nb.softmax(x, got, rows, cols, log);
        const rowMax = (i: number): number => { let m = -Infinity; const o = i - (i % cols); for (let j = 0; j < cols; j++) m = Math.max(m, x[o + j]); return m; };
        const tol = (i: number): number => (16 + (log ? 0 : Math.min(Math.abs(x[i] - rowMax(i)), 200))) * U * Math.abs(want[i]);
        worst = Math.max(worst, expectClose(`softmax log=${log} ${rows}×${cols}`, got, want, tol));
      }
    }
    t.diagnostic(`softmax: worst |Δ|/tol ${worst.toFixed(3)}`);
  });

  test('softmaxBackward', (t) => {
    use();
    const rng = new Rng(20);
    let worst = 0;
    for (const [rows, cols] of [[1, 1], [2, 3], [5, 17], [4, 127], [3, 1000], [300, 130]]) {
      for (const log of [false, true]) {
        const y = new Float32Array(rows * cols);
        ref.softmax(randn(rows * cols, rng, 3), y, rows, cols, log);
        const gy = randn(rows * cols, rng);
        const want = new Float32Array(y.length), got = new Float32Array(y.length);
        ref.softmaxBackward(y, gy, want, rows, cols, log);
        nb.softmaxBackward(y, gy, got, rows, cols, log);
        const mass = new Float64Array(rows); // Σ|gy| (log) or Σ|gy·y| per row
        for (let i = 0; i < y.length; i++) mass[Math.floor(i / cols)] += Math.abs(log ? gy[i] : gy[i] * y[i]);
        const tol = (i: number): number => {
          const p = log ? Math.exp(y[i]) : Math.abs(y[i]);
          return 16 * U * (log ? Math.abs(gy[i]) + p * mass[Math.floor(i / cols)] : p * (Math.abs(gy[i]) + mass[Math.floor(i / cols)]));
        };
        worst = Math.max(worst, expectClose(`softmaxBackward log=${log} ${rows}×${cols}`, got, want, tol));
      }
    }
    t.diagnostic(`softmaxBackward: worst |Δ|/tol ${worst.toFixed(3)}`);
  });

  test('gather and scatterAdd (repeated ids)', () => {
    use();
    const rng = new Rng(21);
    for (const [rowsN, d, n] of [[1, 1, 1], [7, 3, 20], [50, 17, 200], [1000, 64, 3000]]) {
      const table = randn(rowsN * d, rng);
      const ids = Int32Array.from({ length: n }, () => rng.int(rowsN));
      const want = new Float32Array(n * d), got = new Float32Array(n * d);
      ref.gather(table, ids, d, want);
      nb.gather(table, ids, d, got);
      expectClose(`gather ${rowsN}×${d} n=${n}`, got, want, exact);
      const src = randn(n * d, rng);
      const base = randn(rowsN * d, rng);
      const sw = base.slice(), sg = base.slice();
      ref.scatterAdd(src, ids, d, sw);
      nb.scatterAdd(src, ids, d, sg);
      expectClose(`scatterAdd ${rowsN}×${d} n=${n}`, sg, sw, exact);
    }
  });

  test('out-of-range views and ids throw instead of touching memory', () => {
    use();
    const x = new Float32Array(6), out = new Float32Array(6);
    assert.throws(() => nb.binary('add', x, [3, 1], x, [4, 1], out, [2, 3]), RangeError);
    assert.throws(() => nb.copyStrided(x, 1, [3, 1], out, [2, 3]), RangeError);
    assert.throws(() => nb.gather(x, Int32Array.of(0, 3), 2, out), RangeError);
    assert.throws(() => nb.scatterAdd(x, Int32Array.of(-1), 2, out), RangeError);
    assert.throws(() => nb.matmul(x, x, out, { batch: 1, m: 3, n: 3, k: 3, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: false }), RangeError);
    assert.throws(() => nb.reduce('sum', x, [2, 3], new Float32Array(2), [1, 1]), RangeError);
    assert.throws(() => nb.softmax(x, out, 2, 4, false), RangeError);
    const r = new Float32Array(2);
    assert.throws(() => nb.normForward(x, x, null, out, r, r, 2, 4, 1e-5, false), RangeError);
    assert.throws(() => nb.normForward(x, x, null, out, r, r, 3, 2, 1e-5, false), RangeError); // mean/rstd too short
    assert.throws(() => nb.normBackward(x, x, r, r, x, out, new Float32Array(2), null, 2, 3, false), RangeError);
    assert.throws(() => nb.adamw(x, new Float32Array(5), x.slice(), x.slice(), { beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 1, stepSize: 1e-3, sqrtBc2: 1 }), RangeError);
    const d = { B: 1, H: 2, Hkv: 1, T: 3, S: 3, D: 1, causal: true, scale: 1 };
    assert.throws(() => nb.attention(x, x, x, out, r, d), RangeError); // lse shorter than B·H·T
    assert.throws(() => nb.attention(x, x, x, out, out, { ...d, H: 3, Hkv: 2, T: 1 }), RangeError); // H not a multiple of Hkv
    assert.throws(() => nb.attentionBackward(x, x, x, x, out, x, x, x, new Float32Array(2), d), RangeError);
  });
});
