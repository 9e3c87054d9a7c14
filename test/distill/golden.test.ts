/**
 * Every objective against the PyTorch golden fixture (tools/golden/objectives.py: an independent
 * PyTorch implementation written from methods.md, gradients by autograd). Both of our paths are
 * checked: the composite (tensor ops + autodiff) and the analytic row kernels.
 * Tolerance: |ours − torch| ≤ 1e-5 + 1e-4·|torch| for losses, per-token losses and gradients.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attentionKlPerToken, bindObjective, HiddenStateDistiller, rowKernelPerToken, tokenMask, tokenMean, trgPerToken,
  type SparseTeacher, type TeacherSignal,
} from '../../src/distill/index.js';
import { Linear } from '../../src/nn/layers.js';
import { backward } from '../../src/tensor/autodiff.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { readFixture, toTensor, type JsonTensor } from '../helpers/fixtures.js';
import { assertClose, withNegInf } from './helpers.js';

const ATOL = 1e-5, RTOL = 1e-4;

interface LogitCase {
  name: string; objective: string; options: Record<string, unknown>; B: number; T: number; V: number;
  student: JsonTensor; teacher?: JsonTensor; sparse?: { ids: JsonTensor; logprobs: JsonTensor; k: number };
  labels: JsonTensor; mask: JsonTensor; neg_inf?: { student: number[]; teacher: number[] };
  loss: number; per_token: JsonTensor; grad: JsonTensor;
}
interface FeatureCase {
  name: string; kind: 'hidden' | 'attention' | 'trg'; options: Record<string, unknown>; mask: JsonTensor; loss: number; per_token: JsonTensor;
  loss_kind?: 'mse' | 'cosine'; map?: [number, number][];
  student: JsonTensor | JsonTensor[]; teacher: JsonTensor | JsonTensor[]; W?: JsonTensor | JsonTensor[] | null;
  grad_student: JsonTensor | JsonTensor[]; grad_W?: JsonTensor | JsonTensor[] | null;
}
const fixture = readFixture<{ logit_cases: LogitCase[]; feature_cases: FeatureCase[] }>('golden/objectives.json');

function inputsOf(c: LogitCase) {
  const N = c.B * c.T;
  const student = withNegInf(c.student, c.neg_inf?.student, true).detach();
  const teacher: TeacherSignal | undefined = c.sparse
    ? ({ ids: Int32Array.from(c.sparse.ids.data), logprobs: Float32Array.from(c.sparse.logprobs.data), k: c.sparse.k } satisfies SparseTeacher)
    : c.teacher ? withNegInf(c.teacher, c.neg_inf?.teacher) : undefined;
  const labels = Int32Array.from(c.labels.data);
  const mask = tokenMask(N, { mask: c.mask.data, labels });
  return { N, student: new Tensor(student.data, [N, c.V], true), teacher, labels, mask };
}

describe('golden: logit objectives vs PyTorch', () => {
  test('fixture covers every objective, both sparse treatments and -inf logits', () => {
    const names = new Set(fixture.logit_cases.map((c) => c.objective));
    for (const n of ['ce', 'fkl', 'rkl', 'gjsd', 'tvd', 'skew_fkl', 'skew_rkl', 'taid', 'bdkd', 'akl', 'pld']) assert.ok(names.has(n), n);
    const modes = new Set(fixture.logit_cases.filter((c) => c.sparse).map((c) => c.options.sparse ?? 'renormalize'));
    assert.deepEqual([...modes].sort(), ['renormalize', 'tail']);
    assert.ok(fixture.logit_cases.some((c) => c.neg_inf));
  });

  for (const c of fixture.logit_cases) {
    test(`${c.name} — composite`, () => {
      const { student, teacher, labels, mask } = inputsOf(c);
      const obj = bindObjective(c.objective, c.options);
      const per = obj.perToken({ student, teacher, labels });
      assertClose(per.data, c.per_token.data, ATOL, RTOL, 'per-token loss');
      const loss = tokenMean(per, mask);
      assertClose([loss.item()], [c.loss], ATOL, RTOL, 'loss');
      backward(loss);
      assertClose(student.grad!.data, c.grad.data, ATOL, RTOL, 'grad');
    });
    test(`${c.name} — row kernel`, () => {
      const { N, student, teacher, labels, mask } = inputsOf(c);
      const obj = bindObjective(c.objective, c.options);
      const { losses, grad } = rowKernelPerToken(obj, { student, teacher, labels });
      assertClose(losses, c.per_token.data, ATOL, RTOL, 'per-token loss');
      let count = 0, sum = 0;
      for (let n = 0; n < N; n++) if (mask[n]) { count++; sum += losses[n]; }
      assertClose([sum / count], [c.loss], ATOL, RTOL, 'loss');
      const g = new Float32Array(N * c.V);
      for (let n = 0; n < N; n++) if (mask[n]) for (let v = 0; v < c.V; v++) g[n * c.V + v] = grad[n * c.V + v] / count;
      assertClose(g, c.grad.data, ATOL, RTOL, 'grad');
    });
  }
});

describe('golden: feature objectives vs PyTorch', () => {
  for (const c of fixture.feature_cases) {
    test(c.name, () => {
      const mask = Float32Array.from(c.mask.data);
      if (c.kind === 'hidden') {
        const hs = (c.student as JsonTensor[]).map((t) => toTensor(t, true));
        const ht = (c.teacher as JsonTensor[]).map((t) => toTensor(t));
        const W = c.W as JsonTensor[];
        const d = new HiddenStateDistiller(c.loss_kind!, { layer_map: c.options.layer_map as 'uniform', projection: 'auto', init: 'xavier' },
          { studentWidth: hs[0].shape[2], teacherWidth: ht[0].shape[2], studentLayers: hs.length, teacherLayers: ht.length }, new Rng(0));
        assert.deepEqual(d.map, c.map);
        assert.equal(d.projections.filter(Boolean).length, W.length);
        W.forEach((w, i) => d.projections[i]!.weight.data.set(w.data));
        const per = d.perToken(hs, ht);
        assertClose(per.data, c.per_token.data, ATOL, RTOL, 'per-token');
        const loss = tokenMean(per, mask);
        assertClose([loss.item()], [c.loss], ATOL, RTOL, 'loss');
        backward(loss);
        (c.grad_student as JsonTensor[]).forEach((g, i) => assertClose(hs[i].grad!.data, g.data, ATOL, RTOL, `grad student layer ${i}`));
        (c.grad_W as JsonTensor[]).forEach((g, i) => assertClose(d.projections[i]!.weight.grad!.data, g.data, ATOL, RTOL, `grad W ${i}`));
      } else if (c.kind === 'attention') {
        const aS = toTensor(c.student as JsonTensor, true), aT = toTensor(c.teacher as JsonTensor);
        const per = attentionKlPerToken(aS, aT, c.options as { heads: 'match' | 'average' });
        assertClose(per.data, c.per_token.data, ATOL, RTOL, 'per-token');
        const loss = tokenMean(per, mask);
        assertClose([loss.item()], [c.loss], ATOL, RTOL, 'loss');
        backward(loss);
        assertClose(aS.grad!.data, (c.grad_student as JsonTensor).data, ATOL, RTOL, 'grad');
      } else {
        const hs = toTensor(c.student as JsonTensor, true), ht = toTensor(c.teacher as JsonTensor);
        const W = c.W as JsonTensor;
        const proj = new Linear(W.shape[1], W.shape[0], false, new Rng(0));
        proj.weight.data.set(W.data);
        const opts = c.options as { top_k: number; ctx_weight: number; ctx_temperature: number };
        const per = trgPerToken(hs, ht, opts, mask, proj);
        assertClose(per.data, c.per_token.data, ATOL, RTOL, 'per-token');
        const loss = tokenMean(per, mask);
        assertClose([loss.item()], [c.loss], ATOL, RTOL, 'loss');
        backward(loss);
        assertClose(hs.grad!.data, (c.grad_student as JsonTensor).data, ATOL, RTOL, 'grad student');
        if (c.grad_W) assertClose(proj.weight.grad!.data, (c.grad_W as JsonTensor).data, ATOL, RTOL, 'grad W');
      }
    });
  }
});
