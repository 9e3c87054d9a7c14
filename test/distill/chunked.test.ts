/**
 * The fused chunked linear + loss path equals the unfused path (logits materialised, objective composed
 * from tensor ops, autodiff) on loss and on the gradients w.r.t. the hidden states and the head weight,
 * for every logit objective, dense and sparse teachers, masks, and any chunk size.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fusedLinearLoss } from '../../src/distill/chunked.js';
import { Mixture } from '../../src/distill/mixture.js';
import { tokenMask } from '../../src/distill/reduce.js';
import { rowTargetAt } from '../../src/distill/rows.js';
import type { SparseTeacher, TeacherSignal } from '../../src/distill/types.js';
import { backward } from '../../src/tensor/autodiff.js';
import { matmul, mul, sum } from '../../src/tensor/ops.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { topkFromLogits } from '../../src/teachers/teacher.js';
import { Rng } from '../../src/util/rng.js';

const N = 7, C = 5, V = 11;
function randn(shape: number[], rng: Rng, scale = 1, grad = false): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Float32Array.from({ length: n }, () => rng.normal() * scale), shape, grad);
}

const cases: [string, unknown[], 'dense' | 'sparse'][] = [
  ['fkl τ=2 + ce', [{ objective: 'fkl', temperature: 2, weight: 0.5 }, { objective: 'ce', weight: 0.5 }], 'dense'],
  ['rkl', [{ objective: 'rkl' }], 'dense'],
  ['gjsd β=0.3', [{ objective: 'gjsd', beta: 0.3 }], 'dense'],
  ['tvd', [{ objective: 'tvd' }], 'dense'],
  ['skew_rkl', [{ objective: 'skew_rkl', alpha: 0.2 }], 'dense'],
  ['taid t=0.6', [{ objective: 'taid', t: 0.6 }], 'dense'],
  ['akl', [{ objective: 'akl' }], 'dense'],
  ['bdkd', [{ objective: 'bdkd' }], 'dense'],
  ['pld k=4', [{ objective: 'pld', k: 4 }], 'dense'],
  ['sparse fkl tail + rkl tail', [{ objective: 'fkl', sparse: 'tail' }, { objective: 'rkl', sparse: 'tail', weight: 0.3 }], 'sparse'],
];

for (const [name, loss, kind] of cases) {
  test(`fused chunked == unfused: ${name}`, () => {
    const rng = new Rng(name.length * 7 + 1);
    const mixture = Mixture.parse(loss, name);
    const hData = randn([N, C], rng), wData = randn([V, C], rng, 0.7);
    const tLogits = randn([N, V], rng, 1.5);
    const teacher: TeacherSignal = kind === 'dense' ? tLogits : (() => { const t = topkFromLogits(tLogits.data, V, 5); return { ids: t.ids, logprobs: t.logprobs, k: t.k } satisfies SparseTeacher; })();
    const labels = Int32Array.from({ length: N }, (_, i) => (i === 2 ? -100 : rng.int(V)));
    const mask = tokenMask(N, { labels });
    const count = mask.reduce((a, b) => a + b, 0);
    const weights = Float32Array.from(mask, (m) => m / count);

    // unfused reference
    const h1 = new Tensor(hData.data.slice(), [N, C], true), w1 = new Tensor(wData.data.slice(), [V, C], true);
    const logits = matmul(h1, w1, true);
    const ref = sum(mul(mixture.perToken({ student: logits, teacher, labels }).loss, new Tensor(weights, [N])));
    backward(ref);

    for (const chunk of [1, 3, N]) {
      const h2 = new Tensor(hData.data.slice(), [N, C], true), w2 = new Tensor(wData.data.slice(), [V, C], true);
      const inputs = { student: new Tensor(new Float32Array(N * V), [N, V]), teacher, labels };
      const { loss: fused } = fusedLinearLoss(h2, w2, (z, tgt, g) => mixture.rowLossGrad(z, tgt, g), () => (r) => rowTargetAt(inputs, r, V), weights, chunk);
      backward(fused);
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 + 1e-4 * Math.abs(b);
      assert.ok(close(fused.item(), ref.item()), `chunk ${chunk}: loss ${fused.item()} vs ${ref.item()}`);
      h2.grad!.data.forEach((v, i) => assert.ok(close(v, h1.grad!.data[i]), `chunk ${chunk}: dh[${i}] ${v} vs ${h1.grad!.data[i]}`));
      w2.grad!.data.forEach((v, i) => assert.ok(close(v, w1.grad!.data[i]), `chunk ${chunk}: dW[${i}] ${v} vs ${w1.grad!.data[i]}`));
    }
  });
}

test('fused path: masked rows contribute nothing and memory is per chunk', () => {
  const rng = new Rng(3);
  const mixture = Mixture.parse([{ objective: 'fkl' }], 'fkl');
  const h = randn([N, C], rng, 1, true), W = randn([V, C], rng, 1, true);
  const t = randn([N, V], rng);
  const weights = new Float32Array(N).fill(0);
  weights[4] = 1;
  const inputs = { student: new Tensor(new Float32Array(N * V), [N, V]), teacher: t };
  const seen: number[] = [];
  const { loss, rowLosses } = fusedLinearLoss(h, W, (z, tgt, g, r) => { seen.push(r); return mixture.rowLossGrad(z, tgt, g); }, () => (r) => rowTargetAt(inputs, r, V), weights, 2);
  assert.deepEqual(seen, [4], 'only unmasked rows are evaluated');
  assert.equal(loss.item(), Math.fround(rowLosses[4]));
  backward(loss);
  for (let r = 0; r < N; r++) if (r !== 4) for (let c = 0; c < C; c++) assert.equal(h.grad!.data[r * C + c], 0);
});
