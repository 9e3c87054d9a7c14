/**
 * `computeObjective` on nested arrays: every objective name, dense and sparse teachers, masks and
 * labels; results equal the tensor-level objective and the row kernels; bad input → UserError naming
 * the argument and the expected shape.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bindObjective, computeObjective, objectiveNames, rowKernelPerToken, tokenMask, type ComputeObjectiveInput } from '../../src/distill/index.js';
import { UserError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose } from './helpers.js';

const B = 2, T = 3, V = 8;
const OPTIONS: Record<string, Record<string, unknown>> = {
  ce: {}, fkl: { temperature: 2 }, rkl: {}, gjsd: { beta: 0.1 }, tvd: {}, skew_fkl: { alpha: 0.1 }, skew_rkl: { alpha: 0.5 },
  taid: { t: 0.7 }, bdkd: {}, akl: {}, pld: { k: 4 },
};

function nested(rng: Rng, scale: number): number[][][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => Array.from({ length: V }, () => rng.normal() * scale)));
}
function sparseOf(logits: number[][][], k: number): { ids: number[][][]; logprobs: number[][][] } {
  const ids: number[][][] = [], logprobs: number[][][] = [];
  for (const seq of logits) {
    ids.push([]); logprobs.push([]);
    for (const row of seq) {
      const m = Math.max(...row), lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const top = row.map((x, i) => [x, i]).sort((a, b) => b[0] - a[0]).slice(0, k);
      ids[ids.length - 1].push(top.map(([, i]) => i));
      logprobs[logprobs.length - 1].push(top.map(([x]) => x - lse));
    }
  }
  return { ids, logprobs };
}
function baseInput(seed = 1): Required<Pick<ComputeObjectiveInput, 'student' | 'labels' | 'mask'>> & { teacher: number[][][] } {
  const rng = new Rng(seed);
  return {
    student: nested(rng, 1.5),
    teacher: nested(rng, 2),
    labels: [[1, 2, -100], [0, 7, 3]],
    mask: [[0, 1, 1], [1, 1, 1]],
  };
}

describe('computeObjective: every objective on nested arrays', () => {
  test('names are exactly the config names', () => {
    assert.deepEqual([...objectiveNames].sort(), Object.keys(OPTIONS).sort());
  });
  for (const name of objectiveNames) {
    for (const sparse of [false, true]) {
      if (sparse && name === 'ce') continue;
      test(`${name}${sparse ? ' (sparse top-4, tail)' : ''}`, () => {
        const inp = baseInput();
        const options = { ...OPTIONS[name], ...(sparse && name !== 'pld' ? { sparse: 'tail' } : {}) };
        const sp = sparseOf(inp.teacher, 4);
        const teacher = sparse ? sp : inp.teacher;
        const r = computeObjective(name, { ...inp, teacher }, options);
        assert.equal(r.gradStudent.length, B);
        assert.equal(r.gradStudent[0].length, T);
        assert.equal(r.gradStudent[0][0].length, V);
        assert.equal(r.tokens, 4); // mask drops (0,0), label -100 drops (0,2)
        // the same through the tensor-level API and the row kernels
        const N = B * T;
        const student = new Tensor(Float32Array.from(inp.student.flat(2)), [N, V]);
        const tch = sparse
          ? { ids: Int32Array.from(sp.ids.flat(2)), logprobs: Float32Array.from(sp.logprobs.flat(2)), k: 4 }
          : new Tensor(Float32Array.from(inp.teacher.flat(2)), [N, V]);
        const labels = Int32Array.from(inp.labels.flat());
        const mask = tokenMask(N, { mask: inp.mask.flat(), labels });
        const { losses, grad } = rowKernelPerToken(bindObjective(name, options), { student, teacher: tch, labels });
        let s = 0;
        for (let n = 0; n < N; n++) if (mask[n]) s += losses[n];
        assertClose([r.loss], [s / 4], 1e-6, 1e-5, 'loss');
        const g = r.gradStudent.flat(2);
        for (let n = 0; n < N; n++) for (let v = 0; v < V; v++) {
          assertClose([g[n * V + v]], [mask[n] ? grad[n * V + v] / 4 : 0], 1e-6, 1e-4, `grad [${n}][${v}]`);
        }
        assert.ok(Number.isFinite(r.loss) && r.loss !== 0);
      });
    }
  }
  test('defaults apply when options are omitted (gjsd β = 0.5 is between its KL limits)', () => {
    const inp = baseInput(2);
    const d = computeObjective('gjsd', inp).loss;
    assert.equal(d, computeObjective('gjsd', inp, { beta: 0.5 }).loss);
    assert.ok(d > 0 && d < computeObjective('fkl', inp, { tau_squared: false }).loss);
  });
  test('no counted position: loss 0, zero gradient', () => {
    const inp = baseInput(3);
    const r = computeObjective('fkl', { ...inp, mask: [[0, 0, 0], [0, 0, 0]] });
    assert.equal(r.loss, 0);
    assert.equal(r.tokens, 0);
    assert.ok(r.gradStudent.flat(2).every((x) => x === 0));
  });
  test('-Infinity logits (masked vocabulary) are accepted', () => {
    const inp = baseInput(4);
    for (const s of inp.student) for (const row of s) row[5] = -Infinity;
    for (const s of inp.teacher) for (const row of s) row[5] = -Infinity;
    const r = computeObjective('rkl', inp);
    assert.ok(Number.isFinite(r.loss));
    assert.ok(r.gradStudent.flat(1).every((row) => row[5] === 0));
  });
});

describe('computeObjective: invalid input → UserError naming the argument', () => {
  const inp = baseInput(5);
  const cases: [string, () => unknown, RegExp][] = [
    ['unknown objective', () => computeObjective('kl', inp), /unknown objective "kl".*fkl/],
    ['unknown option', () => computeObjective('fkl', inp, { temprature: 2 }), /unknown key "temprature"/],
    ['bad option value', () => computeObjective('gjsd', inp, { beta: 2 }), /beta/],
    ['bad sparse mode', () => computeObjective('fkl', inp, { sparse: 'zero' }), /sparse/],
    ['student not 3-D', () => computeObjective('fkl', { ...inp, student: [[1, 2]] as unknown as number[][][] }), /student must be a nested array of shape \[B\]\[T\]\[V\]/],
    ['ragged student', () => computeObjective('fkl', { ...inp, student: [inp.student[0], inp.student[1].slice(0, 2)] }), /student\[1\] has 2 rows, expected T = 3/],
    ['ragged vocab', () => computeObjective('fkl', { ...inp, student: [inp.student[0], [inp.student[1][0], inp.student[1][1].slice(1), inp.student[1][2]]] }), /student\[1\]\[1\] has 7 entries, expected 8/],
    ['NaN logit', () => computeObjective('fkl', { ...inp, student: inp.student.map((s, b) => s.map((r, t) => r.map((x, v) => (b + t + v === 0 ? NaN : x)))) }), /student\[0\]\[0\]\[0\] = NaN/],
    ['all -inf row', () => computeObjective('fkl', { ...inp, teacher: inp.teacher.map((s, b) => s.map((r, t) => (b === 1 && t === 2 ? r.map(() => -Infinity) : r))) }), /teacher\[1\]\[2\] has no finite logit/],
    ['teacher shape', () => computeObjective('fkl', { ...inp, teacher: inp.teacher.map((s) => s.map((r) => r.slice(1))) }), /teacher must have shape \[B\]\[T\]\[V\] = \[2\]\[3\]\[8\]/],
    ['missing teacher', () => computeObjective('fkl', { student: inp.student }), /needs a teacher/],
    ['missing labels', () => computeObjective('ce', { student: inp.student }), /needs labels \[B\]\[T\] = \[2\]\[3\]/],
    ['pld labels', () => computeObjective('pld', { student: inp.student, teacher: inp.teacher }), /needs labels/],
    ['labels shape', () => computeObjective('ce', { ...inp, labels: [[1, 2, 3]] }), /labels must be a nested array of shape \[B\]\[T\] = \[2\]\[3\]/],
    ['label out of vocab', () => computeObjective('ce', { ...inp, labels: [[1, 2, 8], [0, 1, 2]] }), /labels\[0\]\[2\] = 8 must be a token id in \[0, 8\) or -100/],
    ['mask values', () => computeObjective('fkl', { ...inp, mask: [[0.5, 1, 1], [1, 1, 1]] }), /mask\[0\]\[0\] = 0.5 must be 0 or 1/],
    ['sparse shape', () => computeObjective('fkl', { ...inp, teacher: { ids: [[[1, 2]]], logprobs: [[[-1, -2]]] } }), /teacher.ids must have shape \[B\]\[T\]\[k\] = \[2\]\[3\]\[k\]/],
    ['sparse id range', () => computeObjective('fkl', { ...inp, teacher: sparseWith((ids) => { ids[1][1][0] = 9; }) }), /teacher.ids\[1\]\[1\]\[0\] = 9 is outside the vocabulary \[0, 8\)/],
    ['sparse duplicate', () => computeObjective('fkl', { ...inp, teacher: sparseWith((ids) => { ids[0][1][1] = ids[0][1][0]; }) }), /appears twice in row 1/],
    ['sparse positive logprob', () => computeObjective('fkl', { ...inp, teacher: sparseWith(undefined, (lp) => { lp[0][0][0] = 0.5; }) }), /not a log-probability/],
    ['sparse mass > 1', () => computeObjective('fkl', { ...inp, teacher: sparseWith(undefined, (lp) => { lp[0][0][0] = -0.1; lp[0][0][1] = -0.1; }) }), /total probability .* > 1/],
    ['logprobs shape', () => computeObjective('fkl', { ...inp, teacher: { ids: sparseOf(inp.teacher, 3).ids, logprobs: sparseOf(inp.teacher, 2).logprobs } }), /teacher.logprobs must have shape \[B\]\[T\]\[k\] = \[2\]\[3\]\[3\]/],
    ['rkl renormalize', () => computeObjective('rkl', { ...inp, teacher: sparseOf(inp.teacher, 3) }), /sparse: 'tail'/],
  ];
  function sparseWith(fi?: (ids: number[][][]) => void, fl?: (lp: number[][][]) => void) {
    const s = sparseOf(inp.teacher, 3);
    fi?.(s.ids);
    fl?.(s.logprobs);
    return s;
  }
  for (const [what, fn, re] of cases) {
    test(what, () => {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof UserError, `not a UserError: ${String(e)}`);
        assert.match(e.message, re);
        return true;
      });
    });
  }
});
