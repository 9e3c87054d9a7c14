/**
 * Differential tests of the fused native kernels (LayerNorm/RMSNorm, AdamW, flash-style attention)
 * against the reference backend, on every instruction set this CPU runs. Tolerances: see
 * native-vs-ref.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend, BinaryOp, MatmulArgs, UnaryOp } from '../../src/backend/backend.js';
import { refBackend as ref } from '../../src/backend/ref.js';
import { Rng } from '../../src/util/rng.js';
import { U, TINY, expectClose, exact, rel, randn, pick, numel, contiguous, unaryInput, geluTol, UNARY_TOL, UNARY_OPS, BINARY_OPS, randomView, randomShape, type GemmCase, gemmCases, runGemm, gemmOperands, attnBackwardMagnitudes , forEachNativeIsa, onOneAndAllThreads } from '../helpers/native-diff.js';

forEachNativeIsa((nb, use) => {

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
    const [one, all] = onOneAndAllThreads(run);
    assert.deepEqual(all, one);
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
    const [one, all] = onOneAndAllThreads(run);
    assert.deepEqual(all, one);
  });
});
