/**
 * KV-cache decoding equals full recomputation, and the samplers draw from the distribution they claim.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { generate, sampleToken } from '../../src/models/generate.js';
import { loadPretrained, savePretrained } from '../../src/models/registry.js';
import { noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { closeness, FIXTURES } from '../helpers/fixtures.js';

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  test(`${name}: incremental KV-cache logits equal full forward at every position`, () => {
    const model = loadPretrained(path.join(FIXTURES, 'hf', name)).eval();
    const ids = Int32Array.from([5, 17, 33, 2, 60, 41, 9, 12, 30, 7]);
    const V = model.vocabSize;
    noGrad(() => {
      const full = model.forward(ids, 1, ids.length).logits.data; // [1, T, V]
      const cache = model.newCache();
      // prefill 4 tokens, then one at a time
      const pre = model.forward(ids.subarray(0, 4), 1, 4, { cache }).logits.data;
      assert.ok(closeness(pre, full.subarray(0, 4 * V), 1e-5, 1e-4).ok, 'prefill');
      for (let t = 4; t < ids.length; t++) {
        const step = model.forward(ids.subarray(t, t + 1), 1, 1, { cache }).logits.data;
        const r = closeness(step, full.subarray(t * V, (t + 1) * V), 1e-5, 1e-4);
        assert.ok(r.ok, `position ${t}: max abs diff ${r.maxAbs}`);
      }
      assert.equal(cache.length, ids.length);
    });
  });
}

test('greedy generation equals repeated argmax of full forward passes', () => {
  const model = loadPretrained(path.join(FIXTURES, 'hf', 'llama-tiny')).eval();
  const prompt = [3, 14, 15];
  const out = generate(model, prompt, { maxNewTokens: 8, temperature: 0 });
  const seq = [...prompt];
  noGrad(() => {
    for (let i = 0; i < 8; i++) {
      const logits = model.forward(Int32Array.from(seq), 1, seq.length).logits.data;
      const last = logits.subarray((seq.length - 1) * model.vocabSize);
      let best = 0;
      for (let j = 1; j < last.length; j++) if (last[j] > last[best]) best = j;
      seq.push(best);
    }
  });
  assert.deepEqual(out, seq.slice(prompt.length));
});

test('temperature sampling frequencies follow softmax(logits / T); top-k and top-p restrict the support', () => {
  const logits = Float32Array.from([2, 1, 0.5, 0, -1, -3]);
  const rng = new Rng(5);
  const N = 40000, T = 0.7;
  const counts = new Array(6).fill(0);
  for (let i = 0; i < N; i++) counts[sampleToken(logits, { maxNewTokens: 1, temperature: T }, rng)]++;
  const e = Array.from(logits, (x) => Math.exp(x / T));
  const z = e.reduce((a, b) => a + b, 0);
  e.forEach((p, i) => {
    const expected = (p / z) * N;
    // 5 standard deviations of a binomial count
    assert.ok(Math.abs(counts[i] - expected) < 5 * Math.sqrt(expected * (1 - p / z)) + 1, `token ${i}: ${counts[i]} vs ${expected.toFixed(0)}`);
  });
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(sampleToken(logits, { maxNewTokens: 1, temperature: 1, topK: 2 }, rng));
  assert.deepEqual([...seen].sort(), [0, 1]);
  // probabilities at T=1: 0.55, 0.20, 0.12, ... → top-p 0.7 keeps exactly the first two
  const p1 = Array.from(logits, Math.exp); const z1 = p1.reduce((a, b) => a + b, 0);
  assert.ok(p1[0] / z1 < 0.7 && (p1[0] + p1[1]) / z1 >= 0.7);
  seen.clear();
  for (let i = 0; i < 5000; i++) seen.add(sampleToken(logits, { maxNewTokens: 1, temperature: 1, topP: 0.7 }, rng));
  assert.deepEqual([...seen].sort(), [0, 1]);
});

test('same seed → same sample; stops at eos', () => {
  const model = loadPretrained(path.join(FIXTURES, 'hf', 'gpt2-tiny'));
  const a = generate(model, [1, 2, 3], { maxNewTokens: 12, temperature: 1, rng: new Rng(9) });
  const b = generate(model, [1, 2, 3], { maxNewTokens: 12, temperature: 1, rng: new Rng(9) });
  assert.deepEqual(a, b);
  const eos = a[3];
  const c = generate(model, [1, 2, 3], { maxNewTokens: 12, temperature: 1, rng: new Rng(9), eosId: eos });
  assert.equal(c[c.length - 1], eos);
  assert.ok(c.length <= 4);
});

test('fp16 / bf16 checkpoints load with the precision loss of their format', () => {
  const src = loadPretrained(path.join(FIXTURES, 'hf', 'llama-tiny'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-half-'));
  try {
    for (const [dtype, tol] of [['F16', 2 ** -11], ['BF16', 2 ** -8]] as const) {
      savePretrained(src, tmp, { dtype });
      const back = loadPretrained(tmp);
      const a = src.namedParameters(), b = back.namedParameters();
      for (const [n, p] of a) {
        const q = b.get(n)!;
        for (let i = 0; i < p.size; i++) {
          assert.ok(Math.abs(q.data[i] - p.data[i]) <= tol * Math.abs(p.data[i]) + 1e-7, `${dtype} ${n}[${i}]: ${q.data[i]} vs ${p.data[i]}`);
        }
      }
      const ids = Int32Array.from([1, 5, 9, 13]);
      const la = noGrad(() => src.forward(ids, 1, 4).logits.data), lb = noGrad(() => back.forward(ids, 1, 4).logits.data);
      assert.ok(closeness(lb, la, 0.05, 0.05).ok, `${dtype} logits drift`);
      assert.ok(!closeness(lb, la, 0, 0).ok || dtype === 'F16', 'bf16 weights must actually be rounded');
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
