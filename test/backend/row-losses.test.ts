/**
 * Backend.rowLosses (reference and native, every ISA this CPU has) against the objectives' own row
 * kernels (src/distill/objectives: float64 throughout) on random rows: ce, fkl, rkl and mixtures,
 * τ ∈ {1, 2}, ignored labels, zero-weight rows, V not a multiple of the vector width, large |logits|,
 * and rows the kernel must refuse (a -inf logit, a label outside the vocabulary).
 *
 * Tolerances. The reference backend is float64 like the objectives: only summation order differs,
 * so 1e-12 relative on losses and 1e-6 of the row's gradient scale on gradients (those are float32).
 * The native kernel takes its exponentials in float32 (vexp: a few ulp) of float32 arguments
 * (z − max z)/τ, whose rounding is ≤ 2⁻²⁴·|arg|; the sums and the loss-side log-ratios are float64.
 * A probability's relative error is therefore ≲ 4·2⁻²⁴ + 2⁻²⁴·|arg| and, weighted by the probability,
 * the loss error ≲ 2⁻²⁴·(4 + E_p|arg|)·|loss-ish| — we allow 2e-6·(1 + |l|) for losses. Each gradient
 * entry w·Σ weight·(τ or 1)·(q − p) or rkl's τ·q·(log q − log p − L) is formed in float32 from those
 * probabilities: allowed 1e-6·K·(1 + the row's spread of logits/τ), K = |w|·Σ|weight·scale/τ|, which
 * bounds (ulp of the float log-ratio) × q summed over the parts. Both sides also round each part's
 * gradient to float32: + 4·2⁻²⁴ of the value. (Observed errors stay below a tenth of these bounds.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend, RowLossPart } from '../../src/backend/backend.js';
import { setNativeThreads } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref.js';
import { backendRowPlan } from '../../src/distill/backend-rows.js';
import { Mixture } from '../../src/distill/mixture.js';
import { Rng } from '../../src/util/rng.js';
import { forEachNativeIsa } from '../helpers/native-diff.js';

interface Case { rows: number; V: number; z: Float32Array; t: Float32Array; labels: Int32Array; w: Float32Array; spread: number }

/** Random rows; row 1 has weight 0, row 2 an ignored label, the last rows are refused (when rows ≥ 6). */
function makeCase(rng: Rng, rows: number, V: number, scale: number, refuse: boolean): Case {
  const z = new Float32Array(rows * V), t = new Float32Array(rows * V);
  for (let i = 0; i < rows * V; i++) { z[i] = rng.normal() * scale; t[i] = rng.normal() * scale * 1.3 + 0.5; }
  const labels = Int32Array.from({ length: rows }, () => rng.int(V));
  const w = Float32Array.from({ length: rows }, () => 0.25 + rng.nextFloat());
  if (rows > 1) w[1] = 0;
  if (rows > 2) labels[2] = -100;
  if (refuse && rows >= 6) {
    z[(rows - 1) * V + 3] = -Infinity; // a masked vocabulary entry
    t[(rows - 2) * V] = -Infinity;
    labels[rows - 3] = V + 5; // outside the vocabulary
  }
  return { rows, V, z, t, labels, w, spread: 0 };
}

/** What the objectives' row kernels give for each non-refused row: per-part losses and w·Σ weight·grad. */
function expected(mix: Mixture, c: Case) {
  const { rows, V } = c;
  const parts = mix.parts.filter((p) => p.weight !== 0);
  const loss = new Float64Array(rows * parts.length), grad = new Float64Array(rows * V);
  const scratch = new Float32Array(V);
  for (let r = 0; r < rows; r++) {
    if (c.w[r] === 0) continue;
    const target = { teacher: { kind: 'dense' as const, logits: c.t.subarray(r * V, (r + 1) * V) }, label: c.labels[r] };
    parts.forEach((p, k) => {
      let l: number;
      try { l = p.objective.rowLossGrad(c.z.subarray(r * V, (r + 1) * V), target, scratch); } catch { l = NaN; }
      loss[r * parts.length + k] = l;
      for (let j = 0; j < V; j++) grad[r * V + j] += c.w[r] * p.weight * scratch[j];
    });
  }
  return { loss, grad };
}

function run(be: Backend, parts: RowLossPart[], c: Case) {
  const grad = new Float32Array(c.rows * c.V).fill(NaN), partLosses = new Float64Array(c.rows * parts.length).fill(NaN);
  const refused = new Uint8Array(c.rows).fill(7);
  const needT = parts.some((p) => p.kind !== 'ce'), needY = parts.some((p) => p.kind === 'ce');
  be.rowLosses({ rows: c.rows, V: c.V, z: c.z, teacher: needT ? c.t : null, labels: needY ? c.labels : null, weights: c.w, parts, grad, partLosses, refused });
  return { grad, partLosses, refused };
}

const MIXES: [string, unknown][] = [
  ['ce', { objective: 'ce' }],
  ['fkl τ=1', { objective: 'fkl' }],
  ['fkl τ=2', { objective: 'fkl', temperature: 2 }],
  ['rkl τ=1', { objective: 'rkl' }],
  ['rkl τ=2 no τ²', { objective: 'rkl', temperature: 2, tau_squared: false }],
  ['0.5 ce + 0.5 fkl', [{ objective: 'ce', weight: 0.5 }, { objective: 'fkl', weight: 0.5 }]],
  ['fkl τ=2 + rkl τ=1 + ce + fkl τ=2', [{ objective: 'fkl', temperature: 2, weight: 0.3 }, { objective: 'rkl', weight: 0.2 },
    { objective: 'ce', weight: 0.5 }, { objective: 'fkl', temperature: 2, weight: 0.1, tau_squared: false }, { objective: 'rkl', weight: 0 }]],
];

/** Checks one backend on every mixture, shape and logit scale; returns the worst error / tolerance ratios. */
function checkBackend(be: Backend, lossTol: (l: number) => number, gradTol: (K: number, spread: number) => number): void {
  let seed = 1;
  for (const [name, spec] of MIXES) {
    const mix = Mixture.parse(spec, name);
    const plan = backendRowPlan(mix);
    assert.ok(plan, `${name}: covered by the backend kernels`);
    for (const [rows, V] of [[9, 37], [8, 64], [1, 5], [6, 1000]] as const) {
      for (const scale of [1, 8, 40]) {
        const rng = new Rng(seed++);
        const c = makeCase(rng, rows, V, scale, true);
        const want = expected(mix, c);
        const got = run(be, plan.parts, c);
        const np = plan.parts.length;
        for (let r = 0; r < rows; r++) {
          const where = `${be.name} ${name} rows=${rows} V=${V} scale=${scale} row ${r}`;
          const badRow = Array.from({ length: np }, (_, k) => want.loss[r * np + k]).some((l) => !Number.isFinite(l));
          const nonFinite: boolean = [...c.z.subarray(r * V, (r + 1) * V), ...(plan.parts.some((p) => p.kind !== 'ce') ? c.t.subarray(r * V, (r + 1) * V) : [])].some((x) => !Number.isFinite(x));
          const labelBad: boolean = plan.parts.some((p) => p.kind === 'ce') && c.labels[r] !== -100 && !(c.labels[r] >= 0 && c.labels[r] < V);
          const shouldRefuse: boolean = c.w[r] !== 0 && (nonFinite || labelBad);
          assert.equal(got.refused[r], shouldRefuse ? 1 : 0, `${where}: refused flag`);
          if (shouldRefuse) continue;
          assert.ok(!badRow || c.w[r] === 0, `${where}: the objectives failed on a row the kernel accepted`);
          let K = 0, spread = 0, lo = Infinity, hi = -Infinity;
          for (const p of plan.parts) K += Math.abs(c.w[r] * p.weight * p.scale / (p.kind === 'ce' ? 1 : p.tau));
          for (let j = 0; j < V; j++) for (const x of [c.z[r * V + j], c.t[r * V + j]]) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
          spread = hi - lo;
          for (let k = 0; k < np; k++) {
            const g = got.partLosses[r * np + k], e = c.w[r] === 0 ? 0 : want.loss[r * np + k];
            assert.ok(Math.abs(g - e) <= lossTol(e), `${where} part ${plan.keys[k]}: loss ${g} vs ${e} (|Δ| ${Math.abs(g - e).toExponential(2)})`);
          }
          const tol = gradTol(K, spread);
          for (let j = 0; j < V; j++) {
            const g = got.grad[r * V + j], e = want.grad[r * V + j];
            // + 4 float32 ulps of the value: both sides round their gradients to float32 (per part, then the sum)
            const t = tol + 4 * 2 ** -24 * Math.abs(e);
            if (!(Math.abs(g - e) <= t)) assert.fail(`${where} grad[${j}]: ${g} vs ${e} (|Δ| ${Math.abs(g - e).toExponential(2)} > ${t.toExponential(2)})`);
          }
        }
      }
    }
  }
}

describe('Backend.rowLosses vs the objectives\' row kernels', () => {
  test('reference backend', () => {
    checkBackend(refBackend, (l) => 1e-12 * (1 + Math.abs(l)), (K) => 1e-6 * K);
  });
  forEachNativeIsa((nb, use) => {
    test('native kernel', () => {
      use();
      checkBackend(nb, (l) => 2e-6 * (1 + Math.abs(l)), (K, spread) => 1e-6 * K * (1 + spread));
    });
    test('results do not depend on the thread count', () => {
      use();
      const mix = Mixture.parse([{ objective: 'ce', weight: 0.5 }, { objective: 'fkl', weight: 0.5, temperature: 2 }, { objective: 'rkl', weight: 0.1 }]);
      const plan = backendRowPlan(mix)!;
      const c = makeCase(new Rng(99), 67, 1031, 4, true);
      const outs = [1, 2, 3].map((n) => { setNativeThreads(n); return run(nb, plan.parts, c); });
      setNativeThreads(0);
      for (const o of outs.slice(1)) {
        assert.deepEqual(o.refused, outs[0].refused);
        assert.deepEqual(o.partLosses, outs[0].partLosses);
        assert.deepEqual(o.grad, outs[0].grad);
      }
    });
    test('bad arguments throw', () => {
      use();
      const parts: RowLossPart[] = [{ kind: 'fkl', weight: 1, tau: 1, scale: 1 }];
      const z = new Float32Array(8);
      const args = { rows: 2, V: 4, z, teacher: null, labels: null, weights: new Float32Array(2), parts, grad: new Float32Array(8), partLosses: new Float64Array(2), refused: new Uint8Array(2) };
      assert.throws(() => nb.rowLosses(args), /needs teacher logits/);
      assert.throws(() => nb.rowLosses({ ...args, teacher: z, grad: new Float32Array(7) }), /grad has 7 elements, needs 8/);
      assert.throws(() => nb.rowLosses({ ...args, teacher: z, parts: [{ kind: 'fkl', weight: 1, tau: 0, scale: 1 }] }), /tau must be positive/);
    });
  });
});
