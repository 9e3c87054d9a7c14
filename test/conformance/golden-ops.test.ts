/**
 * Every op against PyTorch: outputs and input gradients of d(Σ out ⊙ g) from tools/golden/ops.py,
 * on every backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as F from '../../src/nn/functional.js';
import { backward } from '../../src/tensor/autodiff.js';
import * as op from '../../src/tensor/ops.js';
import { setBackend, Tensor } from '../../src/tensor/tensor.js';
import { availableBackends } from '../helpers/backends.js';
import { closeness, readFixture, toTensor, type JsonTensor } from '../helpers/fixtures.js';

interface Case {
  name: string; op: string; params: Record<string, unknown>; inputs: JsonTensor[];
  int_inputs?: Record<string, JsonTensor>; output: JsonTensor; grad_output: JsonTensor; grads: (JsonTensor | null)[];
}
type P = Record<string, unknown>;
const ints = (c: Case, k: string): Int32Array => Int32Array.from(c.int_inputs![k].data);

/** Our implementation of each PyTorch op name used in the fixtures. */
const impl: Record<string, (xs: Tensor[], p: P, c: Case) => Tensor> = {
  ...Object.fromEntries((['neg', 'exp', 'log', 'sqrt', 'tanh', 'sigmoid', 'relu', 'silu', 'abs', 'gelu'] as const).map((n) => [n, (xs: Tensor[]) => op[n](xs[0])])),
  ...Object.fromEntries((['add', 'sub', 'mul', 'div', 'maximum'] as const).map((n) => [n, (xs: Tensor[]) => op[n](xs[0], xs[1])])),
  pow: (xs, p) => op.pow(xs[0], p.exponent as number),
  sum: (xs, p) => op.sum(xs[0], p.axes as number[], p.keepdim as boolean),
  max: (xs, p) => op.max(xs[0], p.axes as number[], p.keepdim as boolean),
  matmul: (xs) => op.matmul(xs[0], xs[1]),
  linear: (xs) => op.linear(xs[0], xs[1], xs[2], true), // torch.nn.functional.linear: weight [out, in]
  linear_conv1d: (xs) => op.linear(xs[0], xs[1], xs[2]), // GPT-2 Conv1D: x·W + b, weight [in, out]
  reshape: (xs, p) => op.reshape(xs[0], p.shape as number[]),
  permute: (xs, p) => op.permute(xs[0], p.dims as number[]),
  slice: (xs, p) => op.slice(xs[0], p.starts as number[], p.ends as number[]),
  concat: (xs, p) => op.concat(xs, p.axis as number),
  gather: (xs, _p, c) => op.gather(xs[0], ints(c, 'ids'), c.int_inputs!.ids.shape),
  softmax: (xs) => op.softmax(xs[0]),
  log_softmax: (xs) => op.logSoftmax(xs[0]),
  layer_norm: (xs, p) => F.layerNorm(xs[0], xs[1], xs[2], p.eps as number),
  rms_norm: (xs, p) => F.rmsNorm(xs[0], xs[1], p.eps as number),
  cross_entropy: (xs, p, c) => F.crossEntropy(xs[0], ints(c, 'targets'), p.ignore_index as number),
  attention: (xs, p) => F.attention(xs[0], xs[1], xs[2], p.causal as boolean),
  attention_qkv: (xs, p) => F.attentionQKV(xs[0], p.heads as number, p.kv_heads as number, p.causal as boolean),
  rope: (xs, p) => {
    const [, , T, D] = xs[0].shape;
    const { cos, sin } = F.ropeTables(T, D, p.theta as number, (p.offset as number | undefined) ?? 0);
    return F.rope(xs[0], cos, sin);
  },
};

const { cases } = readFixture<{ cases: Case[] }>('golden/ops.json');

for (const backend of availableBackends()) {
  describe(`golden ops vs PyTorch [${backend.name}]`, () => {
    test('every fixture op has an implementation', () => {
      const missing = [...new Set(cases.map((c) => c.op))].filter((o) => !impl[o]);
      assert.deepEqual(missing, []);
    });
    for (const c of cases) {
      test(c.name, () => {
        const prev = setBackend(backend);
        try {
          const xs = c.inputs.map((t) => toTensor(t, true));
          const out = impl[c.op](xs, c.params, c);
          assert.deepEqual(out.shape, c.output.shape, 'output shape');
          const o = closeness(out.data, c.output.data, 1e-5, 1e-4);
          assert.ok(o.ok, `output max abs diff ${o.maxAbs} at ${o.at}`);
          backward(out, toTensor(c.grad_output));
          c.grads.forEach((g, i) => {
            if (!g) return;
            assert.ok(xs[i].grad, `input ${i} got no gradient`);
            const r = closeness(xs[i].grad!.data, g.data, 1e-5, 1e-4);
            assert.ok(r.ok, `grad ${i} max abs diff ${r.maxAbs} at ${r.at}`);
          });
        } finally {
          setBackend(prev);
        }
      });
    }
  });
}
