/**
 * Bench-S (methods.md §0): a synthetic oracle language model with exact next-token distributions, and
 * the small pieces every lab experiment shares — sampling from the oracle or a model, CE training,
 * logit distillation over response positions, and exact divergences on held-out sequences. Built only
 * from the public API (models, Trainer, objectives, generateBatch).
 *
 * The oracle is a fixed random 2nd-order Markov LM over V tokens: p(x_t | x_{t-2}, x_{t-1}) =
 * softmax(σ·g) with g ~ N(0, 1) per context, so every conditional is known exactly (the "golden"
 * reference). Sequences have S = T + 1 tokens: input = seq[0..T), target = seq[1..T]; the first P tokens
 * are the prompt, and distillation trains only on response positions (targets at index ≥ P).
 */
import type { Batch } from '../data/loader.js';
import { bindObjective } from '../distill/registry.js';
import { TaidSchedule } from '../distill/objectives/taid.js';
import { maskedSum } from '../distill/reduce.js';
import type { CausalLM } from '../models/base.js';
import { generateBatch } from '../models/generate.js';
import { createModel } from '../models/registry.js';
import { AdamW } from '../optim/adamw.js';
import { reshape } from '../tensor/ops.js';
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { crossEntropyLoss, Trainer, type LossFn } from '../train/trainer.js';
import { Rng } from '../util/rng.js';

export const IGNORE = -100;

/** A fixed random 2nd-order Markov LM with exact conditionals. */
export class MarkovOracle {
  /** [V·V·V] probabilities, row (a, b) = p(· | a, b) */
  readonly probs: Float64Array;
  constructor(readonly V: number, seed: number, sharpness: number) {
    const rng = new Rng(seed);
    this.probs = new Float64Array(V * V * V);
    for (let r = 0; r < V * V; r++) {
      let z = 0;
      const row = this.probs.subarray(r * V, (r + 1) * V);
      for (let v = 0; v < V; v++) { row[v] = Math.exp(sharpness * rng.normal()); z += row[v]; }
      for (let v = 0; v < V; v++) row[v] /= z;
    }
  }
  /** p(· | a, b) as a view of length V */
  row(a: number, b: number): Float64Array { return this.probs.subarray((a * this.V + b) * this.V, (a * this.V + b + 1) * this.V); }
  /** n sequences of length len (first two tokens uniform), row-major [n·len] */
  sample(n: number, len: number, rng: Rng): Int32Array {
    const out = new Int32Array(n * len);
    for (let i = 0; i < n; i++) {
      const s = out.subarray(i * len, (i + 1) * len);
      s[0] = rng.int(this.V); s[1] = rng.int(this.V);
      for (let t = 2; t < len; t++) s[t] = draw(this.row(s[t - 2], s[t - 1]), rng);
    }
    return out;
  }
  /** mean per-token entropy (nats) of the oracle on sequences */
  entropyOn(seqs: Int32Array, len: number, fromPos: number): number {
    let h = 0, n = 0;
    for (let i = 0; i < seqs.length / len; i++) {
      for (let t = Math.max(2, fromPos); t < len; t++) {
        const p = this.row(seqs[i * len + t - 2], seqs[i * len + t - 1]);
        for (const x of p) if (x > 0) h -= x * Math.log(x);
        n++;
      }
    }
    return h / n;
  }
}

/**
 * A fixed random tiny GPT-2 as the oracle ("a fixed random tiny LM", methods.md Bench-S). Random init
 * gives near-uniform outputs, so the final LayerNorm gain is set to `gain`, which scales every logit:
 * the conditionals become peaked yet share structure a trained model can learn (unlike a random
 * Markov table). Exact next-token distributions come from its forward pass.
 */
export class ModelOracle {
  readonly model: CausalLM;
  constructor(readonly V: number, S: number, size: ModelSize, seed: number, gain: number) {
    this.model = benchModel(size, V, S, seed);
    const lnf = this.model.namedParameters().get('transformer.ln_f.weight');
    if (!lnf) throw new Error('ModelOracle: no transformer.ln_f.weight');
    lnf.data.fill(gain);
  }
  /** n sequences of length len: a uniform first token, then samples at temperature 1 ([n·len]) */
  sample(n: number, len: number, rng: Rng): Int32Array {
    const first = new Int32Array(n * len);
    for (let i = 0; i < n; i++) first[i * len] = rng.int(this.V);
    return sampleResponses(this.model, first, len, 1, rng);
  }
  logProbs(b: Batch): Float64Array { return modelLogProbs(this.model, b); }
  /** mean per-token entropy (nats) on the counted positions of a batch */
  entropy(b: Batch): number {
    const lp = this.logProbs(b);
    let h = 0, n = 0;
    for (let r = 0; r < b.target.length; r++) {
      if (b.target[r] === IGNORE) continue;
      for (let v = 0; v < this.V; v++) { const a = lp[r * this.V + v]; h -= Math.exp(a) * a; }
      n++;
    }
    return h / n;
  }
}

function draw(p: ArrayLike<number>, rng: Rng): number {
  let u = rng.nextFloat();
  for (let v = 0; v < p.length; v++) { u -= p[v]; if (u < 0) return v; }
  return p.length - 1;
}

export interface ModelSize { n_embd: number; n_layer: number; n_head: number }

/** A GPT-2 of this size over the oracle's vocabulary with S positions (no dropout). */
export function benchModel(size: ModelSize, V: number, S: number, seed: number): CausalLM {
  return createModel({ model_type: 'gpt2', vocab_size: V, n_positions: S, ...size, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }, seed, 'bench model');
}

/** Batch of sequences (rows of [n·S]) with targets masked before `promptLen` (0 = train on all). */
export function makeBatch(seqs: Int32Array, S: number, rows: ArrayLike<number>, promptLen: number): Batch {
  const B = rows.length, T = S - 1;
  const input = new Int32Array(B * T), target = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = seqs.subarray(rows[b] * S, (rows[b] + 1) * S);
    for (let t = 0; t < T; t++) {
      input[b * T + t] = s[t];
      target[b * T + t] = t + 1 >= promptLen ? s[t + 1] : IGNORE;
    }
  }
  return { input, target, batchSize: B, seqLen: T };
}

/** Continues the first `promptLen` tokens of each sequence with samples of `model` (temperature 1). */
export function sampleResponses(model: CausalLM, seqs: Int32Array, S: number, promptLen: number, rng: Rng, batch = 64): Int32Array {
  const n = seqs.length / S, out = new Int32Array(seqs.length);
  for (let i0 = 0; i0 < n; i0 += batch) {
    const B = Math.min(batch, n - i0);
    const prompts = new Int32Array(B * promptLen);
    for (let b = 0; b < B; b++) prompts.set(seqs.subarray((i0 + b) * S, (i0 + b) * S + promptLen), b * promptLen);
    const cont = generateBatch(model, prompts, B, { maxNewTokens: S - promptLen, temperature: 1, rng });
    for (let b = 0; b < B; b++) {
      out.set(prompts.subarray(b * promptLen, (b + 1) * promptLen), (i0 + b) * S);
      out.set(cont[b].slice(0, S - promptLen), (i0 + b) * S + promptLen);
    }
  }
  return out;
}

export interface OptimSpec { steps: number; lr: number; batch: number; warmup?: number; schedule?: 'cosine' | 'constant' }

export function makeTrainer(model: CausalLM, o: OptimSpec, lossFn?: LossFn): Trainer {
  const optimizer = new AdamW(model.namedParameters(), { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0 });
  return new Trainer({
    model, optimizer, gradClip: 1, gradAccumSteps: 1, lossFn,
    schedule: { kind: o.schedule ?? 'constant', peakLr: o.lr, minLr: o.lr / 10, warmupSteps: o.warmup ?? Math.min(50, Math.round(o.steps / 20)), totalSteps: o.steps },
  });
}

/** Shuffled minibatch indices over n rows, epoch after epoch. */
export function* epochs(n: number, batch: number, rng: Rng): Generator<number[]> {
  for (;;) {
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); [perm[i], perm[j]] = [perm[j], perm[i]]; }
    for (let i = 0; i + batch <= n; i += batch) yield perm.slice(i, i + batch);
    if (n < batch) yield perm;
  }
}

/** Next-token CE training on full sequences (the teacher learns the oracle from samples). */
export function trainCe(model: CausalLM, seqs: Int32Array, S: number, o: OptimSpec, seed: number, onStep?: (step: number, loss: number) => void): void {
  const trainer = makeTrainer(model, o, crossEntropyLoss);
  const it = epochs(seqs.length / S, o.batch, new Rng(seed));
  for (let s = 0; s < o.steps; s++) {
    const r = trainer.stepOn([makeBatch(seqs, S, it.next().value!, 0)]);
    onStep?.(s + 1, r.loss);
  }
}

/** A logit-distillation loss from a frozen teacher model: Σ over response tokens of the objective. */
export function distillLoss(teacher: CausalLM, objective: string, options: Record<string, unknown> = {}, patch?: () => Record<string, unknown>): LossFn {
  const base = bindObjective(objective, options, `lab ${objective}`);
  return (model, batch) => {
    const obj = patch ? base.withOptions(patch()) : base;
    const V = model.vocabSize;
    const tl = noGrad(() => reshape(teacher.forward(batch.input, batch.batchSize, batch.seqLen).logits, [-1, V])); // [N, V]
    const { logits } = model.forward(batch.input, batch.batchSize, batch.seqLen); // [B, T, V]
    const per: Tensor = obj.perToken({ student: reshape(logits, [-1, V]), teacher: tl, labels: batch.target }); // [N]
    const mask = new Float32Array(batch.target.length);
    for (let i = 0; i < mask.length; i++) mask[i] = batch.target[i] === IGNORE ? 0 : 1;
    return { sum: maskedSum(per, mask).sum };
  };
}

/** logits [N·V] → log-probabilities (float64) */
function logSoftmaxRows(logits: Float32Array, V: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / V; r++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[r * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - mx);
    const lz = mx + Math.log(z);
    for (let v = 0; v < V; v++) out[r * V + v] = logits[r * V + v] - lz;
  }
  return out;
}

/** Exact log-probabilities [N·V] of a model on a batch (no grad). */
export function modelLogProbs(model: CausalLM, b: Batch): Float64Array {
  return noGrad(() => logSoftmaxRows(model.forward(b.input, b.batchSize, b.seqLen).logits.data, model.vocabSize));
}

/** Oracle log-probabilities [N·V] at each input position (position t predicts seq[t+1] from seq[t-1], seq[t]). */
export function oracleLogProbs(oracle: MarkovOracle, b: Batch): Float64Array {
  const V = oracle.V, T = b.seqLen, out = new Float64Array(b.batchSize * T * V).fill(NaN);
  for (let i = 0; i < b.batchSize; i++) {
    for (let t = 1; t < T; t++) {
      const p = oracle.row(b.input[i * T + t - 1], b.input[i * T + t]);
      for (let v = 0; v < V; v++) out[(i * T + t) * V + v] = Math.log(Math.max(p[v], 1e-300));
    }
  }
  return out;
}

export interface Divergences { fkl: number; rkl: number; tvd: number; nll: number }

/** Token-mean divergences between reference p (log-probs) and model q over counted positions; nll of targets under q. */
export function divergences(lp: Float64Array, lq: Float64Array, b: Batch, V: number): Divergences {
  let fkl = 0, rkl = 0, tvd = 0, nll = 0, n = 0;
  for (let r = 0; r < b.target.length; r++) {
    if (b.target[r] === IGNORE) continue;
    for (let v = 0; v < V; v++) {
      const a = lp[r * V + v], c = lq[r * V + v], pa = Math.exp(a), pc = Math.exp(c);
      fkl += pa * (a - c); rkl += pc * (c - a); tvd += 0.5 * Math.abs(pa - pc);
    }
    nll -= lq[r * V + b.target[r]];
    n++;
  }
  return { fkl: fkl / n, rkl: rkl / n, tvd: tvd / n, nll: nll / n };
}

/** Least-squares line y = a + b·x. */
export function linearFit(xs: number[], ys: number[]): { a: number; b: number; sigma: number } {
  const n = xs.length, mx = xs.reduce((s, x) => s + x, 0) / n, my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  const b = sxx > 0 ? sxy / sxx : 0, a = my - b * mx;
  const res = xs.map((x, i) => ys[i] - (a + b * x));
  const sigma = Math.sqrt(res.reduce((s, r) => s + r * r, 0) / Math.max(1, n - 2));
  return { a, b, sigma };
}

/** Progress of a lab experiment (the CLI draws bars from these; library code never prints). */
export type LabEvent =
  | { type: 'stage'; label: string; total: number }
  | { type: 'tick'; value: number; info?: Record<string, string> }
  | { type: 'log'; message: string };
export type LabSize = 'full' | 'quick' | 'tiny';

/** Where a power law fitted to the first `fitFraction` of a curve stops describing it (3σ rule, log-log). */
export function powerLawDeviation(points: { step: number; value: number }[], fitFraction = 0.2, floor = 0.03): { exponent: number; fitUntil: number; fireStep: number | null; fit: (s: number) => number } {
  const pts = points.filter((p) => p.step > 0 && p.value > 0);
  const last = pts.length ? pts[pts.length - 1].step : 0;
  let fitPts = pts.filter((p) => p.step <= fitFraction * last);
  if (fitPts.length < 3) fitPts = pts.slice(0, Math.min(3, pts.length));
  const { a, b, sigma } = linearFit(fitPts.map((p) => Math.log(p.step)), fitPts.map((p) => Math.log(p.value)));
  const fit = (s: number): number => Math.exp(a + b * Math.log(s));
  const fitUntil = fitPts.length ? fitPts[fitPts.length - 1].step : 0;
  const tol = Math.max(3 * sigma, floor);
  const fire = pts.find((p) => p.step > fitUntil && Math.abs(Math.log(p.value) - Math.log(fit(p.step))) > tol);
  return { exponent: -b, fitUntil, fireStep: fire ? fire.step : null, fit };
}

/** How a student is distilled: objective (+ options), offline on given sequences or on-policy. */
export interface DistillMethod { name: string; objective: string; options?: Record<string, unknown>; onPolicy?: boolean }

/**
 * Distills `student` from `teacher` for o.steps: offline on minibatches of `seqs` (responses after the
 * first P tokens), or on-policy (the student continues the prompts of `seqs` every step). TAID's t
 * follows its adaptive schedule (t_start 0.4 → 1) as in the trainer.
 */
export function distillStudent(student: CausalLM, teacher: CausalLM, seqs: Int32Array, S: number, P: number, m: DistillMethod, o: OptimSpec, seed: number, onStep?: (step: number, loss: number) => void): void {
  const sched = m.objective === 'taid' ? new TaidSchedule({ t_start: 0.4, t_end: 1, alpha: 5e-4, beta: 0.99, adaptive: true }, o.steps) : null;
  const trainer = makeTrainer(student, o, distillLoss(teacher, m.objective, m.options ?? {}, sched ? () => ({ t: sched.t }) : undefined));
  const it = epochs(seqs.length / S, o.batch, new Rng(seed));
  const gen = new Rng(seed + 1);
  for (let s = 0; s < o.steps; s++) {
    const rows: number[] = it.next().value!;
    let batch: Batch;
    if (m.onPolicy) {
      const ps = new Int32Array(rows.length * S);
      rows.forEach((r, i) => ps.set(seqs.subarray(r * S, (r + 1) * S), i * S));
      batch = makeBatch(sampleResponses(student, ps, S, P, gen), S, rows.map((_, i) => i), P);
    } else batch = makeBatch(seqs, S, rows, P);
    const r = trainer.stepOn([batch]);
    sched?.update(r.loss, s);
    onStep?.(s + 1, r.loss);
  }
}
