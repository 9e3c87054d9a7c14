/**
 * Finite-difference gradient checks for every primitive and composite op, on every backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as F from '../../src/nn/functional.js';
import * as op from '../../src/tensor/ops.js';
import { logSoftmaxReference, softmaxReference } from '../../src/tensor/reference.js';
import { backward } from '../../src/tensor/autodiff.js';
import { setBackend, Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { availableBackends } from '../helpers/backends.js';
import { gradcheck, randn, uniform } from '../helpers/gradcheck.js';

type Case = { name: string; f: (...xs: Tensor[]) => Tensor; inputs: (rng: Rng) => Tensor[]; tol?: { atol?: number; rtol?: number; eps?: number } };

const awayFromZero = (shape: number[], rng: Rng): Tensor => {
  const t = randn(shape, rng);
  for (let i = 0; i < t.size; i++) if (Math.abs(t.data[i]) < 0.1) t.data[i] += t.data[i] < 0 ? -0.2 : 0.2;
  return t;
};
const ids = Int32Array.from([3, 1, 3, 0, 5, 2]);

const cases: Case[] = [
  ...(['neg', 'exp', 'tanh', 'sigmoid', 'gelu', 'silu'] as const).map((n) => ({ name: n, f: (x: Tensor) => op[n](x), inputs: (r: Rng) => [randn([3, 5], r)] })),
  { name: 'log', f: (x) => op.log(x), inputs: (r) => [uniform([3, 5], r, 0.5, 2)] },
  { name: 'sqrt', f: (x) => op.sqrt(x), inputs: (r) => [uniform([3, 5], r, 0.5, 2)] },
  { name: 'relu', f: (x) => op.relu(x), inputs: (r) => [awayFromZero([3, 5], r)] },
  { name: 'abs', f: (x) => op.abs(x), inputs: (r) => [awayFromZero([3, 5], r)] },
  { name: 'pow 3', f: (x) => op.pow(x, 3), inputs: (r) => [randn([3, 4], r)] },
  { name: 'pow -0.5', f: (x) => op.pow(x, -0.5), inputs: (r) => [uniform([3, 4], r, 0.5, 2)] },
  ...(['add', 'sub', 'mul', 'maximum'] as const).flatMap((n) => [
    { name: `${n} same`, f: (a: Tensor, b: Tensor) => op[n](a, b), inputs: (r: Rng) => [randn([3, 4], r), randn([3, 4], r)] },
    { name: `${n} broadcast`, f: (a: Tensor, b: Tensor) => op[n](a, b), inputs: (r: Rng) => [randn([2, 1, 4], r), randn([3, 1], r)] },
  ]),
  { name: 'div broadcast', f: (a, b) => op.div(a, b), inputs: (r) => [randn([2, 3, 4], r), uniform([4], r, 0.5, 2)] },
  { name: 'where', f: (a, b) => op.where(op.gt(a, 0), a, b), inputs: (r) => [awayFromZero([3, 4], r), randn([4], r)] },
  { name: 'sum axes', f: (x) => op.sum(x, [0, 2]), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'sum keepdim', f: (x) => op.sum(x, 1, true), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'sum all', f: (x) => op.sum(x), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'max', f: (x) => op.max(x, -1), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'max axes 0,1', f: (x) => op.max(x, [0, 1], true), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'matmul 2d', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([3, 4], r), randn([4, 5], r)] },
  { name: 'matmul linear', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([2, 3, 4], r), randn([4, 5], r)] },
  { name: 'matmul batched', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([2, 3, 4], r), randn([2, 4, 5], r)] },
  { name: 'matmul broadcast lhs', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([3, 4], r), randn([2, 4, 5], r)] },
  { name: 'matmul 4d', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([2, 2, 3, 4], r), randn([2, 2, 4, 3], r)] },
  { name: 'matmul transB 2d', f: (a, b) => op.matmul(a, b, true), inputs: (r) => [randn([2, 3, 4], r), randn([5, 4], r)] },
  { name: 'matmul transB batched', f: (a, b) => op.matmul(a, b, true), inputs: (r) => [randn([2, 3, 4], r), randn([2, 5, 4], r)] },
  { name: 'matmul transB broadcast', f: (a, b) => op.matmul(a, b, true), inputs: (r) => [randn([2, 3, 4], r), randn([1, 5, 4], r)] },
  { name: 'matmul big k', f: (a, b) => op.matmul(a, b), inputs: (r) => [randn([5, 37], r), randn([37, 9], r)] },
  { name: 'linear', f: (x, w, b) => op.linear(x, w, b), inputs: (r) => [randn([2, 3, 4], r), randn([4, 5], r), randn([5], r)] },
  { name: 'linear transB', f: (x, w, b) => op.linear(x, w, b, true), inputs: (r) => [randn([3, 4], r), randn([5, 4], r), randn([5], r)] },
  { name: 'reshape', f: (x) => op.reshape(x, [4, -1]), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'permute', f: (x) => op.permute(x, [2, 0, 1]), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'slice', f: (x) => op.slice(x, [1, 0, 1], [2, 3, 3]), inputs: (r) => [randn([2, 3, 4], r)] },
  { name: 'concat', f: (a, b) => op.concat([a, b], 1), inputs: (r) => [randn([2, 3, 4], r), randn([2, 2, 4], r)] },
  { name: 'gather', f: (t) => op.gather(t, ids, [2, 3]), inputs: (r) => [randn([6, 4], r)] },
  { name: 'scatterAdd', f: (s) => op.scatterAdd(s, ids, 7), inputs: (r) => [randn([6, 4], r)] },
  { name: 'softmax', f: (x) => op.softmax(x), inputs: (r) => [randn([2, 3, 7], r, 2)] },
  { name: 'logSoftmax', f: (x) => op.logSoftmax(x), inputs: (r) => [randn([2, 3, 7], r, 2)] },
  { name: 'softmaxReference', f: (x) => softmaxReference(x), inputs: (r) => [randn([2, 7], r, 2)] },
  { name: 'logSoftmaxReference', f: (x) => logSoftmaxReference(x), inputs: (r) => [randn([2, 7], r, 2)] },
  { name: 'layerNorm', f: (x, w, b) => F.layerNorm(x, w, b, 1e-5), inputs: (r) => [randn([2, 3, 8], r), randn([8], r), randn([8], r)] },
  { name: 'rmsNorm', f: (x, w) => F.rmsNorm(x, w, 1e-6), inputs: (r) => [randn([2, 3, 8], r), randn([8], r)] },
  { name: 'crossEntropy', f: (x) => F.crossEntropy(x, Int32Array.from([1, 4, -100, 0, 6, 2])), inputs: (r) => [randn([6, 7], r)] },
  { name: 'attention causal', f: (q, k, v) => F.attention(q, k, v, true), inputs: (r) => [randn([1, 2, 4, 3], r), randn([1, 2, 4, 3], r), randn([1, 2, 4, 3], r)] },
  { name: 'attention gqa kv-cache', f: (q, k, v) => F.attention(q, k, v, true), inputs: (r) => [randn([1, 4, 2, 3], r), randn([1, 2, 5, 3], r), randn([1, 2, 5, 3], r)] },
  { name: 'layerNorm no bias', f: (x, w) => F.layerNorm(x, w, null, 1e-5), inputs: (r) => [randn([3, 8], r), randn([8], r)] },
  { name: 'layerNormReference', f: (x, w, b) => F.layerNormReference(x, w, b, 1e-5), inputs: (r) => [randn([2, 3, 8], r), randn([8], r), randn([8], r)] },
  { name: 'rmsNormReference', f: (x, w) => F.rmsNormReference(x, w, 1e-6), inputs: (r) => [randn([2, 3, 8], r), randn([8], r)] },
  { name: 'attention non-causal', f: (q, k, v) => F.attention(q, k, v, false), inputs: (r) => [randn([2, 2, 3, 4], r), randn([2, 2, 5, 4], r), randn([2, 2, 5, 4], r)] },
  { name: 'attentionReference gqa', f: (q, k, v) => F.attentionReference(q, k, v, true), inputs: (r) => [randn([1, 4, 3, 3], r), randn([1, 2, 3, 3], r), randn([1, 2, 3, 3], r)] },
  { name: 'attentionQKV causal', f: (x) => F.attentionQKV(x, 2, 2, true), inputs: (r) => [randn([2, 4, 18], r)] },
  { name: 'attentionQKV gqa non-causal', f: (x) => F.attentionQKV(x, 4, 2, false), inputs: (r) => [randn([1, 3, 16], r)] },
  { name: 'rope', f: (x) => { const { cos, sin } = F.ropeTables(5, 8, 10000, 2); return F.rope(x, cos, sin); }, inputs: (r) => [randn([1, 2, 5, 8], r)] },
];

for (const backend of availableBackends()) {
  describe(`gradcheck [${backend.name}]`, () => {
    for (const c of cases) {
      test(c.name, () => {
        const prev = setBackend(backend);
        try {
          const res = gradcheck(c.f, c.inputs(new Rng(7)), c.tol);
          assert.ok(res.ok, `${c.name}: max abs err ${res.maxAbsErr.toExponential(2)} (${res.worst})`);
        } finally {
          setBackend(prev);
        }
      });
    }
  });
}

test('reference compositions agree with fused softmax / log-softmax', () => {
  const x = randn([4, 11], new Rng(3), 3, false);
  for (const [fused, ref] of [[op.softmax(x), softmaxReference(x)], [op.logSoftmax(x), logSoftmaxReference(x)]]) {
    for (let i = 0; i < x.size; i++) assert.ok(Math.abs(fused.data[i] - ref.data[i]) < 1e-6);
  }
});

for (const backend of availableBackends()) test(`fused norm and attention equal their reference compositions (values and gradients) [${backend.name}]`, () => {
  const prev = setBackend(backend);
  const rng = new Rng(11);
  const pairs: [string, (...xs: Tensor[]) => Tensor, (...xs: Tensor[]) => Tensor, Tensor[]][] = [
    ['layerNorm', (x, w, b) => F.layerNorm(x, w, b, 1e-5), (x, w, b) => F.layerNormReference(x, w, b, 1e-5), [randn([5, 16], rng, 3), randn([16], rng), randn([16], rng)]],
    ['rmsNorm', (x, w) => F.rmsNorm(x, w, 1e-6), (x, w) => F.rmsNormReference(x, w, 1e-6), [randn([5, 16], rng, 3), randn([16], rng)]],
    ['attention gqa causal kv-cache', (q, k, v) => F.attention(q, k, v, true), (q, k, v) => F.attentionReference(q, k, v, true),
      [randn([2, 6, 3, 8], rng), randn([2, 2, 7, 8], rng), randn([2, 2, 7, 8], rng)]],
    ['attentionQKV (packed) causal', (x) => F.attentionQKV(x, 3, 3, true), (x) => F.attentionQKVReference(x, 3, 3, true), [randn([2, 5, 36], rng)]],
    ['attentionQKV (packed) gqa', (x) => F.attentionQKV(x, 4, 2, true), (x) => F.attentionQKVReference(x, 4, 2, true), [randn([2, 6, 40], rng)]],
  ];
  for (const [name, fused, ref, xs] of pairs) {
    const g = randn(fused(...xs).shape, rng, 1, false);
    const run = (f: (...xs: Tensor[]) => Tensor) => {
      const ins = xs.map((x) => new Tensor(x.data.slice(), x.shape, true));
      const out = f(...ins);
      backward(out, g);
      return [out.data, ...ins.map((t) => t.grad!.data)];
    };
    const a = run(fused), b = run(ref);
    a.forEach((arr, i) => {
      for (let j = 0; j < arr.length; j++) assert.ok(Math.abs(arr[j] - b[i][j]) <= 1e-5 + 1e-4 * Math.abs(b[i][j]), `${name} [${i}][${j}]: ${arr[j]} vs ${b[i][j]}`);
    });
  }
  setBackend(prev);
});
