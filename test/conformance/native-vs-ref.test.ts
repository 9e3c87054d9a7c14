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

/** Term magnitudes of the attention gradients (see the header) and the score magnitude A. */
function attnBackwardMagnitudes(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array,
  d: { B: number; H: number; Hkv: number; T: number; S: number; D: number; causal: boolean; scale: number }): { mag: Float64Array[]; A: number } {
  const { B, H, Hkv, T, S, D, causal, scale } = d;
  const rep = H / Hkv;
  const mq = new Float64Array(q.length), mk = new Float64Array(k.length), mv = new Float64Array(k.length);
  let A = 0;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const ko = (b * Hkv + Math.floor(h / rep)) * S * D;
    for (let t = 0; t < T; t++) {
      const qo = ((b * H + h) * T + t) * D, last = causal ? S - T + t : S - 1;
      let delta = 0;
      for (let e = 0; e < D; e++) delta += Math.abs(gOut[qo + e] * out[qo + e]);
      for (let s = 0; s <= last; s++) {
        let sc = 0, sa = 0, dp = 0;
        for (let e = 0; e < D; e++) {
          sc += q[qo + e] * k[ko + s * D + e];
          sa += Math.abs(q[qo + e] * k[ko + s * D + e]);
          dp += Math.abs(gOut[qo + e] * v[ko + s * D + e]);
        }
        A = Math.max(A, sa * scale);
        const p = Math.exp(sc * scale - lse[(b * H + h) * T + t]);
        const m = p * (dp + delta) * scale;
        for (let e = 0; e < D; e++) {
          mq[qo + e] += m * Math.abs(k[ko + s * D + e]);
          mk[ko + s * D + e] += m * Math.abs(q[qo + e]);
          mv[ko + s * D + e] += p * Math.abs(gOut[qo + e]);
        }
      }
    }
  }
  return { mag: [mq, mk, mv], A };
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

      test('normForward / normBackward (LayerNorm and RMSNorm, rows 1, odd cols, threaded sizes)', (t) => {
        use();
        const rng = new Rng(22);
        let worst = 0;
        for (const [rows, cols] of [[1, 1], [1, 7], [3, 1], [5, 17], [7, 33], [2, 255], [33, 259], [130, 256], [300, 130], [64, 1024]]) {
          for (const rms of [false, true]) {
            for (const withB of rms ? [false] : [true, false]) {
              const x = randn(rows * cols, rng, 2);
              for (let i = 0; i < x.length; i++) x[i] += 0.5; // a non-zero mean
              const w = randn(cols, rng), b = withB ? randn(cols, rng) : null;
              const eps = pick(rng, [1e-5, 1e-6, 1e-3]);
              const want = new Float32Array(rows * cols), got = new Float32Array(rows * cols).fill(NaN);
              const mw = new Float32Array(rows), mg = new Float32Array(rows).fill(NaN), rw = new Float32Array(rows), rg = new Float32Array(rows).fill(NaN);
              ref.normForward(x, w, b, want, mw, rw, rows, cols, eps, rms);
              nb.normForward(x, w, b, got, mg, rg, rows, cols, eps, rms);
              const absMean = new Float64Array(rows);
              for (let i = 0; i < x.length; i++) absMean[Math.floor(i / cols)] += Math.abs(x[i]) / cols;
              const xh = (i: number): number => (x[i] - mw[Math.floor(i / cols)]) * rw[Math.floor(i / cols)];
              const label = `${rms ? 'rms' : 'layer'}norm${withB ? '+b' : ''} ${rows}×${cols}`;
              worst = Math.max(worst, expectClose(`${label} out`, got, want, (i) => 4 * U * (Math.abs(xh(i) * w[i % cols]) + (b ? Math.abs(b[i % cols]) : 0)) + 1e-13 * rw[Math.floor(i / cols)] * Math.abs(w[i % cols]) * absMean[Math.floor(i / cols)]));
              worst = Math.max(worst, expectClose(`${label} mean`, mg, mw, (r) => 2 * U * Math.abs(mw[r]) + 1e-15 * absMean[r]));
              worst = Math.max(worst, expectClose(`${label} rstd`, rg, rw, rel(rw, 2 * U)));
              // backward from the reference's statistics (both sides get the same inputs)
              const gy = randn(rows * cols, rng);
              const gw0 = randn(cols, rng), gb0 = randn(cols, rng);
              const gxw = new Float32Array(rows * cols), gxg = new Float32Array(rows * cols).fill(NaN);
              const gww = gw0.slice(), gwg = gw0.slice(), gbw = gb0.slice(), gbg = gb0.slice();
              ref.normBackward(x, w, mw, rw, gy, gxw, gww, withB ? gbw : null, rows, cols, rms);
              nb.normBackward(x, w, mw, rw, gy, gxg, gwg, withB ? gbg : null, rows, cols, rms);
              const sAbsG = new Float64Array(rows), sAbsGx = new Float64Array(rows), sg = new Float64Array(rows), sgx = new Float64Array(rows);
              const colMass = new Float64Array(cols), colMassB = new Float64Array(cols);
              for (let i = 0; i < x.length; i++) {
                const r = Math.floor(i / cols), g = gy[i] * w[i % cols];
                sg[r] += g; sgx[r] += g * xh(i); sAbsG[r] += Math.abs(g); sAbsGx[r] += Math.abs(g * xh(i));
                colMass[i % cols] += Math.abs(gy[i] * xh(i)); colMassB[i % cols] += Math.abs(gy[i]);
              }
              const gxTol = (i: number): number => {
                const r = Math.floor(i / cols), rs = rw[r];
                const mgr = rms ? 0 : sg[r] / cols, mgx = sgx[r] / cols;
                return 4 * U * rs * (Math.abs(gy[i] * w[i % cols]) + Math.abs(mgr) + Math.abs(xh(i) * mgx)) + 1e-12 * rs * (sAbsG[r] + Math.abs(xh(i)) * sAbsGx[r]) / cols;
              };
              worst = Math.max(worst, expectClose(`${label} gx`, gxg, gxw, gxTol));
              worst = Math.max(worst, expectClose(`${label} gw`, gwg, gww, (j) => 2 * U * Math.abs(gww[j]) + 1e-13 * (Math.abs(gw0[j]) + colMass[j])));
              if (withB) worst = Math.max(worst, expectClose(`${label} gb`, gbg, gbw, (j) => 2 * U * Math.abs(gbw[j]) + 1e-13 * (Math.abs(gb0[j]) + colMassB[j])));
              else expectClose(`${label} gb untouched`, gbg, gb0, exact);
            }
          }
        }
        t.diagnostic(`norm: worst |Δ|/tol ${worst.toFixed(3)}`);
      });

      test('normBackward results do not depend on the thread count', () => {
        use();
        const rng = new Rng(23);
        const rows = 517, cols = 131;
        const x = randn(rows * cols, rng), w = randn(cols, rng), b = randn(cols, rng), gy = randn(rows * cols, rng);
        const mean = new Float32Array(rows), rstd = new Float32Array(rows), out = new Float32Array(rows * cols);
        nb.normForward(x, w, b, out, mean, rstd, rows, cols, 1e-5, false);
        const run = (): Float32Array[] => {
          const gx = new Float32Array(rows * cols), gw = new Float32Array(cols), gb = new Float32Array(cols);
          nb.normBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, cols, false);
          return [gx, gw, gb];
        };
        try {
          setNativeThreads(1);
          const one = run();
          setNativeThreads(0);
          assert.deepEqual(run(), one);
        } finally {
          setNativeThreads(0);
        }
      });

      test('adamw: bit-exact with and without a gradient, odd and threaded sizes', () => {
        use();
        const rng = new Rng(24);
        for (const n of [1, 7, 33, 1000, 4099, 140_001]) { // the last one is split over the pool
          for (const withG of [true, false]) {
            for (const step of [1, 2, 100]) {
              const lr = pick(rng, [1e-3, 3e-4, 1e-2]), wd = pick(rng, [0, 0.1, 0.01]);
              const beta1 = pick(rng, [0.9, 0.8]), beta2 = pick(rng, [0.999, 0.95]), eps = pick(rng, [1e-8, 1e-6]);
              const a = { beta1, beta2, eps, decay: 1 - lr * wd, stepSize: lr / (1 - beta1 ** step), sqrtBc2: Math.sqrt(1 - beta2 ** step) };
              const w = randn(n, rng), g = withG ? randn(n, rng, 0.1) : null;
              const m = step === 1 ? new Float32Array(n) : randn(n, rng, 0.01);
              const v = step === 1 ? new Float32Array(n) : randn(n, rng, 0.01).map((e) => e * e);
              if (g && n > 3) { g[0] = 0; g[1] = 1e-30; g[2] = 1e10; } // zero, tiny and huge gradients
              const ww = w.slice(), mw = m.slice(), vw = v.slice(), wg = w.slice(), mg = m.slice(), vg = v.slice();
              ref.adamw(ww, g, mw, vw, a);
              nb.adamw(wg, g, mg, vg, a);
              const label = `adamw n=${n} g=${withG} step=${step}`;
              expectClose(`${label} w`, wg, ww, exact);
              expectClose(`${label} m`, mg, mw, exact);
              expectClose(`${label} v`, vg, vw, exact);
            }
          }
        }
      });

      /** Attention shapes: T≠S causal (incl. T > S: rows that see no key), GQA rep 1/2/4, odd D. */
      const attnCases: [number, number, number, number, number, number, boolean][] = [
        // B, H, Hkv, T, S, D, causal
        [1, 1, 1, 1, 1, 1, true], [1, 1, 1, 1, 1, 1, false], [2, 2, 2, 5, 5, 3, true], [1, 4, 2, 7, 11, 5, true],
        [2, 4, 1, 13, 13, 8, true], [1, 2, 1, 12, 5, 7, true], [2, 2, 2, 9, 4, 3, false], [1, 4, 4, 3, 40, 17, true],
        [2, 8, 2, 33, 47, 16, true], [1, 2, 1, 70, 70, 9, false], [3, 4, 2, 64, 64, 32, true], [2, 4, 4, 128, 128, 64, true],
        [1, 4, 1, 200, 300, 33, true],
      ];
      const attnInputs = (c: (typeof attnCases)[number], rng: Rng) => {
        const [B, H, Hkv, T, S, D, causal] = c;
        const d = { B, H, Hkv, T, S, D, causal, scale: 1 / Math.sqrt(D) };
        const q = randn(B * H * T * D, rng), k = randn(B * Hkv * S * D, rng), v = randn(B * Hkv * S * D, rng);
        return { d, q, k, v };
      };

      test('attention forward (causal T≠S, GQA, odd D)', (t) => {
        use();
        const rng = new Rng(25);
        let worst = 0;
        for (const c of attnCases) {
          const { d, q, k, v } = attnInputs(c, rng);
          const { B, H, Hkv, T, S, D } = d;
          const want = new Float32Array(q.length), got = new Float32Array(q.length).fill(NaN);
          const lw = new Float32Array(B * H * T), lg = new Float32Array(B * H * T).fill(NaN);
          ref.attention(q, k, v, want, lw, d);
          nb.attention(q, k, v, got, lg, d);
          // Σ_s p|v| per output element, and the score magnitude A
          const mag = new Float32Array(q.length);
          ref.attention(q, k, v.map(Math.abs), mag, new Float32Array(B * H * T), d);
          let A = 0;
          const rep = H / Hkv;
          for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) for (let s = 0; s < S; s++) {
            let a = 0;
            const qo = ((b * H + h) * T + i) * D, ko = ((b * Hkv + Math.floor(h / rep)) * S + s) * D;
            for (let e = 0; e < D; e++) a += Math.abs(q[qo + e] * k[ko + e]);
            A = Math.max(A, a * d.scale);
          }
          const E = 32 + 2 * Math.sqrt(S) + 4 * (Math.sqrt(D) + 2) * A;
          const label = `attention ${c}`;
          worst = Math.max(worst, expectClose(`${label} out`, got, want, (i) => E * U * mag[i]));
          worst = Math.max(worst, expectClose(`${label} lse`, lg, lw, (i) => (4 * Math.abs(lw[i]) + E) * U));
        }
        t.diagnostic(`attention: worst |Δ|/tol ${worst.toFixed(3)}`);
      });

      test('attentionBackward (overwrites gq/gk/gv; GQA heads accumulate without races)', (t) => {
        use();
        const rng = new Rng(26);
        let worst = 0;
        for (const c of attnCases) {
          const { d, q, k, v } = attnInputs(c, rng);
          const { B, H, T, S, D } = d;
          const out = new Float32Array(q.length), lse = new Float32Array(B * H * T);
          ref.attention(q, k, v, out, lse, d);
          const gOut = randn(q.length, rng);
          const want = [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(k.length)];
          const got = [new Float32Array(q.length).fill(NaN), new Float32Array(k.length).fill(NaN), new Float32Array(k.length).fill(NaN)];
          ref.attentionBackward(q, k, v, out, lse, gOut, want[0], want[1], want[2], d);
          nb.attentionBackward(q, k, v, out, lse, gOut, got[0], got[1], got[2], d);
          const { mag, A } = attnBackwardMagnitudes(q, k, v, out, lse, gOut, d);
          const E = 32 + 2 * Math.sqrt(Math.max(S, T)) + 4 * (Math.sqrt(D) + 2) * A;
          ['gq', 'gk', 'gv'].forEach((name, j) => {
            worst = Math.max(worst, expectClose(`attentionBackward ${c} ${name}`, got[j], want[j], (i) => E * U * mag[j][i]));
          });
        }
        t.diagnostic(`attentionBackward: worst |Δ|/tol ${worst.toFixed(3)}`);
      });

      test('attention results do not depend on the thread count', () => {
        use();
        const rng = new Rng(27);
        const { d, q, k, v } = attnInputs([2, 4, 2, 64, 96, 24, true], rng);
        const run = (): Float32Array[] => {
          const out = new Float32Array(q.length), lse = new Float32Array(d.B * d.H * d.T);
          nb.attention(q, k, v, out, lse, d);
          const gq = new Float32Array(q.length), gk = new Float32Array(k.length), gv = new Float32Array(k.length);
          nb.attentionBackward(q, k, v, out, lse, out, gq, gk, gv, d);
          return [out, lse, gq, gk, gv];
        };
        try {
          setNativeThreads(1);
          const one = run();
          setNativeThreads(0);
          assert.deepEqual(run(), one);
        } finally {
          setNativeThreads(0);
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
  }
}
