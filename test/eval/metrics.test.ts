/**
 * Evaluation metrics against independent computations: hand-built distributions with known values, the
 * distillation objectives' own per-token losses (a separate tensor-op implementation), calibrated and
 * miscalibrated synthetic predictors, and the trainer's cross-entropy on real models.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bindObjective } from '../../src/distill/index.js';
import { IGNORE_INDEX } from '../../src/distill/types.js';
import { evaluateModels } from '../../src/eval/evaluate.js';
import {
  acceptanceProbability, CalibrationHistogram, EvalAccumulator, expectedCalibrationError, expectedTokensPerCall,
  klFromLogProbs, logSoftmaxRow, probsRow, totalVariation,
} from '../../src/eval/metrics.js';
import { loadPretrained } from '../../src/models/registry.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { evaluateLoss } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { FIXTURES } from '../helpers/fixtures.js';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

/** Random logit rows [N, V] with a spread of peakedness. */
function randomLogits(rng: Rng, N: number, V: number, scale = 3): Float32Array {
  const x = new Float32Array(N * V);
  for (let i = 0; i < N; i++) {
    const s = scale * (0.2 + 1.8 * rng.nextFloat());
    for (let j = 0; j < V; j++) x[i * V + j] = s * (rng.nextFloat() * 2 - 1);
  }
  return x;
}

describe('row metrics on hand-built distributions', () => {
  const p = [0.5, 0.25, 0.25], q = [0.25, 0.25, 0.5];
  const logits = (d: number[]): Float32Array => Float32Array.from(d.map(Math.log));

  test('softmax rows: sum to 1, shift-invariant, temperature sharpens, temperature 0 is the one-hot argmax', () => {
    const z = Float32Array.from([1, 3, -2, 3]);
    const pr = probsRow(z);
    close(pr.reduce((a, b) => a + b, 0), 1, 1e-12, 'sum');
    const shifted = probsRow(Float32Array.from(z, (v) => v + 100));
    pr.forEach((v, j) => close(v, shifted[j], 1e-12, `shift ${j}`));
    assert.ok(probsRow(z, 0.5)[1] > pr[1], 'temperature < 1 sharpens');
    assert.deepEqual(Array.from(probsRow(z, 0)), [0, 1, 0, 0], 'greedy: first argmax');
    close(Math.exp(logSoftmaxRow(z)[2]), pr[2], 1e-15, 'exp(logsoftmax) = softmax');
  });

  test('KL, TVD and acceptance have their closed-form values', () => {
    const lp = logSoftmaxRow(logits(p)), lq = logSoftmaxRow(logits(q));
    close(klFromLogProbs(lp, lq), 0.25 * Math.LN2, 1e-7, 'KL(p‖q) = ½ln2 − ¼ln2 (float32 logits)');
    close(klFromLogProbs(lq, lp), 0.25 * Math.LN2, 1e-7, 'KL(q‖p) (symmetric pair)');
    close(totalVariation(p, q), 0.25, 1e-15, 'TVD');
    close(totalVariation(probsRow(logits(p)), probsRow(logits(q))), 0.25, 1e-7, 'TVD from logits');
    close(acceptanceProbability(p, q), 0.75, 1e-15, 'Σ min(p, q)');
    // a zero-probability teacher entry contributes nothing to KL(p‖q)
    close(klFromLogProbs([0, -Infinity], [Math.log(0.5), Math.log(0.5)]), Math.LN2, 1e-12, 'KL with p_j = 0');
  });

  test('acceptance = 1 − TVD on random distributions', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 50; i++) {
      const a = probsRow(randomLogits(rng, 1, 11)), b = probsRow(randomLogits(rng, 1, 11));
      close(acceptanceProbability(a, b), 1 - totalVariation(a, b), 1e-12, `row ${i}`);
    }
  });

  test('accumulator on the hand-built pair: every metric', () => {
    const acc = new EvalAccumulator(3);
    // rows: student q vs teacher p, gold labels 0 and 2
    const S = Float32Array.from([...logits(q), ...logits(q)]), T = Float32Array.from([...logits(p), ...logits(p)]);
    acc.add(S, T, Int32Array.from([0, 2]));
    const r = acc.result();
    assert.equal(r.tokens, 2);
    close(r.student.loss, -(Math.log(0.25) + Math.log(0.5)) / 2, 1e-6, 'student NLL');
    close(r.student.perplexity, Math.exp(r.student.loss), 1e-9, 'ppl = exp(loss)');
    close(r.student.bitsPerToken, r.student.loss / Math.LN2, 1e-12, 'bits');
    close(r.student.accuracy, 0.5, 0, 'student argmax is 2: right once');
    close(r.teacher!.accuracy, 0.5, 0, 'teacher argmax is 0: right once');
    const d = r.divergence!;
    close(d.forwardKl, 0.25 * Math.LN2, 1e-6, 'fkl');
    close(d.reverseKl, 0.25 * Math.LN2, 1e-6, 'rkl');
    close(d.tvd, 0.25, 1e-6, 'tvd');
    close(d.acceptance, 0.75, 1e-6, 'acceptance');
    close(d.top1Agreement, 0, 0, 'argmaxes differ');
    // ECE: both predictions have confidence 0.5 (one bin), accuracy 0.5 → 0
    close(r.student.ece, 0, 1e-6, 'student ECE');
  });

  test('identical teacher and student: KL = TVD = 0, agreement 1, acceptance 1', () => {
    const rng = new Rng(1);
    const V = 17, N = 40;
    const z = randomLogits(rng, N, V);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rng.nextFloat() * V));
    const acc = new EvalAccumulator(V);
    acc.add(z, z.slice(), labels);
    const { divergence: d, student, teacher } = acc.result();
    assert.equal(d!.forwardKl, 0);
    assert.equal(d!.reverseKl, 0);
    assert.equal(d!.tvd, 0);
    assert.equal(d!.top1Agreement, 1);
    assert.equal(d!.acceptance, 1);
    assert.equal(student.loss, teacher!.loss);
  });

  test('uniform student: loss = ln V; positions labelled IGNORE_INDEX are skipped', () => {
    const V = 10;
    const acc = new EvalAccumulator(V);
    acc.add(new Float32Array(3 * V), null, Int32Array.from([4, IGNORE_INDEX, 7]));
    const r = acc.result();
    assert.equal(r.tokens, 2);
    close(r.student.loss, Math.log(V), 1e-12, 'ln V');
    assert.equal(r.divergence, undefined);
    assert.equal(r.teacher, undefined);
  });
});

test('per-token FKL, RKL and TVD match the distillation objectives (independent tensor-op implementations)', () => {
  const rng = new Rng(7);
  const N = 64, V = 50;
  const s = randomLogits(rng, N, V), t = randomLogits(rng, N, V);
  const labels = Int32Array.from({ length: N }, (_, i) => (i % 9 === 0 ? IGNORE_INDEX : Math.floor(rng.nextFloat() * V)));
  const acc = new EvalAccumulator(V);
  acc.add(s, t, labels);
  const d = acc.result().divergence!;
  const mean = (name: 'fkl' | 'rkl' | 'tvd'): number => {
    const per = bindObjective(name, {}).perToken({ student: new Tensor(s.slice(), [N, V]), teacher: new Tensor(t.slice(), [N, V]), labels }).data;
    let sum = 0, n = 0;
    for (let i = 0; i < N; i++) if (labels[i] !== IGNORE_INDEX) { sum += per[i]; n++; }
    return sum / n;
  };
  close(d.forwardKl, mean('fkl'), 1e-5, 'fkl');
  close(d.reverseKl, mean('rkl'), 1e-5, 'rkl');
  close(d.tvd, mean('tvd'), 1e-5, 'tvd');
});

describe('expected calibration error', () => {
  test('hand-computed: bins, weights and the |accuracy − confidence| gap', () => {
    // bin (0.8667, 0.9333]: 4 predictions at 0.9, 3 right → gap 0.15; bin (0.2667, 0.3333]: 1 at 0.3, wrong → 0.3
    const ece = expectedCalibrationError([0.9, 0.9, 0.9, 0.9, 0.3], [1, 1, 1, 0, 0]);
    close(ece, (4 / 5) * 0.15 + (1 / 5) * 0.3, 1e-12, 'ECE');
    const h = new CalibrationHistogram(15);
    h.add(0, false); h.add(1, true); h.add(1 / 15, true);
    const bins = h.table();
    assert.equal(bins[0].count, 2, 'confidence 0 and 1/15 fall in the first bin (lo, hi]');
    assert.equal(bins[14].count, 1, 'confidence 1 falls in the last bin');
    assert.ok(Number.isNaN(bins[7].confidence), 'empty bins have NaN means');
    assert.equal(bins.length, 15);
  });

  test('a perfectly calibrated synthetic predictor has ECE ≈ 0; an overconfident one does not', () => {
    const rng = new Rng(11);
    const n = 100_000;
    const conf = new Float64Array(n), right = new Uint8Array(n), over = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      conf[i] = rng.nextFloat();
      right[i] = rng.nextFloat() < conf[i] ? 1 : 0; // right with probability = its confidence
      over[i] = rng.nextFloat() < 0.7 * conf[i] ? 1 : 0; // right less often than claimed
    }
    const ece = expectedCalibrationError(conf, right);
    assert.ok(ece < 0.01, `calibrated ECE ${ece}`);
    close(expectedCalibrationError(conf, over), 0.3 * 0.5, 0.01, 'overconfident by 30 % of confidence: ECE ≈ 0.3·E[c]');
  });

  test('through the accumulator: gold tokens drawn from the student itself → calibrated; sharpened student → not', () => {
    const rng = new Rng(5);
    const N = 20_000, V = 8;
    const z = randomLogits(rng, N, V, 4);
    const labels = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      const p = probsRow(z.subarray(i * V, (i + 1) * V));
      let u = rng.nextFloat(), j = 0;
      while (j < V - 1 && (u -= p[j]) >= 0) j++;
      labels[i] = j;
    }
    const calibrated = new EvalAccumulator(V);
    calibrated.add(z, null, labels);
    const sharp = new EvalAccumulator(V);
    sharp.add(Float32Array.from(z, (v) => 3 * v), null, labels);
    const e1 = calibrated.result().student.ece, e2 = sharp.result().student.ece;
    assert.ok(e1 < 0.02, `calibrated student ECE ${e1}`);
    assert.ok(e2 > 0.1, `overconfident student ECE ${e2}`);
  });
});

test('expected tokens per call: limits and agreement with a simulation of independent acceptances', () => {
  assert.equal(expectedTokensPerCall(1, 4), 5);
  assert.equal(expectedTokensPerCall(0, 4), 1);
  const rng = new Rng(2);
  const alpha = 0.7, gamma = 3, trials = 50_000;
  let tokens = 0;
  for (let i = 0; i < trials; i++) {
    let a = 0;
    while (a < gamma && rng.nextFloat() < alpha) a++;
    tokens += a + 1;
  }
  close(tokens / trials, expectedTokensPerCall(alpha, gamma), 0.02, 'simulated');
});

test('evaluateModels on real models: student loss equals the trainer\'s cross-entropy; self-distance 0', () => {
  const model = loadPretrained(path.join(FIXTURES, 'hf', 'gpt2-tiny'));
  const other = loadPretrained(path.join(FIXTURES, 'hf', 'llama-tiny'));
  const rng = new Rng(9);
  const B = 3, T = 12, V = model.vocabSize;
  assert.equal(other.vocabSize, V);
  const batches = [0, 1].map(() => {
    const input = Int32Array.from({ length: B * T }, () => Math.floor(rng.nextFloat() * V));
    const target = Int32Array.from({ length: B * T }, (_, i) => (i === 5 ? IGNORE_INDEX : Math.floor(rng.nextFloat() * V)));
    return { input, target, batchSize: B, seqLen: T };
  });
  const self = evaluateModels(model, batches, { teacher: model });
  const ref = evaluateLoss(model, batches);
  assert.equal(self.tokens, ref.tokens);
  close(self.student.loss, ref.loss, 1e-5, 'loss vs evaluateLoss');
  assert.equal(self.divergence!.tvd, 0);
  assert.equal(self.divergence!.acceptance, 1);
  const cross = evaluateModels(model, batches, { teacher: other });
  close(cross.teacher!.loss, evaluateLoss(other, batches).loss, 1e-5, 'teacher loss');
  assert.ok(cross.divergence!.forwardKl > 0 && cross.divergence!.tvd > 0 && cross.divergence!.tvd < 1);
  assert.equal(model.training, true, 'training flag restored');
});
