/**
 * bf16 matmul against PyTorch (tools/golden/bf16_matmul.py) on every backend: the backend GEMM with
 * MatmulArgs.bf16 in all four transposition variants, the tensor matmul and its gradient under
 * autocast('bf16'), and — rounded to bf16 the way torch.autocast stores its results — PyTorch's own
 * autocast(bfloat16) matmul and gradients. Then the autodiff rule: the gradient GEMMs of a bf16
 * matmul are bf16 GEMMs, i.e. exactly the fp32 GEMMs of bf16-rounded operands.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { roundBf16 } from '../../src/backend/gemm.js';
import { backward } from '../../src/tensor/autodiff.js';
import * as op from '../../src/tensor/ops.js';
import { autocast, getPrecision } from '../../src/tensor/precision.js';
import { setBackend, Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { availableBackends } from '../helpers/backends.js';
import { closeness, readFixture, toTensor, type JsonTensor } from '../helpers/fixtures.js';

interface Case {
  name: string; trans_a: boolean; trans_b: boolean;
  inputs: [JsonTensor, JsonTensor]; grad_output: JsonTensor; output: JsonTensor; grads: [JsonTensor, JsonTensor];
  autocast_output: JsonTensor; autocast_grads: [JsonTensor, JsonTensor];
}
const { cases } = readFixture<{ cases: Case[] }>('golden/bf16-matmul.json');

// Same bf16 operands, different fp32 summation order than torch: well below the bf16 effect (~1e-2 here)
const ATOL = 1e-4, RTOL = 1e-5;
// torch.autocast returns bf16 tensors: compare our fp32 result rounded to bf16, within one bf16 ulp
// (2⁻⁸ relative; the two fp32 sums may straddle a rounding boundary)
const BF16_ULP = 2 ** -7;

const roundAll = (x: ArrayLike<number>): Float32Array => Float32Array.from(x, roundBf16);
function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): void {
  const r = closeness(got, want, atol, rtol);
  assert.ok(r.ok, `${what}: max |Δ| ${r.maxAbs} at ${r.at}`);
}

/** Matrix dims of a case: op(A) [.., m, k], op(B) [.., k, n]. */
function dims(c: Case): { batch: number; m: number; n: number; k: number } {
  const [a, b] = c.inputs.map((t) => t.shape);
  const r = a.length;
  const [m, k] = c.trans_a ? [a[r - 1], a[r - 2]] : [a[r - 2], a[r - 1]];
  const n = c.trans_b ? b[r - 2] : b[r - 1];
  return { batch: a.slice(0, -2).reduce((x, y) => x * y, 1), m, n, k };
}

for (const backend of availableBackends()) {
  describe(`bf16 matmul vs PyTorch [${backend.name}]`, () => {
    for (const c of cases) {
      test(`${c.name}: backend GEMM`, () => {
        const { batch, m, n, k } = dims(c);
        const a = Float32Array.from(c.inputs[0].data), b = Float32Array.from(c.inputs[1].data);
        const args = { batch, m, n, k, transA: c.trans_a, transB: c.trans_b, aBatchStride: m * k, bBatchStride: k * n, accumulate: false };
        const out = new Float32Array(batch * m * n);
        backend.matmul(a, b, out, { ...args, bf16: true });
        expectClose('output', out, c.output.data, ATOL, RTOL);
        expectClose('vs torch.autocast', roundAll(out), c.autocast_output.data, ATOL, BF16_ULP);
        // the tolerance does tell bf16 from fp32: the fp32 product is far outside it
        const fp32 = new Float32Array(batch * m * n);
        backend.matmul(a, b, fp32, args);
        assert.ok(!closeness(fp32, c.output.data, ATOL, RTOL).ok, 'fp32 GEMM should not match the bf16 golden');
      });

      test(`${c.name}: tensor matmul + gradients under autocast`, () => {
        const prev = setBackend(backend);
        try {
          const a = toTensor(c.inputs[0], true), b = toTensor(c.inputs[1], true);
          const r = a.rank;
          const out = autocast('bf16', () => {
            const opA = c.trans_a ? op.transpose(a, r - 2, r - 1) : a; // a copy: the kernel sees a plain [m, k]
            return op.matmul(opA, b, c.trans_b);
          });
          assert.equal(getPrecision(), 'fp32', 'scope restored');
          expectClose('output', out.data, c.output.data, ATOL, RTOL);
          backward(out, toTensor(c.grad_output)); // outside the scope: the node remembers bf16
          expectClose('grad a', a.grad!.data, c.grads[0].data, ATOL, RTOL);
          expectClose('grad b', b.grad!.data, c.grads[1].data, ATOL, RTOL);
          expectClose('grad a vs torch.autocast', roundAll(a.grad!.data), c.autocast_grads[0].data, ATOL, BF16_ULP);
          expectClose('grad b vs torch.autocast', roundAll(b.grad!.data), c.autocast_grads[1].data, ATOL, BF16_ULP);
        } finally {
          setBackend(prev);
        }
      });
    }
  });

  describe(`bf16 matmul gradient = bf16 GEMMs [${backend.name}]`, () => {
    const rng = new Rng(42);
    const randn = (shape: number[], grad = false): Tensor =>
      new Tensor(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal()), shape, grad);
    const rounded = (t: Tensor): Tensor => new Tensor(roundAll(t.data), t.shape);

    // [x, W] as the linear layers use them (2-D weight, transB) and a batched product (attention-like)
    const shapes: [string, number[], number[], boolean][] = [
      ['linear [2,7,19]·[13,19]ᵀ', [2, 7, 19], [13, 19], true],
      ['batched [3,5,11]·[3,11,9]', [3, 5, 11], [3, 11, 9], false],
    ];
    for (const [name, sa, sb, transB] of shapes) {
      test(name, () => {
        const prev = setBackend(backend);
        try {
          const a = randn(sa, true), b = randn(sb, true);
          const out = autocast('bf16', () => op.matmul(a, b, transB));
          const g = randn(out.shape);
          // backward inside an fp32 scope must not matter either: precision was fixed at forward time
          autocast('fp32', () => backward(out, g));
          // manual composition: fp32 matmuls of pre-rounded operands (rounding is idempotent, so the
          // bf16 GEMM of the same operands is the same arithmetic)
          const ar = rounded(a), br = rounded(b), gr = rounded(g);
          const want = op.matmul(ar, br, transB);
          assert.deepEqual(out.data, want.data, 'forward');
          const ga = transB ? op.matmul(gr, br) : op.matmul(gr, br, true);
          assert.deepEqual(a.grad!.data, ga.data, 'dA = bf16(G)·bf16(B)ᵀ');
          const at = op.transpose(ar, -2, -1);
          const gb = transB
            ? op.sum(op.matmul(op.transpose(gr, -2, -1), ar), 0) // dB = Σ_batch Gᵀ·A  [n, k]
            : op.matmul(at, gr); // dB = Aᵀ·G, per batch
          assert.ok(closeness(b.grad!.data, gb.data, 1e-5, 1e-5).ok, 'dB from bf16 operands');
          // the fp32 gradient is measurably different (the option reaches the backward GEMMs)
          const a32 = new Tensor(a.data, a.shape, true);
          backward(op.matmul(a32, b.detach(), transB), g);
          assert.ok(!closeness(a32.grad!.data, a.grad!.data, 1e-6, 1e-6).ok, 'fp32 and bf16 gradients differ');
        } finally {
          setBackend(prev);
        }
      });
    }

    test('linear (bias in the GEMM output) under autocast: bf16 operands forward and backward, bias exact', () => {
      const prev = setBackend(backend);
      try {
        const x = randn([3, 4, 21], true), w = randn([10, 21], true), bias = randn([10], true);
        const out = autocast('bf16', () => op.linear(x, w, bias, true));
        const g = randn(out.shape);
        backward(out, g);
        const want = op.add(op.matmul(rounded(x), rounded(w), true), bias);
        assert.ok(closeness(out.data, want.data, 1e-6, 1e-6).ok, 'forward = bf16(x)·bf16(W)ᵀ + b');
        assert.deepEqual(x.grad!.data, op.matmul(rounded(g), rounded(w)).data, 'dx = bf16(G)·bf16(W)');
        assert.deepEqual(bias.grad!.data, op.sum(g, [0, 1]).data, 'db = Σ G (fp32)');
      } finally {
        setBackend(prev);
      }
    });

    test('a forward outside the scope stays fp32 even if backward runs inside a bf16 scope', () => {
      const prev = setBackend(backend);
      try {
        const a = randn([4, 6], true), b = randn([6, 5]);
        const out = op.matmul(a, b);
        const g = randn(out.shape);
        autocast('bf16', () => backward(out, g));
        const want = op.matmul(g, b, true);
        assert.deepEqual(a.grad!.data, want.data);
      } finally {
        setBackend(prev);
      }
    });

    test('an invalid precision is a clear error', () => {
      assert.throws(() => autocast('fp16' as 'bf16', () => 0), /precision must be one of fp32, bf16, got "fp16"/);
    });
  });
}
