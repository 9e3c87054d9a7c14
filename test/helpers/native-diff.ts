/** Shared machinery of the native-vs-reference differential tests (tolerances: see native-vs-ref.test.ts). */
import type { Backend, BinaryOp, MatmulArgs, UnaryOp } from '../../src/backend/backend.js';
import { refBackend as ref } from '../../src/backend/ref.js';
import { Rng } from '../../src/util/rng.js';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { nativeBackend, nativeInfo, setNativeIsa, setNativeThreads, type NativeIsa } from '../../src/backend/native.js';


export const U = 2 ** -24;
export const TINY = 1e-37;

/** Compares element-wise; NaN must meet NaN and infinities must match exactly. */
export function expectClose(what: string, got: Float32Array, want: Float32Array, tol: (i: number) => number): number {
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
export const exact = (): number => 0;
export const rel = (want: Float32Array, r: number) => (i: number): number => r * Math.abs(want[i]);

export function randn(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
export const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);
export function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** Unary inputs: normals at several scales plus the special values every kernel must get right. */
export function unaryInput(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  const special = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1e-40, -1e-40, 88.7, 89, -87.5, -103, -104, 0.625, -0.625, 9, -9, 20, -20, 1e30, -1e30];
  for (let i = 0; i < n; i++) {
    const r = rng.nextFloat();
    x[i] = i < special.length ? special[i] : r < 0.5 ? rng.normal() : r < 0.8 ? rng.normal() * 6 : r < 0.95 ? rng.normal() * 40 : rng.normal() * 1e-3;
  }
  return x;
}

export function geluTol(x: Float32Array, want: Float32Array, ulps: number) {
  // + 1e-16·|x|: the reference's own float64 error in 1 + tanh(u) (it returns 0 below x ≈ −6)
  return (i: number): number => ulps * U * Math.abs(want[i]) + 1e-16 * Math.min(Math.abs(x[i]), 1e6);
}

export const UNARY_TOL: Record<UnaryOp, (x: Float32Array, want: Float32Array) => (i: number) => number> = {
  neg: () => exact, relu: () => exact, abs: () => exact, sqrt: () => exact,
  log: (_x, w) => rel(w, 4 * U),
  exp: (_x, w) => rel(w, 8 * U), tanh: (_x, w) => rel(w, 8 * U), sigmoid: (_x, w) => rel(w, 8 * U), silu: (_x, w) => rel(w, 8 * U),
  gelu: (x, w) => geluTol(x, w, 8),
};
export const UNARY_OPS = Object.keys(UNARY_TOL) as UnaryOp[];
export const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'pow', 'eq', 'lt', 'gt'];

/**
 * A random strided view of `shape`: a buffer laid out in a random axis order with optional padding,
 * and stride 0 on each axis with probability `pBroadcast`.
 */
export function randomView(shape: number[], rng: Rng, pBroadcast: number): { data: Float32Array; strides: number[] } {
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

export function randomShape(rng: Rng, maxNumel = 40_000): number[] {
  for (;;) {
    const rank = 1 + rng.int(4);
    const s = Array.from({ length: rank }, () => pick(rng, [1, 1, 2, 3, 5, 7, 17, 33, 65, 127]));
    if (numel(s) <= maxNumel) return s;
  }
}

export interface GemmCase extends MatmulArgs { label: string }

export function gemmCases(rng: Rng): GemmCase[] {
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

export function runGemm(be: Backend, a: Float32Array, b: Float32Array, c0: Float32Array, g: MatmulArgs): Float32Array {
  const c = c0.slice();
  be.matmul(a, b, c, g);
  return c;
}

export function gemmOperands(g: MatmulArgs, rng: Rng): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const aLen = g.batch === 0 ? 0 : (g.batch - 1) * g.aBatchStride + g.m * g.k;
  const bLen = g.batch === 0 ? 0 : (g.batch - 1) * g.bBatchStride + g.k * g.n;
  return { a: randn(aLen, rng), b: randn(bLen, rng), c: randn(g.batch * g.m * g.n, rng) };
}

/** Term magnitudes of the attention gradients (see the header) and the score magnitude A. */
export function attnBackwardMagnitudes(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array,
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

/**
 * Runs `body` once per instruction set this CPU supports, inside a describe block, with the native
 * backend and a `use()` that selects that ISA; one skipped test (with the reason) when the addon is
 * unavailable. The ISA in use before is restored afterwards.
 */
export function forEachNativeIsa(body: (nb: Backend, use: () => void) => void): void {
  const info = nativeInfo();
  const nb = nativeBackend;
  if (!nb) {
    test('native backend vs reference', (t) => {
      t.diagnostic(`native addon unavailable: ${info.reason}`);
      t.skip(`native addon unavailable: ${info.reason}`);
    });
    return;
  }
  const initialIsa = info.isa;
  after(() => { setNativeIsa(initialIsa); });
  for (const isa of info.supportedIsas as NativeIsa[]) {
    describe(`native (${isa}) vs reference`, () => {
      body(nb, () => { assert.ok(setNativeIsa(isa), `cannot select ${isa}`); });
    });
  }
}

/** `run` on one native thread, then on the whole pool (restored even if `run` throws): [one, all]. */
export function onOneAndAllThreads<T>(run: () => T): [T, T] {
  try {
    setNativeThreads(1);
    const one = run();
    setNativeThreads(0);
    return [one, run()];
  } finally {
    setNativeThreads(0);
  }
}
