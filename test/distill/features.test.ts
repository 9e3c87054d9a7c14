/** Feature KD: layer maps, projections, finite-difference checks, masking. (Golden values: golden.test.ts.) */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attentionKlPerToken, hiddenCosinePerToken, hiddenMsePerToken, HiddenStateDistiller, resolveLayerMap, tokenMean, trgPerToken, uniformLayerMap,
} from '../../src/distill/index.js';
import { UserError } from '../../src/errors.js';
import { Linear } from '../../src/nn/layers.js';
import { softmax, where } from '../../src/tensor/ops.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { gradcheck, randn } from '../helpers/gradcheck.js';
import { assertClose } from './helpers.js';

describe('layer maps', () => {
  test('uniform: t(s) = round((s+1)·L_T/L_S) − 1', () => {
    assert.deepEqual(uniformLayerMap(2, 4), [[0, 1], [1, 3]]);
    assert.deepEqual(uniformLayerMap(3, 12), [[0, 3], [1, 7], [2, 11]]);
    assert.deepEqual(uniformLayerMap(4, 4), [[0, 0], [1, 1], [2, 2], [3, 3]]);
    assert.deepEqual(uniformLayerMap(3, 2), [[0, 0], [1, 0], [2, 1]]);
    assert.deepEqual(uniformLayerMap(2, 3), [[0, 1], [1, 2]]);
  });
  test("'last', explicit pairs, and out-of-range pairs", () => {
    assert.deepEqual(resolveLayerMap('last', 2, 6), [[1, 5]]);
    assert.deepEqual(resolveLayerMap([[0, 2], [1, 5]], 2, 6), [[0, 2], [1, 5]]);
    assert.throws(() => resolveLayerMap([[2, 0]], 2, 6), (e: unknown) => e instanceof UserError && /\[2, 0\] is out of range/.test(e.message));
  });
});

describe('hidden-state distillation', () => {
  const dims = { studentWidth: 4, teacherWidth: 6, studentLayers: 2, teacherLayers: 4 };
  test('projection only when widths differ (or forced); parameters named proj.i.weight', () => {
    const rng = new Rng(1);
    const d = new HiddenStateDistiller('mse', { layer_map: 'uniform', projection: 'auto', init: 'xavier' }, dims, rng);
    assert.deepEqual([...d.namedParameters().keys()], ['proj.0.weight', 'proj.1.weight']);
    assert.deepEqual(d.projections[0]!.weight.shape, [6, 4]);
    const same = new HiddenStateDistiller('mse', { layer_map: 'uniform', projection: 'auto', init: 'xavier' }, { ...dims, studentWidth: 6 }, rng);
    assert.equal(same.numParameters(), 0);
    const forced = new HiddenStateDistiller('cosine', { layer_map: 'last', projection: 'always', init: 'identity' }, { ...dims, studentWidth: 6 }, rng);
    assert.equal(forced.numParameters(), 36);
    const h = [randn([2, 3, 6], rng, 1, false), randn([2, 3, 6], rng, 1, false)];
    const t = [0, 1, 2, 3].map(() => randn([2, 3, 6], rng, 1, false));
    assertClose(forced.perToken(h, t).data, hiddenCosinePerToken(h[1], t[3]).data, 1e-6, 1e-6, 'identity W');
  });
  test('finite differences through the projection and both losses', () => {
    const rng = new Rng(2);
    for (const kind of ['mse', 'cosine'] as const) {
      const d = new HiddenStateDistiller(kind, { layer_map: 'uniform', projection: 'auto', init: 'xavier' }, dims, rng);
      const hs = [randn([2, 3, 4], rng), randn([2, 3, 4], rng)];
      const ht = [0, 1, 2, 3].map(() => randn([2, 3, 6], rng, 1, false));
      const W = d.projections.map((p) => p!.weight);
      const r = gradcheck((a, b, w0, w1) => {
        W[0].data = w0.data; W[1].data = w1.data;
        return d.perToken([a, b], ht);
      }, [hs[0], hs[1], W[0], W[1]], { eps: 1e-2 });
      assert.ok(r.ok, `${kind}: ${r.worst}`);
    }
  });
  test('mse and cosine are 0 for equal states and positive otherwise', () => {
    const rng = new Rng(3);
    const a = randn([5, 6], rng, 1, false);
    assert.ok(Math.max(...hiddenMsePerToken(a, a).data) === 0);
    assert.ok(Math.max(...hiddenCosinePerToken(a, a).data.map(Math.abs)) < 1e-6);
    const b = randn([5, 6], rng, 1, false);
    assert.ok(Math.min(...hiddenMsePerToken(a, b).data) > 0 && Math.min(...hiddenCosinePerToken(a, b).data) > 0);
  });
});

function causalAttention(B: number, H: number, T: number, rng: Rng, requiresGrad: boolean): Tensor {
  const s = randn([B, H, T, T], rng, 2, false);
  for (let i = 0; i < s.size; i++) { const q = Math.floor(i / T) % T, k = i % T; if (k > q) s.data[i] = -Infinity; }
  return new Tensor(softmax(s).data, [B, H, T, T], requiresGrad);
}

describe('attention-map KL', () => {
  test('finite differences; zero for equal maps; causal zeros are fine', () => {
    const rng = new Rng(4);
    const aS = causalAttention(2, 2, 4, rng, true), aT = causalAttention(2, 2, 4, rng, false);
    // probe through the scores (probabilities near 0 make direct differences in A^S too coarse)
    const scores = randn([2, 2, 4, 4], rng, 1);
    const causal = new Tensor(Float32Array.from({ length: 64 }, (_, i) => (i % 4 <= Math.floor(i / 4) % 4 ? 1 : 0)), [2, 2, 4, 4]);
    const r = gradcheck((s) => attentionKlPerToken(softmax(where(causal, s, -Infinity)), aT), [scores], { eps: 1e-2 });
    assert.ok(r.ok, r.worst);
    assert.ok(Math.max(...attentionKlPerToken(aT, aT).data.map(Math.abs)) < 1e-6);
    assert.ok(attentionKlPerToken(aS, aT).data.every((x) => Number.isFinite(x) && x >= -1e-6));
  });
  test("different head counts need heads: 'average'", () => {
    const rng = new Rng(5);
    const aS = causalAttention(1, 2, 3, rng, false), aT = causalAttention(1, 4, 3, rng, false);
    assert.throws(() => attentionKlPerToken(aS, aT), (e: unknown) => e instanceof UserError && /heads: 'average'/.test(e.message));
    assert.equal(attentionKlPerToken(aS, aT, { heads: 'average' }).size, 3);
  });
});

describe('TRG token relations', () => {
  test('finite differences (relations, top-k neighbours, contextual term through a projection)', () => {
    const rng = new Rng(6);
    const hs = randn([2, 5, 4], rng), ht = randn([2, 5, 6], rng, 1, false);
    const proj = new Linear(4, 6, false, rng, 0.4);
    const mask = Float32Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
    const r = gradcheck((h, w) => { proj.weight.data = w.data; return trgPerToken(h, ht, { top_k: 2, ctx_weight: 0.5, ctx_temperature: 0.5 }, mask, proj); },
      [hs, proj.weight], { eps: 1e-2 });
    assert.ok(r.ok, r.worst);
  });
  test('relation loss is 0 when the relation graphs agree, even across widths (no projection needed)', () => {
    const rng = new Rng(7);
    const hs = randn([1, 4, 3], rng, 1, false);
    const ht = new Tensor(new Float32Array(1 * 4 * 6), [1, 4, 6]); // ht = [hs, 0]: same cosines
    for (let t = 0; t < 4; t++) for (let d = 0; d < 3; d++) ht.data[t * 6 + d] = hs.data[t * 3 + d];
    assert.ok(Math.max(...trgPerToken(hs, ht, { top_k: 0, ctx_weight: 0, ctx_temperature: 0.1 }).data.map(Math.abs)) < 1e-6);
  });
  test('a masked token affects neither the loss nor other tokens', () => {
    const rng = new Rng(8);
    const hs = randn([1, 5, 4], rng, 1, false), ht = randn([1, 5, 4], rng, 1, false);
    const mask = Float32Array.from([1, 1, 0, 1, 1]);
    const opts = { top_k: 0, ctx_weight: 0.3, ctx_temperature: 0.2 };
    const before = tokenMean(trgPerToken(hs, ht, opts, mask), mask).item();
    for (let d = 0; d < 4; d++) { hs.data[2 * 4 + d] = 7 * d - 3; ht.data[2 * 4 + d] = -d; }
    assert.equal(tokenMean(trgPerToken(hs, ht, opts, mask), mask).item(), before);
  });
});
