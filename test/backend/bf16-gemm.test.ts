/**
 * bf16 GEMM (MatmulArgs.bf16) on every backend and native instruction set, against an independent
 * computation: the operands rounded to bfloat16 by a helper written here (its own bit manipulation,
 * not the library's roundBf16) and multiplied in float64. The only difference left is fp32
 * accumulation, bounded by γ_k·Σ|a||b|. The rounding function itself is checked exactly on ties,
 * NaN, ±Inf, overflow and signed zero.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Backend, MatmulArgs } from '../../src/backend/backend.js';
import { roundBf16 } from '../../src/backend/gemm.js';
import { nativeBackend, nativeInfo, setNativeIsa } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref.js';
import { Rng } from '../../src/util/rng.js';

// ---- the independent reference: float32 bits → bfloat16 by explicit round-half-to-even ----
const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);
function bf16(x: number): number {
  f[0] = x;
  const bits = u[0];
  const hi = bits >>> 16, lo = bits & 0xffff;
  if ((hi & 0x7f80) === 0x7f80 && (bits & 0x7fffff) !== 0) return NaN; // NaN stays NaN
  const up = lo > 0x8000 || (lo === 0x8000 && (hi & 1) === 1);
  u[0] = ((up ? hi + 1 : hi) << 16) >>> 0;
  return f[0];
}
const fromBits = (b: number): number => { u[0] = b >>> 0; return f[0]; };
const bitsOf = (x: number): number => { f[0] = x; return u[0]; };

describe('roundBf16 (the rounding both backends use)', () => {
  test('exact cases: ties to even, NaN, ±Inf, overflow, signed zero, subnormals', () => {
    const cases: [number, number][] = [
      [1, 1],
      [1 + 2 ** -8, 1], // halfway between 1 and 1+2⁻⁷: ties to the even 1
      [1 + 3 * 2 ** -8, 1 + 2 ** -6], // halfway between 1+2⁻⁷ (odd) and 1+2⁻⁶ (even)
      [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7], // just above halfway: up
      [1 + 2 ** -8 - 2 ** -20, 1], // just below: down
      [-(1 + 2 ** -8), -1],
      [-(1 + 3 * 2 ** -8), -(1 + 2 ** -6)],
      [Infinity, Infinity],
      [-Infinity, -Infinity],
      [fromBits(0x7f7fffff), Infinity], // the largest float rounds past bf16's largest: overflow to Inf
      [fromBits(0xff7fffff), -Infinity],
      [fromBits(0x7f7f7fff), fromBits(0x7f7f0000)], // bf16 max stays finite
      [0, 0],
      [fromBits(0x00018000), fromBits(0x00020000)], // subnormal tie to even (odd 1 → 2)
      [fromBits(0x00008000), 0], // subnormal tie to even 0
      [3.14159265, 3.140625],
    ];
    for (const [x, want] of cases) {
      assert.equal(bitsOf(roundBf16(x)), bitsOf(want), `roundBf16(${x}) = ${roundBf16(x)}, want ${want}`);
      assert.equal(bitsOf(bf16(x)), bitsOf(want), `test helper bf16(${x})`);
    }
    assert.ok(Object.is(roundBf16(-0), -0), '-0 keeps its sign');
    for (const nan of [NaN, fromBits(0x7f800001), fromBits(0xff800001), fromBits(0x7fffffff), fromBits(0x7f80ffff)]) {
      assert.ok(Number.isNaN(roundBf16(nan)), `NaN ${bitsOf(nan).toString(16)} stays NaN (no carry into Inf)`);
    }
  });

  test('agrees with the independent helper on random bit patterns', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 200_000; i++) {
      const x = fromBits((rng.int(0x10000) << 16) | rng.int(0x10000));
      const got = roundBf16(x), want = bf16(x);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(got));
      else assert.equal(bitsOf(got), bitsOf(want), `bits ${bitsOf(x).toString(16)}`);
    }
  });
});

// ---- GEMM on every backend ----
interface Target { name: string; backend: Backend; use: () => void }
function targets(): Target[] {
  const list: Target[] = [{ name: 'ref', backend: refBackend, use: () => {} }];
  const nb = nativeBackend;
  if (nb) {
    for (const isa of nativeInfo().supportedIsas) {
      list.push({ name: `native ${isa}`, backend: nb, use: () => assert.ok(setNativeIsa(isa)) });
    }
  }
  return list;
}
const initialIsa = nativeInfo().isa;
after(() => { if (nativeBackend) setNativeIsa(initialIsa); });

function randn(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** C = op(A)·op(B) (+ C0) in float64 from bf16-rounded operands, and the error bound γ_k·Σ|a||b|. */
function expected(a: Float32Array, b: Float32Array, c0: Float32Array | null, g: MatmulArgs, round: (x: number) => number): { want: Float64Array; bound: Float64Array } {
  const { batch, m, n, k, transA, transB } = g;
  const want = new Float64Array(batch * m * n), bound = new Float64Array(batch * m * n);
  for (let bt = 0; bt < batch; bt++) {
    const ao = bt * g.aBatchStride, bo = bt * g.bBatchStride;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0, mag = 0;
      for (let p = 0; p < k; p++) {
        const x = round(a[ao + (transA ? p * m + i : i * k + p)]);
        const y = round(b[bo + (transB ? j * k + p : p * n + j)]);
        s += x * y;
        mag += Math.abs(x * y);
      }
      const o = (bt * m + i) * n + j;
      const add = c0 ? c0[o] : 0;
      want[o] = s + add;
      // fp32 accumulation of k products (+ the accumulate add): |err| ≤ (k+1)·u·(Σ|ab| + |c0|)
      bound[o] = (k + 2) * 2 ** -24 * (mag + Math.abs(add)) + 1e-30;
    }
  }
  return { want, bound };
}

const SHAPES: [number, number, number][] = [[37, 29, 53], [1, 1, 1], [7, 130, 300], [150, 33, 520]];

for (const t of targets()) {
  describe(`bf16 GEMM [${t.name}]`, () => {
    for (const [m, n, k] of SHAPES) {
      for (const transA of [false, true]) for (const transB of [false, true]) for (const accumulate of [false, true]) {
        test(`${m}×${n}×${k} tA=${transA} tB=${transB} acc=${accumulate}`, () => {
          t.use();
          const rng = new Rng(m * 7919 + n * 31 + k + (transA ? 1 : 0) + (transB ? 2 : 0) + (accumulate ? 4 : 0));
          const batch = 2;
          const a = randn(batch * m * k, rng), b = randn(batch * k * n, rng);
          const c0 = randn(batch * m * n, rng);
          const g: MatmulArgs = { batch, m, n, k, transA, transB, aBatchStride: m * k, bBatchStride: k * n, accumulate, bf16: true };
          const c = c0.slice();
          t.backend.matmul(a, b, c, g);
          const { want, bound } = expected(a, b, accumulate ? c0 : null, g, bf16);
          for (let i = 0; i < c.length; i++) {
            assert.ok(Math.abs(c[i] - want[i]) <= bound[i], `[${i}] ${c[i]} vs ${want[i]} (bound ${bound[i]})`);
          }
          // and the option does something: the fp32 product of the unrounded operands is measurably off
          if (k >= 29) {
            const exact = expected(a, b, accumulate ? c0 : null, g, (x) => x).want;
            let worst = 0;
            for (let i = 0; i < c.length; i++) worst = Math.max(worst, Math.abs(c[i] - exact[i]) / bound[i]);
            assert.ok(worst > 10, `bf16 result indistinguishable from fp32 (worst ${worst})`);
          }
        });
      }
    }

    test('operands are rounded exactly, specials included (A·[1] = bf16(A))', () => {
      t.use();
      const xs = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8 + 2 ** -20), Infinity, -Infinity, NaN, fromBits(0x7f800001),
        fromBits(0x7f7fffff), -0, 0, 3.14159265, 1e-40, -65504.7];
      for (const transA of [false, true]) for (const transB of [false, true]) {
        const a = Float32Array.from(xs), one = Float32Array.of(1);
        const c = new Float32Array(xs.length);
        // A as [m=len, k=1] (its transpose [1, m] has the same memory), B = [1]
        t.backend.matmul(a, one, c, { batch: 1, m: xs.length, n: 1, k: 1, transA, transB, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16: true });
        xs.forEach((x, i) => {
          const want = bf16(x);
          if (Number.isNaN(want)) assert.ok(Number.isNaN(c[i]), `${x} → NaN`);
          else assert.ok(c[i] === want, `A=${x}: ${c[i]}, want ${want}`); // === : the sum starts at +0, so −0 comes out +0
        });
        // and the B side: [1]·B
        const cb = new Float32Array(xs.length);
        t.backend.matmul(one, a, cb, { batch: 1, m: 1, n: xs.length, k: 1, transA, transB, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16: true });
        xs.forEach((x, i) => {
          const want = bf16(x);
          if (Number.isNaN(want)) assert.ok(Number.isNaN(cb[i]), `${x} → NaN`);
          else assert.ok(cb[i] === want, `B=${x}: ${cb[i]}, want ${want}`);
        });
      }
    });

    test('bf16 omitted or false is the fp32 GEMM, bit for bit', () => {
      t.use();
      const rng = new Rng(11);
      const [m, n, k] = [37, 29, 53];
      const a = randn(m * k, rng), b = randn(k * n, rng);
      const base = { batch: 1, m, n, k, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false };
      const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
      t.backend.matmul(a, b, c1, base);
      t.backend.matmul(a, b, c2, { ...base, bf16: false });
      assert.deepEqual(c2, c1);
    });
  });
}
