/**
 * Property tests of the logit objectives (torchtune/TRL style): zero on identical inputs, GJSD and
 * skew-KL limits, TVD bounds, masking, gradient-accumulation and chunking invariance, finite
 * differences, temperature scaling, and sparse k = V == dense. Each runs on both implementations
 * (composite + autodiff, analytic row kernel) where both exist.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bindObjective, maskedSum, rowKernelPerToken, tokenMask, tokenMean,
  type BoundObjective, type LogitInputs, type SparseTeacher, type TeacherSignal,
} from '../../src/distill/index.js';
import { UserError } from '../../src/errors.js';
import { backward } from '../../src/tensor/autodiff.js';
import { div, sum } from '../../src/tensor/ops.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { assertClose, randnArray, topK } from './helpers.js';

type Spec = [name: string, opts: Record<string, unknown>];
/** Divergences (zero on identical inputs). */
const DIVERGENCES: Spec[] = [
  ['fkl', { temperature: 2 }], ['rkl', {}], ['gjsd', { beta: 0 }], ['gjsd', { beta: 0.3 }], ['gjsd', { beta: 1 }],
  ['tvd', { temperature: 0.5 }], ['skew_fkl', { alpha: 0.2 }], ['skew_rkl', { alpha: 0.2 }], ['taid', { t: 0.5 }],
  ['bdkd', {}], ['bdkd', { weighting: 'akl' }], ['akl', {}], ['akl', { detach_weights: true }],
];
const ALL: Spec[] = [['ce', {}], ...DIVERGENCES, ['pld', { k: 4 }], ['pld', { k: 3, gold_first: false }]];
const label = ([n, o]: Spec): string => `${n} ${JSON.stringify(o)}`;

const N = 6, V = 9;

function makeInputs(seed: number, opts: { sparseK?: number; scale?: number } = {}): LogitInputs & { student: Tensor; zT: Float32Array } {
  const rng = new Rng(seed);
  const zS = randnArray(N * V, rng, opts.scale ?? 1.5);
  const zT = randnArray(N * V, rng, 2);
  for (let i = 0; i < zT.length; i++) zT[i] += 0.5 * zS[i];
  const labels = Int32Array.from({ length: N }, () => Math.floor(rng.nextFloat() * V));
  const teacher: TeacherSignal = opts.sparseK ? topK(zT, N, V, opts.sparseK, rng) : new Tensor(zT, [N, V]);
  return { student: new Tensor(zS, [N, V], true), teacher, labels, zT };
}

/** Composite token mean and its gradient. */
function composite(obj: BoundObjective, inp: LogitInputs, mask: Float32Array = new Float32Array(N).fill(1)): { loss: number; grad: Float32Array; per: Float32Array } {
  const student = new Tensor(inp.student.data.slice(), inp.student.shape, true);
  const per = obj.perToken({ ...inp, student });
  const loss = tokenMean(per, mask);
  if (loss.requiresGrad) backward(loss);
  return { loss: loss.item(), grad: student.grad?.data ?? new Float32Array(student.size), per: per.data };
}

/** Row-kernel token mean and its gradient. */
function rows(obj: BoundObjective, inp: LogitInputs, mask: Float32Array = new Float32Array(N).fill(1)): { loss: number; grad: Float32Array; per: Float64Array } {
  const { losses, grad } = rowKernelPerToken(obj, inp);
  let s = 0, c = 0;
  for (let n = 0; n < N; n++) if (mask[n]) { s += losses[n]; c++; }
  const g = new Float32Array(N * V);
  for (let n = 0; n < N; n++) if (mask[n]) for (let v = 0; v < V; v++) g[n * V + v] = grad[n * V + v] / c;
  return { loss: s / c, grad: g, per: losses };
}

/** Exact equality, elementwise (-0 == 0). */
function assertSame(a: ArrayLike<number>, b: ArrayLike<number>): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`[${i}]: ${a[i]} !== ${b[i]}`);
}
const maxAbs = (a: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };

describe('identical student and teacher → zero loss and zero gradient', () => {
  for (const spec of DIVERGENCES) {
    for (const sparse of [false, true]) {
      test(`${label(spec)}${sparse ? ' (sparse tail, k=4)' : ''}`, () => {
        const rng = new Rng(7);
        const z = randnArray(N * V, rng, 2);
        const teacher: TeacherSignal = sparse ? topK(z, N, V, 4, rng) : new Tensor(z.slice(), [N, V]);
        // sparse at τ = 1: a tempered tail bucket is only approximate (see src/distill/sparse.ts)
        const obj = bindObjective(spec[0], { ...spec[1], ...(sparse ? { sparse: 'tail', temperature: 1 } : {}) });
        const inp = { student: new Tensor(z, [N, V]), teacher };
        for (const r of [composite(obj, inp), rows(obj, inp)]) {
          assert.ok(Math.abs(r.loss) < 2e-6, `loss ${r.loss}`);
          assert.ok(maxAbs(r.grad) < 2e-6, `grad ${maxAbs(r.grad)}`);
        }
        // and a different teacher gives a positive loss (the test can fail)
        const other = makeInputs(8, sparse ? { sparseK: 4 } : {});
        assert.ok(rows(obj, { student: inp.student, teacher: other.teacher }).loss > 1e-3);
      });
    }
  }
});

describe('generalised JSD limits (TRL convention)', () => {
  const inp = makeInputs(11);
  const fkl = rows(bindObjective('fkl', { tau_squared: false }), inp).per;
  const rkl = rows(bindObjective('rkl', { tau_squared: false }), inp).per;
  test('β = 0 is exactly forward KL, β = 1 exactly reverse KL', () => {
    assertClose(rows(bindObjective('gjsd', { beta: 0 }), inp).per, fkl, 1e-12, 0, 'beta 0');
    assertClose(rows(bindObjective('gjsd', { beta: 1 }), inp).per, rkl, 1e-12, 0, 'beta 1');
    assertClose(composite(bindObjective('gjsd', { beta: 0 }), inp).per, fkl, 1e-5, 1e-5, 'beta 0 composite');
    assertClose(composite(bindObjective('gjsd', { beta: 1 }), inp).per, rkl, 1e-5, 1e-5, 'beta 1 composite');
  });
  test('JSD_β/β → FKL as β → 0 and JSD_β/(1−β) → RKL as β → 1 (the general formula vanishes at the ends)', () => {
    for (const eps of [1e-3, 1e-4]) {
      const lo = rows(bindObjective('gjsd', { beta: eps }), inp).per.map((x) => x / eps);
      const hi = rows(bindObjective('gjsd', { beta: 1 - eps }), inp).per.map((x) => x / eps);
      assertClose(lo, fkl, 0, 50 * eps, `beta ${eps}`);
      assertClose(hi, rkl, 0, 50 * eps, `beta 1-${eps}`);
      assert.ok(maxAbs(rows(bindObjective('gjsd', { beta: eps }), inp).per) < maxAbs(fkl) * 2 * eps);
    }
  });
});

describe('skew KL', () => {
  const inp = makeInputs(12);
  test('α = 0 equals plain KL (forward and reverse), and α → 0 approaches it', () => {
    const fkl = rows(bindObjective('fkl', {}), inp), rkl = rows(bindObjective('rkl', {}), inp);
    for (const [skew, plain] of [['skew_fkl', fkl], ['skew_rkl', rkl]] as const) {
      const at0 = rows(bindObjective(skew, { alpha: 0 }), inp);
      assertClose(at0.per, plain.per, 1e-12, 0, `${skew} loss`);
      assertClose(at0.grad, plain.grad, 1e-7, 0, `${skew} grad`);
      assertClose(composite(bindObjective(skew, { alpha: 0 }), inp).grad, plain.grad, 1e-6, 1e-4, `${skew} composite grad`);
      const near = rows(bindObjective(skew, { alpha: 1e-5 }), inp);
      assertClose(near.per, plain.per, 1e-3, 1e-3, `${skew} α→0`);
      assert.ok(rows(bindObjective(skew, { alpha: 0.5 }), inp).loss < plain.loss, 'skewing shrinks the divergence');
    }
  });
});

describe('TVD', () => {
  test('TVD ∈ [0, 1], reaching ≈ 1 for disjoint distributions', () => {
    const obj = bindObjective('tvd', {});
    for (let seed = 0; seed < 20; seed++) {
      const inp = makeInputs(100 + seed, { scale: seed < 10 ? 1 : 30 });
      for (const r of [rows(obj, inp).per, composite(obj, inp).per]) for (const x of r) assert.ok(x >= 0 && x <= 1 + 1e-6, `tvd ${x}`);
    }
    const zS = new Float32Array(V).fill(-50), zT = new Float32Array(V).fill(-50);
    zS[0] = 50; zT[1] = 50;
    const one = rowKernelPerToken(obj, { student: new Tensor(zS, [1, V]), teacher: new Tensor(zT, [1, V]) }).losses[0];
    assert.ok(Math.abs(one - 1) < 1e-6, `disjoint tvd ${one}`);
  });
});

describe('masked positions contribute nothing', () => {
  for (const spec of ALL) {
    test(label(spec), () => {
      const inp = makeInputs(21);
      const labels = inp.labels!.slice();
      labels[4] = -100; // ignored by label
      const maskIn = new Float32Array(N).fill(1);
      maskIn[1] = 0; // ignored by mask
      const mask = tokenMask(N, { mask: maskIn, labels });
      const obj = bindObjective(spec[0], spec[1]);
      const base = { ...inp, labels };
      const a = composite(obj, base, mask), ar = rows(obj, base, mask);
      const zS = inp.student.data.slice();
      for (const n of [1, 4]) for (let v = 0; v < V; v++) zS[n * V + v] = (v * 37 % 11) * 3 - 10; // very different rows
      const changed = { ...base, student: new Tensor(zS, [N, V]) };
      const b = composite(obj, changed, mask), br = rows(obj, changed, mask);
      assert.equal(b.loss, a.loss);
      assertSame(b.grad, a.grad);
      assert.equal(br.loss, ar.loss);
      assertSame(br.grad, ar.grad);
      for (const n of [1, 4]) assert.equal(maxAbs(a.grad.subarray(n * V, n * V + V)), 0);
      assert.ok(maxAbs(a.grad) > 0);
    });
  }
});

describe('gradient accumulation: Σ micro-batch sums / total count == full-batch token mean', () => {
  for (const spec of ALL) {
    test(label(spec), () => {
      const inp = makeInputs(31);
      const maskIn = Float32Array.from([1, 0, 1, 1, 1, 1]); // halves hold 2 and 3 counted tokens
      const mask = tokenMask(N, { mask: maskIn });
      const obj = bindObjective(spec[0], spec[1]);
      const full = composite(obj, inp, mask);
      const h = 3, total = 5;
      let loss = 0;
      const grad = new Float32Array(N * V);
      for (const [lo, hi] of [[0, h], [h, N]]) {
        const part = sliceInputs(inp, lo, hi);
        const { sum: s, count } = maskedSum(obj.perToken(part), mask.slice(lo, hi));
        assert.equal(count, lo === 0 ? 2 : 3);
        const scaled = div(s, total);
        loss += scaled.item();
        backward(scaled);
        grad.set(part.student.grad!.data, lo * V);
      }
      assertClose([loss], [full.loss], 1e-6, 1e-6, 'loss');
      assertClose(grad, full.grad, 1e-7, 1e-5, 'grad');
    });
  }
});

/** Rows [lo, hi) of the inputs, with a fresh differentiable student leaf. */
function sliceInputs(inp: LogitInputs, lo: number, hi: number): LogitInputs & { student: Tensor } {
  const t = inp.teacher;
  let teacher: TeacherSignal | undefined;
  if (t instanceof Tensor) teacher = new Tensor(t.data.slice(lo * V, hi * V), [hi - lo, V]);
  else if (t) teacher = { k: t.k, ids: t.ids.slice(lo * t.k, hi * t.k), logprobs: t.logprobs.slice(lo * t.k, hi * t.k) } satisfies SparseTeacher;
  return {
    student: new Tensor(inp.student.data.slice(lo * V, hi * V), [hi - lo, V], true),
    teacher,
    labels: inp.labels?.slice(lo, hi),
  };
}

describe('chunked == unchunked (any chunk size, both paths)', () => {
  for (const spec of ALL) {
    for (const sparse of [false, true]) {
      if (sparse && spec[0] === 'ce') continue;
      test(`${label(spec)}${sparse ? ' sparse' : ''}`, () => {
        const inp = makeInputs(41, sparse ? { sparseK: 4 } : {});
        const opts = { ...spec[1], ...(sparse && spec[0] !== 'pld' ? { sparse: 'tail' } : {}) };
        const obj = bindObjective(spec[0], opts);
        const full = obj.perToken(inp).data;
        const fullRows = rowKernelPerToken(obj, inp);
        for (const size of [1, 2, 4, N]) {
          for (let lo = 0; lo < N; lo += size) {
            const hi = Math.min(N, lo + size);
            const part = obj.perToken(sliceInputs(inp, lo, hi)).data;
            assertClose(part, full.subarray(lo, hi), 1e-6, 1e-6, `composite chunk ${size} @${lo}`);
            const pr = rowKernelPerToken(obj, inp, lo, hi);
            assertSame(pr.losses, fullRows.losses.subarray(lo, hi));
            assertSame(pr.grad, fullRows.grad.subarray(lo * V, hi * V));
          }
        }
      });
    }
  }
});

describe('finite-difference gradient checks (composite path)', () => {
  // TAID (t < 1) and BD-KD use detached targets/weights by design, so finite differences of the loss
  // differ from their (stop-gradient) gradients; they are checked at t = 1 / through fkl+rkl instead.
  const FD: Spec[] = [
    ['ce', {}], ['fkl', { temperature: 2 }], ['rkl', {}], ['gjsd', { beta: 0.3 }], ['tvd', {}],
    ['skew_fkl', { alpha: 0.2 }], ['skew_rkl', { alpha: 0.3 }], ['taid', { t: 1 }], ['akl', {}], ['akl', { mu: 0.3, temperature: 2 }],
    ['pld', { k: 4 }],
    ['fkl', { sparse: 'renormalize' }], ['fkl', { sparse: 'tail', temperature: 2 }], ['rkl', { sparse: 'tail' }],
    ['gjsd', { beta: 0.5, sparse: 'renormalize' }], ['tvd', { sparse: 'renormalize' }], ['skew_rkl', { sparse: 'tail' }],
  ];
  for (const spec of FD) {
    test(label(spec), () => {
      const sparse = 'sparse' in spec[1];
      const obj = bindObjective(spec[0], spec[1]);
      // |p − q| kinks (tvd, akl) are kept away from the probe: resample until every gap is ≥ 0.01
      for (let seed = 51; ; seed++) {
        const inp = makeInputs(seed, sparse ? { sparseK: 4 } : {});
        if (/tvd|akl/.test(spec[0]) && !gapsClear(inp)) continue;
        const x = new Tensor(inp.student.data.slice(), [N, V], true);
        const r = gradcheck((s) => obj.perToken({ ...inp, student: s }), [x], { eps: 1e-2, atol: 3e-3, rtol: 2e-2 });
        assert.ok(r.ok, `${r.worst} (max abs err ${r.maxAbsErr})`);
        break;
      }
    });
  }
  test('bdkd gradient = w_f ∇FKL + w_r ∇RKL with its detached entropy weights', () => {
    const inp = makeInputs(61);
    const b = rows(bindObjective('bdkd', {}), inp), f = rows(bindObjective('fkl', {}), inp), r = rows(bindObjective('rkl', {}), inp);
    for (let n = 0; n < N; n++) {
      const q = softmax(inp.student.data.subarray(n * V, n * V + V)), p = softmax((inp.teacher as Tensor).data.subarray(n * V, n * V + V));
      const hp = -p.reduce((a, x) => a + x * Math.log(x), 0), hq = -q.reduce((a, x) => a + x * Math.log(x), 0);
      const wr = hp / (hp + hq), wf = 1 - wr;
      assertClose([b.per[n]], [wf * f.per[n] + wr * r.per[n]], 1e-9, 1e-9, 'loss');
      for (let v = 0; v < V; v++) assertClose([b.grad[n * V + v]], [wf * f.grad[n * V + v] + wr * r.grad[n * V + v]], 1e-8, 1e-5, 'grad');
    }
  });
});

function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
function gapsClear(inp: LogitInputs): boolean {
  const t = inp.teacher;
  if (!(t instanceof Tensor)) return true;
  for (let n = 0; n < N; n++) {
    const q = softmax(inp.student.data.subarray(n * V, n * V + V)), p = softmax(t.data.subarray(n * V, n * V + V));
    if (q.some((x, i) => Math.abs(x - p[i]) < 0.01)) return false;
  }
  return true;
}

describe('temperature scaling', () => {
  const inp = makeInputs(71);
  const tau = 2.5;
  test('fkl: τ² on by default; equals τ² · KL of the logits divided by τ; soft-term gradient is τ(q_τ − p_τ)', () => {
    const withT2 = rows(bindObjective('fkl', { temperature: tau }), inp);
    const noT2 = rows(bindObjective('fkl', { temperature: tau, tau_squared: false }), inp);
    assertClose(withT2.per, noT2.per.map((x) => x * tau * tau), 1e-12, 1e-12, 'τ² factor');
    const scaled = { student: new Tensor(inp.student.data.map((x) => x / tau), [N, V]), teacher: new Tensor((inp.teacher as Tensor).data.map((x) => x / tau), [N, V]) };
    assertClose(noT2.per, rows(bindObjective('fkl', {}), scaled).per, 1e-5, 1e-5, 'logits / τ');
    const c = composite(bindObjective('fkl', { temperature: tau }), inp);
    for (let n = 0; n < N; n++) {
      const q = softmax(inp.student.data.subarray(n * V, n * V + V).map((x) => x / tau));
      const p = softmax((inp.teacher as Tensor).data.subarray(n * V, n * V + V).map((x) => x / tau));
      for (let v = 0; v < V; v++) assertClose([c.grad[n * V + v] * N], [tau * (q[v] - p[v])], 1e-6, 1e-4, `grad row ${n}`);
    }
  });
  test('gjsd and tvd: no τ² by default (TRL), τ² when asked', () => {
    for (const name of ['gjsd', 'tvd']) {
      const plain = rows(bindObjective(name, { temperature: tau }), inp).per;
      const t2 = rows(bindObjective(name, { temperature: tau, tau_squared: true }), inp).per;
      assertClose(t2, plain.map((x) => x * tau * tau), 1e-12, 1e-12, name);
    }
  });
  test('higher τ flattens both distributions: the unscaled KL shrinks', () => {
    const kl = (t: number) => rows(bindObjective('fkl', { temperature: t, tau_squared: false }), inp).loss;
    assert.ok(kl(1) > kl(2) && kl(2) > kl(4) && kl(4) > 0);
  });
});

describe('sparse teacher with k = V equals the dense teacher', () => {
  const specs: Spec[] = [...DIVERGENCES, ['pld', { k: 5 }], ['pld', { k: 4, gold_first: false }]];
  for (const spec of specs) {
    const modes = spec[0] === 'pld' ? [undefined] : ['renormalize', 'tail'];
    for (const mode of modes) {
      const opts = { ...spec[1], ...(mode ? { sparse: mode } : {}) };
      const obj = bindObjective(spec[0], opts);
      if (mode === 'renormalize' && (() => { try { obj.checkTeacher('sparse'); return false; } catch { return true; } })()) continue;
      test(`${label([spec[0], opts])}`, () => {
        const dense = makeInputs(81);
        const sparse = { ...dense, teacher: topK(dense.zT, N, V, V, new Rng(3)) };
        const d = composite(obj, dense), s = composite(obj, sparse);
        assertClose(s.per, d.per, 2e-6, 1e-5, 'composite per-token');
        assertClose(s.grad, d.grad, 2e-6, 1e-4, 'composite grad');
        const dr = rows(obj, dense), sr = rows(obj, sparse);
        assertClose(sr.per, dr.per, 2e-6, 1e-5, 'row per-token');
        assertClose(sr.grad, dr.grad, 2e-6, 1e-4, 'row grad');
        // and with k < V the sparse loss differs (the test can fail); PLD without the gold label only
        // reads the teacher's top-k ranking, which a top-k teacher gives exactly
        if (spec[0] !== 'pld' || spec[1].gold_first !== false) {
          const k3 = { ...dense, teacher: topK(dense.zT, N, V, 3) };
          assert.ok(maxAbs(rows(obj, k3).per.map((x, i) => x - dr.per[i])) > 1e-4);
        }
      });
    }
  }
});

describe('sparse teachers: treatments of the missing mass', () => {
  test("objectives with KL(q‖p) refuse 'renormalize' and name 'tail'", () => {
    const inp = makeInputs(91, { sparseK: 4 });
    for (const [name, opts] of [['rkl', {}], ['bdkd', {}], ['akl', {}], ['gjsd', { beta: 1 }], ['skew_rkl', { alpha: 0 }]] as Spec[]) {
      const obj = bindObjective(name, opts);
      assert.throws(() => obj.perToken(inp), (e: unknown) => e instanceof UserError && /sparse: 'tail'/.test(e.message), name);
      assert.throws(() => rowKernelPerToken(obj, inp), UserError, name);
      assert.ok(Number.isFinite(bindObjective(name, { ...opts, sparse: 'tail' }).perToken(inp).data[0]));
    }
  });
  test("'renormalize' fkl is DistillKit's Σ_K p̂ (log p̂ − log q); tvd adds the student's tail mass r_S", () => {
    const inp = makeInputs(92, { sparseK: 3 });
    const t = inp.teacher as SparseTeacher;
    const fkl = rows(bindObjective('fkl', {}), inp).per, tvd = rows(bindObjective('tvd', {}), inp).per;
    for (let n = 0; n < N; n++) {
      const q = softmax(inp.student.data.subarray(n * V, n * V + V));
      const p = Array.from(t.logprobs.subarray(n * 3, n * 3 + 3), Math.exp);
      const Pk = p.reduce((a, b) => a + b, 0);
      const ids = Array.from(t.ids.subarray(n * 3, n * 3 + 3));
      const f = ids.reduce((a, id, j) => a + (p[j] / Pk) * (Math.log(p[j] / Pk) - Math.log(q[id])), 0);
      const rS = 1 - ids.reduce((a, id) => a + q[id], 0);
      const tv = 0.5 * (ids.reduce((a, id, j) => a + Math.abs(p[j] / Pk - q[id]), 0) + rS);
      assertClose([fkl[n], tvd[n]], [f, tv], 1e-6, 1e-6, `row ${n}`);
    }
  });
  test("'tail' fkl adds r_T log(r_T / r_S); at small k it pulls the student's tail mass toward the teacher's", () => {
    const inp = makeInputs(93, { sparseK: 2 });
    const t = inp.teacher as SparseTeacher;
    const fkl = rows(bindObjective('fkl', { sparse: 'tail' }), inp);
    for (let n = 0; n < N; n++) {
      const q = softmax(inp.student.data.subarray(n * V, n * V + V));
      const ids = Array.from(t.ids.subarray(n * 2, n * 2 + 2));
      const p = Array.from(t.logprobs.subarray(n * 2, n * 2 + 2), Math.exp);
      const rT = 1 - p[0] - p[1], rS = 1 - q[ids[0]] - q[ids[1]];
      const f = p.reduce((a, pj, j) => a + pj * Math.log(pj / q[ids[j]]), 0) + rT * Math.log(rT / rS);
      assertClose([fkl.per[n]], [f], 1e-6, 1e-6, `row ${n}`);
      // gradient on a logit outside the top-k has the sign of (r_S − r_T) · q_v
      const v = [...Array(V).keys()].find((x) => !ids.includes(x))!;
      assert.equal(Math.sign(fkl.grad[n * V + v]), Math.sign(rS * (rS - rT)) || Math.sign(rS - rT));
    }
  });
  test('k = 1 with renormalize is CE on the teacher argmax', () => {
    const inp = makeInputs(94, { sparseK: 1 });
    const argmax = (inp.teacher as SparseTeacher).ids;
    const a = rows(bindObjective('fkl', {}), inp), b = rows(bindObjective('ce', {}), { ...inp, labels: argmax });
    assertClose(a.per, b.per, 1e-9, 1e-9, 'loss');
    assertClose(a.grad, b.grad, 1e-9, 1e-7, 'grad');
  });
});

describe('-inf logits (masked vocabulary)', () => {
  test('ce: a -inf logit 0 with an ignored position gives no NaN', () => {
    const inp = makeInputs(96);
    const zS = inp.student.data.slice();
    zS[0] = -Infinity; // ignored rows gather flat index 0 in crossEntropyPerToken
    const labels = inp.labels!.slice();
    labels[0] = 1;
    labels[2] = -100;
    const r = composite(bindObjective('ce'), { student: new Tensor(zS, [N, V]), labels }, tokenMask(N, { labels }));
    assert.ok(Number.isFinite(r.loss) && r.grad.every(Number.isFinite));
    assert.equal(r.per[2], 0);
  });
  test('a token masked in both models is dropped: same loss as without it, zero gradient there', () => {
    const inp = makeInputs(95);
    const zS = inp.student.data.slice(), zT = (inp.teacher as Tensor).data.slice();
    for (let n = 0; n < N; n++) { zS[n * V + 3] = -Infinity; zT[n * V + 3] = -Infinity; }
    const masked = { student: new Tensor(zS, [N, V]), teacher: new Tensor(zT, [N, V]) };
    const drop = (a: Float32Array) => Float32Array.from(a.filter((_, i) => i % V !== 3));
    const small = { student: new Tensor(drop(zS), [N, V - 1]), teacher: new Tensor(drop(zT), [N, V - 1]) };
    for (const spec of DIVERGENCES) {
      const obj = bindObjective(spec[0], spec[1]);
      const c = composite(obj, masked);
      assert.ok(Number.isFinite(c.loss) && c.grad.every(Number.isFinite), label(spec));
      for (let n = 0; n < N; n++) assert.equal(c.grad[n * V + 3], 0);
      const ref = rowKernelPerToken(obj, small).losses;
      assertClose(rows(obj, masked).per, ref, 1e-9, 1e-9, label(spec));
      assertClose(c.per, ref, 1e-5, 1e-5, label(spec));
    }
  });
});
