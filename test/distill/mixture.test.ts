/** Loss mixtures (config parsing, weighting, parts for logging) and the TAID t schedule. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bindObjective, Mixture, rowKernelPerToken, TaidSchedule, tokenMask } from '../../src/distill/index.js';
import { UserError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose, randnArray } from './helpers.js';

const N = 5, V = 7;
function inputs(seed = 1) {
  const rng = new Rng(seed);
  return {
    student: new Tensor(randnArray(N * V, rng, 1.5), [N, V]),
    teacher: new Tensor(randnArray(N * V, rng, 2), [N, V]),
    labels: Int32Array.from([1, 4, -100, 6, 0]),
  };
}

describe('Mixture', () => {
  const yaml = [{ objective: 'fkl', weight: 0.5, temperature: 2 }, { objective: 'ce', weight: 0.5 }];
  test('weighted per-token loss and unweighted parts', () => {
    const mix = Mixture.parse(yaml);
    const inp = inputs();
    const { loss, parts } = mix.perToken(inp);
    const f = bindObjective('fkl', { temperature: 2 }).perToken(inp).data, c = bindObjective('ce').perToken(inp).data;
    assertClose(parts.fkl.data, f, 0, 0, 'fkl part');
    assertClose(parts.ce.data, c, 0, 0, 'ce part');
    assertClose(loss.data, Array.from(f, (x, i) => 0.5 * x + 0.5 * c[i]), 1e-6, 1e-6, 'weighted');
    assert.ok(mix.needsTeacher && mix.needsLabels);
  });
  test('maskedSum returns the sum, the count and each part’s token mean', () => {
    const mix = Mixture.parse(yaml);
    const inp = inputs(2);
    const mask = tokenMask(N, { labels: inp.labels });
    const r = mix.maskedSum(inp, mask);
    assert.equal(r.count, 4);
    const f = bindObjective('fkl', { temperature: 2 }).perToken(inp).data;
    const mean = [0, 1, 3, 4].reduce((a, i) => a + f[i], 0) / 4;
    assertClose([r.parts.fkl], [mean], 1e-6, 1e-6, 'fkl mean');
    assertClose([r.sum.item()], [0.5 * 4 * (r.parts.fkl + r.parts.ce)], 1e-5, 1e-5, 'sum');
  });
  test('row kernel of the mixture equals the composite', () => {
    const mix = Mixture.parse([{ objective: 'gjsd', beta: 0.2, weight: 2 }, { objective: 'tvd', weight: 0.25 }, { objective: 'ce' }]);
    const inp = inputs(3);
    const { loss } = mix.perToken(inp);
    const g = new Float32Array(V);
    for (let n = 0; n < N; n++) {
      const l = mix.rowLossGrad(inp.student.data.subarray(n * V, n * V + V), { teacher: { kind: 'dense', logits: inp.teacher.data.subarray(n * V, n * V + V) }, label: inp.labels[n] }, g);
      assertClose([l], [loss.data[n]], 1e-5, 1e-5, `row ${n}`);
      const parts = ['gjsd', 'tvd', 'ce'].map((name, i) => rowKernelPerToken(bindObjective(name, i === 0 ? { beta: 0.2 } : {}), inp, n, n + 1).grad);
      assertClose(g, Array.from(g, (_, v) => 2 * parts[0][v] + 0.25 * parts[1][v] + parts[2][v]), 1e-6, 1e-5, `grad ${n}`);
    }
  });
  test('repeated objectives get distinct keys; weight defaults to 1', () => {
    const mix = Mixture.parse([{ objective: 'fkl' }, { objective: 'fkl', temperature: 3 }]);
    assert.deepEqual(mix.parts.map((p) => [p.key, p.weight]), [['fkl', 1], ['fkl#2', 1]]);
    assert.equal(mix.parts[1].objective.options.temperature, 3);
  });
  test('withOptions sets TAID’s t for the step', () => {
    const mix = Mixture.parse([{ objective: 'taid' }, { objective: 'ce', weight: 0.1 }]);
    const inp = inputs(4);
    const at = (m: Mixture) => m.perToken(inp).parts.taid.data;
    const t1 = mix.withOptions('taid', { t: 1 });
    assert.equal(t1.parts[0].objective.options.t, 1);
    assertClose(at(t1), bindObjective('fkl', {}).perToken(inp).data, 1e-6, 1e-5, 't = 1 is forward KL');
    assert.notDeepEqual(at(mix), at(t1));
    assert.throws(() => mix.withOptions('taid', { t: 2 }), UserError);
  });
  const bad: [string, unknown, RegExp][] = [
    ['unknown key', [{ objective: 'fkl', weight: 0.5, temprature: 2 }], /loss\[0\]: unknown key "temprature"/],
    ['unknown objective', [{ objective: 'fkll' }], /unknown objective "fkll"; expected one of: ce, fkl/],
    ['missing objective', [{ weight: 1 }], /loss\[0\]: objective/],
    ['negative weight', [{ objective: 'ce', weight: -1 }], /loss\[0\]: weight/],
    ['option of another objective', [{ objective: 'ce', beta: 0.5 }], /unknown key "beta"/],
    ['empty', [], /at least one objective/],
  ];
  for (const [what, raw, re] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => Mixture.parse(raw), (e: unknown) => e instanceof UserError && re.test(e.message));
    });
  }
  test('a mixture refuses a sparse teacher its parts cannot use', () => {
    assert.throws(() => Mixture.parse([{ objective: 'fkl' }, { objective: 'rkl' }]).checkTeacher('sparse'), /rkl/);
    Mixture.parse([{ objective: 'fkl' }, { objective: 'rkl', sparse: 'tail' }]).checkTeacher('sparse');
  });
});

describe('TaidSchedule', () => {
  const opts = { t_start: 0.4, t_end: 1, alpha: 5e-4, beta: 0.99, adaptive: true };
  test('pure linear ramp when not adaptive: t_start → t_end over S steps', () => {
    const s = new TaidSchedule({ ...opts, adaptive: false }, 10);
    assert.equal(s.t, 0.4);
    const ts = Array.from({ length: 10 }, (_, i) => s.update(5 - i * 0.1, i));
    ts.forEach((t, i) => assertClose([t], [0.4 + (0.6 * (i + 1)) / 10], 1e-12, 0, `step ${i}`));
    assert.equal(ts[9], 1);
  });
  test('adaptive: first step only records the loss; t is monotone, ≥ the linear ramp, ≤ t_end, and rises faster while the loss improves', () => {
    const S = 200;
    const fast = new TaidSchedule({ ...opts, alpha: 0.05 }, S), flat = new TaidSchedule({ ...opts, alpha: 0.05 }, S);
    assert.equal(fast.update(10, 0), 0.4);
    flat.update(10, 0);
    let prev = 0.4, above = 0;
    for (let s = 1; s < S; s++) {
      const t = fast.update(10 * Math.exp(-s / 20), s);
      const ramp = 0.4 + (0.6 * (s + 1)) / S;
      assert.ok(t >= prev && t >= ramp - 1e-12 && t <= 1, `step ${s}: t = ${t}`);
      if (t > ramp + 1e-3) above++;
      prev = t;
      flat.update(10, s);
    }
    assert.ok(above > 50, `t above the ramp on ${above} steps`);
    assert.equal(prev, 1);
    const fastMid = new TaidSchedule({ ...opts, alpha: 0.05 }, S), flatMid = new TaidSchedule({ ...opts, alpha: 0.05 }, S);
    for (let s = 0; s < 20; s++) { fastMid.update(10 * Math.exp(-s / 5), s); flatMid.update(10, s); }
    assert.ok(fastMid.t > flatMid.t);
  });
  test('save/load state resumes the identical sequence (checkpointing)', () => {
    const losses = Array.from({ length: 40 }, (_, i) => 3 + Math.sin(i) - i * 0.02);
    const a = new TaidSchedule({ ...opts, alpha: 0.02 }, 40);
    const full = losses.map((l, i) => a.update(l, i));
    const b = new TaidSchedule({ ...opts, alpha: 0.02 }, 40);
    losses.slice(0, 17).forEach((l, i) => b.update(l, i));
    const saved = JSON.parse(JSON.stringify(b.saveState()));
    const c = new TaidSchedule({ ...opts, alpha: 0.02 }, 40, saved);
    const rest = losses.slice(17).map((l, i) => c.update(l, 17 + i));
    assert.deepEqual(rest, full.slice(17));
  });
  test('invalid schedules are UserErrors', () => {
    assert.throws(() => new TaidSchedule(opts, 0), UserError);
    assert.throws(() => new TaidSchedule({ ...opts, t_start: 0.9, t_end: 0.5 }, 10), UserError);
  });
});
