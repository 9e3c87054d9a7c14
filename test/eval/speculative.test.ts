/**
 * Speculative sampling: the emitted tokens are distributed exactly as the teacher's own samples (the
 * defining property, checked with a chi-square test against exact sequence probabilities), a student
 * equal to the teacher is always accepted, greedy speculative decoding equals greedy decoding, the
 * measured acceptance matches Σ min(p, q) = 1 − TVD within sampling error, and cache rollback is exact.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { probsRow, totalVariation } from '../../src/eval/metrics.js';
import { measureSpeculative, speculativeGenerate, truncateCache } from '../../src/eval/speculative.js';
import type { CausalLM } from '../../src/models/base.js';
import { generate } from '../../src/models/generate.js';
import { createModel } from '../../src/models/registry.js';
import { noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { closeness } from '../helpers/fixtures.js';

/** A tiny GPT-2 whose large init makes next-token distributions peaked and seed-dependent. */
function tinyModel(seed: number, vocab: number, opts: { layers?: number; positions?: number } = {}): CausalLM {
  return createModel({
    model_type: 'gpt2', vocab_size: vocab, n_positions: opts.positions ?? 16, n_embd: 8, n_layer: opts.layers ?? 1, n_head: 2,
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, initializer_range: 0.3,
  }, seed);
}

/** Next-token distribution after `prefix` from a full forward pass (no cache). */
function nextProbs(model: CausalLM, prefix: number[], temperature = 1): Float64Array {
  return noGrad(() => {
    const logits = model.forward(Int32Array.from(prefix), 1, prefix.length).logits.data; // [1, T, V]
    return probsRow(logits.subarray(logits.length - model.vocabSize), temperature);
  });
}

/** Exact probability of every continuation of length L (index = base-V number of the tokens). */
function sequenceProbs(model: CausalLM, prompt: number[], L: number): Float64Array {
  const V = model.vocabSize;
  let probs = Float64Array.of(1);
  for (let len = 0; len < L; len++) {
    const next = new Float64Array(probs.length * V);
    for (let c = 0; c < probs.length; c++) {
      const prefix = [...prompt];
      for (let i = len - 1, x = c; i >= 0; i--, x = Math.floor(x / V)) prefix.splice(prompt.length, 0, x % V);
      const p = nextProbs(model, prefix);
      for (let j = 0; j < V; j++) next[c * V + j] = probs[c] * p[j];
    }
    probs = next;
  }
  return probs;
}

/** Pearson chi-square of counts against probabilities, pooling cells expected < 5 into one. */
function chiSquare(counts: number[], probs: Float64Array, N: number): { x2: number; dof: number } {
  let x2 = 0, cells = 0, poolO = 0, poolE = 0;
  probs.forEach((p, c) => {
    const e = N * p;
    if (e < 5) { poolO += counts[c]; poolE += e; return; }
    x2 += (counts[c] - e) ** 2 / e;
    cells++;
  });
  if (poolE > 0) { x2 += (poolO - poolE) ** 2 / poolE; cells++; }
  return { x2, dof: cells - 1 };
}

describe('speculative sampling', () => {
  const V = 4;
  const teacher = tinyModel(1, V);
  const student = tinyModel(2, V);
  const prompt = [1, 2];
  // One sampling run shared by the distribution and acceptance tests (the expensive part: ~4 forwards per sample).
  const L = 3, N = 6000;
  const counts = new Array<number>(V ** L).fill(0);
  const total = { tested: 0, accepted: 0, expected: 0, variance: 0, targetCalls: 0, newTokens: 0 };
  before(() => {
    const rng = new Rng(42);
    for (let i = 0; i < N; i++) {
      const { tokens, stats } = speculativeGenerate(student, teacher, prompt, { gamma: 2, maxNewTokens: L, rng });
      assert.equal(tokens.length, L);
      counts[tokens.reduce((a, x) => a * V + x, 0)]++;
      total.tested += stats.tested; total.accepted += stats.accepted;
      total.expected += stats.expectedAccepted; total.variance += stats.acceptedVariance;
      total.targetCalls += stats.targetCalls; total.newTokens += stats.newTokens;
    }
  });

  test('the output distribution equals the teacher\'s (chi-square over all 3-token continuations)', () => {
    // every branch of the algorithm ran many times: acceptances, rejections (residual draws), all-accepted bonus tokens
    const rejected = total.tested - total.accepted, bonus = total.targetCalls - rejected;
    assert.ok(total.accepted > 1000 && rejected > 1000 && bonus > 1000, `accepted ${total.accepted}, rejected ${rejected}, bonus ${bonus}`);
    const pT = sequenceProbs(teacher, prompt, L);
    const pS = sequenceProbs(student, prompt, L);
    const vsTeacher = chiSquare(counts, pT, N), vsStudent = chiSquare(counts, pS, N);
    // p ≈ 1e-6 bound for chi-square with dof degrees of freedom (normal approximation, 5σ)
    const bound = (dof: number): number => dof + 5 * Math.sqrt(2 * dof);
    assert.ok(vsTeacher.x2 < bound(vsTeacher.dof), `vs teacher: χ² ${vsTeacher.x2.toFixed(1)} with ${vsTeacher.dof} dof (bound ${bound(vsTeacher.dof).toFixed(1)})`);
    // power: the same counts are wildly inconsistent with the student's own distribution
    assert.ok(vsStudent.x2 > 10 * bound(vsStudent.dof), `vs student: χ² ${vsStudent.x2.toFixed(1)} with ${vsStudent.dof} dof`);
  });

  test('measured acceptance = Σ min(p, q) = 1 − TVD within sampling error', () => {
    // all positions: accepted vs Σ α over the positions actually tested
    const sd = Math.sqrt(total.variance);
    assert.ok(Math.abs(total.accepted - total.expected) < 4 * sd, `accepted ${total.accepted} vs expected ${total.expected.toFixed(1)} ± ${sd.toFixed(1)}`);
    const alpha = total.expected / total.tested;
    assert.ok(alpha > 0.2 && alpha < 0.9, `a student that is neither useless nor perfect (α = ${alpha})`);
    // first draft position alone: its prefix is fixed, so α is one number, computed here by full forward passes
    const alpha1 = 1 - totalVariation(nextProbs(teacher, prompt), nextProbs(student, prompt));
    const runs = 1500;
    const rng = new Rng(9);
    let first = 0; // γ = 1 and two new tokens: exactly one draft is tested per run, at the first position
    for (let i = 0; i < runs; i++) first += speculativeGenerate(student, teacher, prompt, { gamma: 1, maxNewTokens: 2, rng }).stats.accepted;
    const sd1 = Math.sqrt(runs * alpha1 * (1 - alpha1));
    assert.ok(Math.abs(first - runs * alpha1) < 4 * sd1, `first position: ${first} accepted of ${runs}, expected ${(runs * alpha1).toFixed(0)} ± ${sd1.toFixed(0)}`);
  });

  test('student == teacher: every draft is accepted, γ + 1 tokens per teacher call', () => {
    const model = tinyModel(3, 7, { layers: 2, positions: 64 });
    const gamma = 4;
    const r = measureSpeculative(model, model, [[1, 2, 3], [4], [5, 6]], { gamma, maxNewTokens: 20, rng: new Rng(1) });
    assert.equal(r.accepted, r.tested);
    assert.equal(r.tested, r.drafted);
    assert.equal(r.acceptanceRate, 1);
    assert.equal(r.expectedAcceptance, 1);
    assert.equal(r.newTokens, 60);
    assert.equal(r.tokensPerTargetCall, gamma + 1);
    assert.equal(r.predictedTokensPerTargetCall, gamma + 1);
  });

  test('temperature 0: speculative decoding reproduces the teacher\'s greedy decoding', () => {
    const t = tinyModel(4, 9, { positions: 40 }), s = tinyModel(5, 9, { positions: 40 });
    for (const p of [[1], [3, 1, 4, 1, 5]]) {
      const want = generate(t, p, { maxNewTokens: 30, temperature: 0 });
      const got = speculativeGenerate(s, t, p, { gamma: 3, maxNewTokens: 30, temperature: 0 });
      assert.deepEqual(got.tokens, want);
      assert.ok(got.stats.accepted < got.stats.tested, 'a different student is sometimes rejected');
    }
  });

  test('budgets: the position limit and maxNewTokens are respected; eos stops', () => {
    const t = tinyModel(6, 5, { positions: 10 }), s = tinyModel(7, 5, { positions: 12 });
    for (let seed = 0; seed < 20; seed++) {
      const r = speculativeGenerate(s, t, [0, 1, 2], { gamma: 4, maxNewTokens: 100, rng: new Rng(seed) });
      assert.equal(r.tokens.length, 7, 'min(maxPositions) − prompt');
      const short = speculativeGenerate(s, t, [0, 1, 2], { gamma: 4, maxNewTokens: 3, rng: new Rng(seed) });
      assert.equal(short.tokens.length, 3);
      const eos = r.tokens[2];
      const stopped = speculativeGenerate(s, t, [0, 1, 2], { gamma: 4, maxNewTokens: 100, rng: new Rng(seed), eosId: eos });
      assert.equal(stopped.tokens.at(-1), eos);
      assert.ok(stopped.tokens.indexOf(eos) === stopped.tokens.length - 1 && stopped.tokens.length <= 3);
    }
  });

  test('truncateCache: re-feeding after a rollback equals a full forward pass', () => {
    const model = tinyModel(8, 11, { layers: 2, positions: 32 }).eval();
    const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    noGrad(() => {
      const full = model.forward(Int32Array.from(ids), 1, ids.length).logits.data; // [1, 10, V]
      const cache = model.newCache();
      model.forward(Int32Array.from([...ids.slice(0, 6), 0, 0, 0]), 1, 9, { cache }); // 3 wrong "drafts"
      truncateCache(cache, 6);
      assert.equal(cache.length, 6);
      assert.equal(cache.layers[0].k!.shape[2], 6);
      const rest = model.forward(Int32Array.from(ids.slice(6)), 1, 4, { cache }).logits.data;
      const r = closeness(rest, full.subarray(6 * 11), 1e-5, 1e-4);
      assert.ok(r.ok, `max abs diff ${r.maxAbs}`);
      truncateCache(cache, 0);
      assert.equal(cache.layers[1].v, null);
      assert.throws(() => truncateCache(cache, 1), RangeError);
    });
  });
});
