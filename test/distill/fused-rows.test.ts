/**
 * fusedMixtureLoss through the backend's chunk-level row kernels (Backend.rowLosses) equals the same
 * call through the objectives' TypeScript row kernels (rowKernels: 'objectives'): loss, per-part sums
 * and the gradients w.r.t. the hidden states and the head, on a small model with an in-process teacher
 * head or dense teacher logits, masked rows, ignored labels, chunks that do not divide N, and rows the
 * kernel refuses (a -inf teacher logit: recomputed by the objectives' kernels).
 * Tolerance: the reference backend is float64 like the objectives (1e-9 relative on the loss, 1e-6 of
 * the largest gradient entry); the native kernel's float32 exponentials (row-losses.test.ts) give
 * ~1e-6 relative on the loss and ~1e-5 of the largest entry on gradients that sum V row gradients.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend } from '../../src/backend/backend.js';
import { nativeBackend, nativeInfo } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref.js';
import { fusedMixtureLoss, type FusedMixtureInput } from '../../src/distill/fused-loss.js';
import { Mixture, tokenMask } from '../../src/distill/index.js';
import { backward } from '../../src/tensor/autodiff.js';
import { getBackend, setBackend, Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose, randnArray } from './helpers.js';

const N = 13, C = 6, CT = 9, V = 50;

const MIXES: [string, unknown][] = [
  ['0.5 ce + 0.5 fkl', [{ objective: 'ce', weight: 0.5 }, { objective: 'fkl', weight: 0.5 }]],
  ['fkl τ=2 + rkl + ce', [{ objective: 'fkl', temperature: 2, weight: 0.4 }, { objective: 'rkl', weight: 0.3 }, { objective: 'ce', weight: 0.3 }]],
  ['ce only', { objective: 'ce' }],
];

function run(be: Backend, spec: unknown, teacherKind: 'head' | 'dense' | 'dense-inf', rowKernels: 'backend' | 'objectives', chunkRows: number) {
  const prev = getBackend();
  setBackend(be);
  try {
    const rng = new Rng(5);
    const hidden = new Tensor(randnArray(N * C, rng), [N, C], true);
    const head = new Tensor(randnArray(V * C, rng, 0.8), [V, C], true);
    const th = { h: randnArray(N * CT, rng), W: randnArray(V * CT, rng, 0.6), C: CT };
    const tLogits = randnArray(N * V, rng, 2);
    if (teacherKind === 'dense-inf') tLogits[4 * V + 7] = -Infinity;
    const labels = Int32Array.from({ length: N }, (_, i) => (i % 5 === 2 ? -100 : rng.int(V)));
    const mask = tokenMask(N, { labels });
    mask[6] = 0;
    const x: FusedMixtureInput = {
      hidden, head, mixture: Mixture.parse(spec), labels, mask, chunkRows, rowKernels,
      ...(teacherKind === 'head' ? { teacherHead: th } : { teacher: new Tensor(tLogits, [N, V]) }),
    };
    const { loss, partSums } = fusedMixtureLoss(x);
    backward(loss);
    return { loss: loss.item(), partSums, gh: hidden.grad!.data, gW: head.grad!.data };
  } finally {
    setBackend(prev);
  }
}

const maxAbs = (a: Float32Array): number => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

function compare(be: Backend, lossRtol: number, gradFrac: number): void {
  for (const [name, spec] of MIXES) {
    for (const teacherKind of ['head', 'dense', 'dense-inf'] as const) {
      for (const chunk of [4, N]) {
        test(`${name}, teacher ${teacherKind}, chunk ${chunk}`, () => {
          const want = run(be, spec, teacherKind, 'objectives', chunk);
          const got = run(be, spec, teacherKind, 'backend', chunk);
          assertClose([got.loss], [want.loss], 0, lossRtol, 'loss');
          assert.deepEqual(Object.keys(got.partSums).sort(), Object.keys(want.partSums).sort());
          for (const k of Object.keys(want.partSums)) assertClose([got.partSums[k]], [want.partSums[k]], 1e-12, lossRtol, `partSums.${k}`);
          assertClose(got.gh, want.gh, gradFrac * maxAbs(want.gh), 0, 'grad hidden');
          assertClose(got.gW, want.gW, gradFrac * maxAbs(want.gW), 0, 'grad head');
        });
      }
    }
  }
}

describe('fusedMixtureLoss: backend row kernels == objectives row kernels', () => {
  describe('reference backend', () => compare(refBackend, 1e-9, 1e-6));
  if (nativeBackend) describe('native backend', () => compare(nativeBackend as Backend, 2e-6, 1e-5));
  else test('native backend', (t) => { t.skip(`native addon unavailable: ${nativeInfo().reason}`); });

  test('a mixture with an objective the kernels do not cover takes the objectives\' path', () => {
    // tvd has no backend kernel: 'backend' and 'objectives' must then agree exactly
    const spec = [{ objective: 'tvd', weight: 0.5 }, { objective: 'ce', weight: 0.5 }];
    const a = run(refBackend, spec, 'head', 'objectives', 4), b = run(refBackend, spec, 'head', 'backend', 4);
    assert.equal(a.loss, b.loss);
    assert.deepEqual(a.gh, b.gh);
  });
});
