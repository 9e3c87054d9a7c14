/**
 * The step buffer arena (BufferArena in src/tensor/tensor.ts): kernel outputs of one training step are
 * recycled into the next, returned early by backward() and by scoped() passes, and every view handed out
 * on a buffer that came back is detached. Training with it is bit-identical to training without it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModel } from '../../src/models/registry.js';
import { AdamW } from '../../src/optim/adamw.js';
import { backward } from '../../src/tensor/autodiff.js';
import * as op from '../../src/tensor/ops.js';
import { BufferArena, currentArena, parameter, scoped, setBackend, Tensor, uninit } from '../../src/tensor/tensor.js';
import { Trainer } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { availableBackends } from '../helpers/backends.js';

const N = 4096; // above uninit's small-array cutoff, so the arena serves it

test('a run hands out buffers, takes them all back and detaches the views', () => {
  const arena = new BufferArena();
  let a!: Float32Array, b!: Float32Array;
  arena.run(() => {
    assert.equal(currentArena(), arena);
    a = uninit(N).fill(1);
    b = uninit(N).fill(2);
    assert.equal(arena.outstanding, 2);
  });
  assert.equal(currentArena(), null);
  assert.equal(arena.outstanding, 0);
  assert.equal(a.length, 0, 'a view on a returned buffer is detached');
  assert.equal(b.length, 0);
  assert.equal(arena.freeBytes, 2 * N * 4);
  // the next run reuses both
  arena.run(() => {
    uninit(N);
    uninit(N);
  });
  assert.deepEqual({ taken: arena.stats.taken, reused: arena.stats.reused }, { taken: 4, reused: 2 });
  // outside a run, uninit allocates as before
  const c = uninit(N);
  assert.equal(c.length, N);
  assert.equal(arena.stats.taken, 4);
});

test('a free buffer serves requests up to twice smaller, the smallest that fits first', () => {
  const arena = new BufferArena();
  arena.run(() => {
    uninit(N);
    uninit(2 * N);
  });
  arena.run(() => {
    const x = uninit(N / 2 + 1); // fits the N buffer (≤ 2×), not the 2N one
    assert.equal(x.buffer.byteLength, N * 4);
    const y = uninit(N / 2 + 1); // the N buffer is taken; 2N is more than twice as big: a new one
    assert.equal(y.buffer.byteLength, (N / 2 + 1) * 4);
  });
  assert.equal(arena.stats.reused, 1);
});

test('buffers a whole run did not use are dropped; a throwing run still returns its buffers', () => {
  const arena = new BufferArena();
  arena.run(() => void uninit(N));
  arena.run(() => void uninit(3 * N)); // does not use the N buffer
  assert.equal(arena.freeBytes, 3 * N * 4, 'the unused N buffer is released to the GC');
  let kept!: Float32Array;
  assert.throws(() => arena.run(() => {
    kept = uninit(3 * N);
    throw new Error('boom');
  }), /boom/);
  assert.equal(arena.outstanding, 0);
  assert.equal(kept.length, 0);
  assert.equal(currentArena(), null, 'the previous arena (none) is restored');
});

test('scoped(): a nested pass returns all but the kept buffers at once; the kept ones at the end of the step', () => {
  const arena = new BufferArena();
  arena.run(() => {
    let tmp!: Float32Array;
    const out = scoped(() => {
      tmp = uninit(N).fill(3);
      const keep = new Tensor(uninit(N).fill(4), [N]);
      return { keep, view: op.reshape(keep, [64, 64]) };
    }, (r) => [r.keep]);
    assert.equal(tmp.length, 0, 'the intermediate went back to the arena');
    assert.equal(out.keep.data.length, N);
    assert.equal(out.view.data[5], 4, 'views of a kept buffer stay readable');
    assert.equal(arena.outstanding, 1);
    // the returned intermediate is reused within the same step
    const again = uninit(N);
    assert.equal(arena.stats.reused, 1);
    again.fill(0);
    assert.equal(out.keep.data[0], 4, 'reuse never hands out a kept buffer');
  });
  assert.equal(arena.outstanding, 0);
  // outside any arena scoped() is just a call
  const r = scoped(() => uninit(N).fill(7), (x) => [x]);
  assert.equal(r[0], 7);
});

for (const be of availableBackends()) {
  test(`backward() returns the gradient buffers it made as it consumes them; gradients unchanged (${be.name})`, () => {
    const prev = setBackend(be);
    try {
      const rng = new Rng(3);
      const mk = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
      const w1 = parameter(mk(64 * 64), [64, 64]), w2 = parameter(mk(64 * 64), [64, 64]), x = new Tensor(mk(128 * 64), [128, 64]);
      // reshape views, a gradient feeding both inputs of add, a reused activation: the aliasing cases
      const loss = () => {
        const h = op.gelu(op.matmul(x, w1));
        const r = op.reshape(op.add(h, op.matmul(h, w2)), [64, 128]);
        return op.sum(op.mul(r, r), [0, 1]);
      };
      const plain = () => {
        w1.grad = w2.grad = null;
        backward(loss());
        return [w1.grad!.data.slice(), w2.grad!.data.slice()];
      };
      const want = plain();
      const arena = new BufferArena();
      let activation!: Float32Array;
      let inRun!: Float32Array[];
      const got = arena.run(() => {
        w1.grad = w2.grad = null;
        const l = loss();
        backward(l);
        activation = x.data; // not the arena's: stays
        inRun = [w1.grad!.data, w2.grad!.data];
        return inRun.map((d) => d.slice()); // what outlives the run is copied out
      });
      assert.ok(arena.stats.released > 0, `backward released ${arena.stats.released} buffers`);
      assert.equal(activation.length, x.size);
      // the leaf gradients were the arena's own buffers (adopted, not copied), so they went back with the run
      assert.deepEqual(inRun.map((d) => d.length), [0, 0]);
      for (let i = 0; i < 2; i++) assert.deepEqual(got[i], want[i], `grad ${i} bit-identical`);
    } finally {
      setBackend(prev);
    }
  });

  test(`training with recycled buffers is bit-identical to training without (${be.name})`, () => {
    const prev = setBackend(be);
    try {
      const run = (recycle: boolean) => {
        const model = createModel({ model_type: 'gpt2', vocab_size: 96, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
        const trainer = new Trainer({
          model, optimizer: new AdamW(model.namedParameters()), gradClip: 1, gradAccumSteps: 2, recycleBuffers: recycle,
          schedule: { kind: 'constant', peakLr: 1e-2, warmupSteps: 0, totalSteps: 10, minLr: 0 },
        });
        const rng = new Rng(5);
        const batch = () => ({ input: Int32Array.from({ length: 64 }, () => rng.int(96)), target: Int32Array.from({ length: 64 }, () => rng.int(96)), batchSize: 2, seqLen: 32 });
        const losses = Array.from({ length: 4 }, () => trainer.stepOn([batch(), batch()]).loss);
        return { losses, params: [...model.namedParameters().values()].map((p) => p.data.slice()), stats: trainer.arena.stats };
      };
      const off = run(false), on = run(true);
      assert.equal(off.stats.taken, 0);
      assert.ok(on.stats.reused > 0 && on.stats.released > 0, JSON.stringify(on.stats));
      assert.deepEqual(on.losses, off.losses);
      on.params.forEach((p, i) => assert.deepEqual(p, off.params[i], `parameter ${i}`));
    } finally {
      setBackend(prev);
    }
  });
}

test('a tensor kept past its step is detached, not silently reading recycled memory', () => {
  const model = createModel({ model_type: 'gpt2', vocab_size: 96, n_positions: 32, n_embd: 32, n_layer: 1, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
  let leaked: Tensor | null = null;
  const trainer = new Trainer({
    model, optimizer: new AdamW(model.namedParameters()), gradClip: 0, gradAccumSteps: 1,
    schedule: { kind: 'constant', peakLr: 1e-3, warmupSteps: 0, totalSteps: 10, minLr: 0 },
    lossFn: (m, b) => {
      const { hidden } = m.forwardHidden(b.input, b.batchSize, b.seqLen);
      leaked = hidden;
      return { sum: op.sum(op.mul(hidden, hidden), [0, 1, 2]) };
    },
  });
  const batch = { input: new Int32Array(64).fill(3), target: new Int32Array(64).fill(4), batchSize: 2, seqLen: 32 };
  trainer.stepOn([batch]);
  assert.ok(leaked);
  assert.equal((leaked as Tensor).data.length, 0, 'the escaped activation has no readable data');
});
