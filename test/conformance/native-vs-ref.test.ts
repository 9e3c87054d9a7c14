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
 * Every bound also allows an absolute 1e-37 (a subnormal on one side, 0 on the other).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Backend, BinaryOp, MatmulArgs, UnaryOp } from '../../src/backend/backend.js';
import { nativeBackend, nativeInfo, setNativeIsa, setNativeThreads, type NativeIsa } from '../../src/backend/native.js';
import { refBackend as ref } from '../../src/backend/ref.js';
import { Rng } from '../../src/util/rng.js';

const U = 2 ** -24;
const TINY = 1e-37;

/** Compares element-wise; NaN must meet NaN and infinities must match exactly. */
function expectClose(what: string, got: Float32Array, want: Float32Array, tol: (i: number) => number): number {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      assert.ok(Number.isNaN(w) && Number.isNaN(g), `${what}[${i}]: native ${g}, ref ${w}`);
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      assert.equal(g, w, `${what}[${i}]: native ${g}, ref ${w}`);
      continue;
    }
    const d = Math.abs(g - w), t = tol(i) + TINY;
    if (!(d <= t)) assert.fail(`${what}[${i}]: native ${g}, ref ${w}, |Δ| ${d.toExponential(3)} > tol ${t.toExponential(3)}`);
    if (t > 0) worst = Math.max(worst, d / t);
  }
  return worst;
}
const exact = (): number => 0;
const rel = (want: Float32Array, r: number) => (i: number): number => r * Math.abs(want[i]);

function randn(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);
function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** Unary inputs: normals at several scales plus the special values every kernel must get right. */
function unaryInput(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  const special = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1e-40, -1e-40, 88.7, 89, -87.5, -103, -104, 0.625, -0.625, 9, -9, 20, -20, 1e30, -1e30];
  for (let i = 0; i < n; i++) {
    const r = rng.nextFloat();
    x[i] = i < special.length ? special[i] : r < 0.5 ? rng.normal() : r < 0.8 ? rng.normal() * 6 : r < 0.95 ? rng.normal() * 40 : rng.normal() * 1e-3;
  }
  return x;
}

function geluTol(x: Float32Array, want: Float32Array, ulps: number) {
  // + 1e-16·|x|: the reference's own float64 error in 1 + tanh(u) (it returns 0 below x ≈ −6)
  return (i: number): number => ulps * U * Math.abs(want[i]) + 1e-16 * Math.min(Math.abs(x[i]), 1e6);
}

const UNARY_TOL: Record<UnaryOp, (x: Float32Array, want: Float32Array) => (i: number) => number> = {
  neg: () => exact, relu: () => exact, abs: () => exact, sqrt: () => exact,
  log: (_x, w) => rel(w, 4 * U),
  exp: (_x, w) => rel(w, 8 * U), tanh: (_x, w) => rel(w, 8 * U), sigmoid: (_x, w) => rel(w, 8 * U), silu: (_x, w) => rel(w, 8 * U),
  gelu: (x, w) => geluTol(x, w, 8),
};
const UNARY_OPS = Object.keys(UNARY_TOL) as UnaryOp[];
const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'pow', 'eq', 'lt', 'gt'];

/**
 * A random strided view of `shape`: a buffer laid out in a random axis order with optional padding,
 * and stride 0 on each axis with probability `pBroadcast`.
 */
function randomView(shape: number[], rng: Rng, pBroadcast: number): { data: Float32Array; strides: number[] } {
  const order = shape.map((_, i) => i).sort(() => rng.nextFloat() - 0.5);
  const strides = new Array<number>(shape.length).fill(0);
  let acc = 1;
  for (let j = order.length - 1; j >= 0; j--) {
    const d = order[j];
    if (rng.nextFloat() < pBroadcast) continue;
    strides[d] = acc;
    acc *= shape[d] + (rng.nextFloat() < 0.2 ? 1 : 0);
  }
  return { data: randn(acc, rng), strides };
}

function randomShape(rng: Rng, maxNumel = 40_000): number[] {
  for (;;) {
    const rank = 1 + rng.int(4);
    const s = Array.from({ length: rank }, () => pick(rng, [1, 1, 2, 3, 5, 7, 17, 33, 65, 127]));
    if (numel(s) <= maxNumel) return s;
  }
}

interface GemmCase extends MatmulArgs { label: string }

function gemmCases(rng: Rng): GemmCase[] {
  const cases: GemmCase[] = [];
  const add = (batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean, aStride: number | 'bcast' | 'pad', bStride: number | 'bcast', accumulate: boolean): void => {
    const aBatchStride = aStride === 'bcast' ? 0 : aStride === 'pad' ? m * k + 7 : aStride;
    const bBatchStride = bStride === 'bcast' ? 0 : bStride;
    cases.push({ label: `b${batch} ${m}×${n}×${k} tA${+transA} tB${+transB} aS${aBatchStride} bS${bBatchStride} acc${+accumulate}`, batch, m, n, k, transA, transB, aBatchStride, bBatchStride, accumulate });
  };
  const sizes = [1, 3, 17, 33, 65, 127];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (let r = 0; r < 10; r++) {
        const m = pick(rng, sizes), n = pick(rng, sizes), k = pick(rng, sizes), batch = 1 + rng.int(3);
        add(batch, m, n, k, transA, transB, pick(rng, [m * k, 'bcast', 'pad'] as const), pick(rng, [k * n, 'bcast'] as const), rng.nextFloat() < 0.5);
      }
      add(1, 5, 7, 2049, transA, transB, 0, 0, false); // large k: many KC blocks, long accumulation
      add(2, 3, 33, 1000, transA, transB, 'bcast', 1000 * 33, true);
      add(1, 301, 19, 300, transA, transB, 0, 0, true); // m over two MC blocks, k over two KC blocks
      add(1, 2, 4133, 9, transA, transB, 0, 0, false); // n over NC
      add(1, 160, 150, 140, transA, transB, 0, 0, false); // threaded: split m over the pool
      add(3, 70, 60, 130, transA, transB, 70 * 130, 0, true); // threaded: batch 3 on 2 threads → tiles
      add(2, 1, 1, 1, transA, transB, 1, 1, false);
    }
  }
  add(2, 4, 5, 0, false, false, 0, 0, false); // k = 0 clears C
  add(2, 4, 5, 0, false, false, 0, 0, true); // k = 0 with accumulate leaves C
  add(0, 4, 5, 3, false, false, 0, 0, false);
  add(1, 0, 5, 3, false, false, 0, 0, false);
  return cases;
}

function runGemm(be: Backend, a: Float32Array, b: Float32Array, c0: Float32Array, g: MatmulArgs): Float32Array {
  const c = c0.slice();
  be.matmul(a, b, c, g);
  return c;
}

function gemmOperands(g: MatmulArgs, rng: Rng): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const aLen = g.batch === 0 ? 0 : (g.batch - 1) * g.aBatchStride + g.m * g.k;
  const bLen = g.batch === 0 ? 0 : (g.batch - 1) * g.bBatchStride + g.k * g.n;
  return { a: randn(aLen, rng), b: randn(bLen, rng), c: randn(g.batch * g.m * g.n, rng) };
}

const native = nativeBackend;
const info = nativeInfo();

if (!native) {
  test('native backend vs reference', (t) => {
    t.diagnostic(`native addon unavailable: ${info.reason}`);
    t.skip(`native addon unavailable: ${info.reason}`);
  });
} else {
  const nb = native;
  const initialIsa = info.isa;
  after(() => { setNativeIsa(initialIsa); });
  for (const isa of info.supportedIsas as NativeIsa[]) {
    describe(`native (${isa}) vs reference`, () => {
      const use = (): void => { assert.ok(setNativeIsa(isa), `cannot select ${isa}`); };

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

      test('matmul results do not depend on the thread count', () => {
        use();
        const rng = new Rng(18);
        try {
          for (const [m, n, k] of [[257, 129, 300], [64, 1000, 64]]) {
            const g: MatmulArgs = { batch: 1, m, n, k, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false };
            const { a, b, c } = gemmOperands(g, rng);
            setNativeThreads(1);
            const one = runGemm(nb, a, b, c, g);
            setNativeThreads(0);
            const many = runGemm(nb, a, b, c, g);
            assert.deepEqual(many, one);
          }
        } finally {
          setNativeThreads(0);
        }
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
      });
    });
  }
}
