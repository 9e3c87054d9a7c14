/**
 * Teacher–student evaluation metrics on next-token distributions, computed row by row in float64:
 * perplexity, forward/reverse KL, total variation, top-1 agreement, expected calibration error, and the
 * speculative-decoding acceptance they imply (DistillSpec: a draft q verified against a target p accepts
 * a token with probability Σ min(p, q) = 1 − TVD(p, q)).
 *
 * Conventions: p is the teacher (target) distribution, q the student (draft); rows are logits of length
 * V; every mean is over positions whose gold label is not IGNORE_INDEX (−100), as in training.
 */
import { IGNORE_INDEX } from '../distill/types.js';

/** log-softmax of one logit row at `temperature` (> 0), in float64. */
export function logSoftmaxRow(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const V = logits.length;
  const out = new Float64Array(V);
  let mx = -Infinity;
  for (let j = 0; j < V; j++) if (logits[j] > mx) mx = logits[j];
  let s = 0;
  for (let j = 0; j < V; j++) {
    out[j] = (logits[j] - mx) / temperature;
    s += Math.exp(out[j]);
  }
  const lse = Math.log(s);
  for (let j = 0; j < V; j++) out[j] -= lse;
  return out;
}

/** Index of the largest entry (the first one on ties, like `sampleToken`'s greedy path). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < x.length; j++) if (x[j] > x[best]) best = j;
  return best;
}

/**
 * The sampling distribution of one logit row: softmax(logits / temperature), or the one-hot argmax for
 * temperature 0 (greedy decoding is sampling from that point mass).
 */
export function probsRow(logits: ArrayLike<number>, temperature = 1): Float64Array {
  if (temperature <= 0) {
    const p = new Float64Array(logits.length);
    p[argmax(logits)] = 1;
    return p;
  }
  const lp = logSoftmaxRow(logits, temperature);
  for (let j = 0; j < lp.length; j++) lp[j] = Math.exp(lp[j]);
  return lp;
}

/** KL(p‖q) = Σ p (log p − log q) in nats, from log-probabilities (0·log 0 = 0). */
export function klFromLogProbs(logP: ArrayLike<number>, logQ: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < logP.length; j++) {
    const p = Math.exp(logP[j]);
    if (p > 0) s += p * (logP[j] - logQ[j]);
  }
  return s;
}

/** Total variation ½ Σ |p − q| ∈ [0, 1] between two probability vectors. */
export function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < p.length; j++) s += Math.abs(p[j] - q[j]);
  return 0.5 * s;
}

/**
 * Probability that speculative sampling accepts a token drafted from q when the target is p:
 * Σ min(p, q) (Leviathan et al. 2023, §3.1) — equal to 1 − TVD(p, q).
 */
export function acceptanceProbability(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < p.length; j++) s += Math.min(p[j], q[j]);
  return s;
}

/**
 * Expected tokens produced per target-model call with γ drafted tokens when each draft is accepted
 * independently with probability α (Leviathan et al. eq. 1): (1 − α^{γ+1}) / (1 − α); γ + 1 at α = 1.
 */
export function expectedTokensPerCall(alpha: number, gamma: number): number {
  if (!(alpha >= 0 && alpha <= 1)) return NaN;
  if (alpha > 1 - 1e-12) return gamma + 1;
  return (1 - alpha ** (gamma + 1)) / (1 - alpha);
}

/** One reliability-diagram bin: predictions with confidence in (lo, hi]. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** mean confidence of the bin's predictions (NaN when empty) */
  confidence: number;
  /** fraction of the bin's predictions that were right (NaN when empty) */
  accuracy: number;
}

/**
 * Equal-width confidence histogram for the expected calibration error (Guo et al. 2017):
 * ECE = Σ_b (n_b / N) |acc_b − conf_b| over `bins` bins (lo, hi] of [0, 1] (confidence 0 falls in bin 0).
 */
export class CalibrationHistogram {
  private readonly count: Float64Array;
  private readonly conf: Float64Array;
  private readonly correct: Float64Array;
  constructor(readonly bins = 15) {
    if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`calibration bins must be a positive integer, got ${bins}`);
    this.count = new Float64Array(bins);
    this.conf = new Float64Array(bins);
    this.correct = new Float64Array(bins);
  }
  /** Adds one prediction: its confidence ∈ [0, 1] and whether it was right. */
  add(confidence: number, correct: boolean): void {
    const b = Math.min(this.bins - 1, Math.max(0, Math.ceil(confidence * this.bins) - 1));
    this.count[b]++;
    this.conf[b] += confidence;
    if (correct) this.correct[b]++;
  }
  get total(): number {
    let n = 0;
    for (const c of this.count) n += c;
    return n;
  }
  /** ECE in [0, 1] (NaN with no predictions). */
  ece(): number {
    const n = this.total;
    if (!n) return NaN;
    let s = 0;
    for (let b = 0; b < this.bins; b++) if (this.count[b]) s += Math.abs(this.correct[b] - this.conf[b]) / n;
    return s;
  }
  table(): CalibrationBin[] {
    return Array.from({ length: this.bins }, (_, b) => ({
      lo: b / this.bins,
      hi: (b + 1) / this.bins,
      count: this.count[b],
      confidence: this.count[b] ? this.conf[b] / this.count[b] : NaN,
      accuracy: this.count[b] ? this.correct[b] / this.count[b] : NaN,
    }));
  }
}

/** ECE of a list of predictions (confidence ∈ [0, 1], correct or not) with `bins` equal-width bins. */
export function expectedCalibrationError(confidences: ArrayLike<number>, correct: ArrayLike<boolean | number>, bins = 15): number {
  if (confidences.length !== correct.length) throw new RangeError(`${confidences.length} confidences for ${correct.length} outcomes`);
  const h = new CalibrationHistogram(bins);
  for (let i = 0; i < confidences.length; i++) h.add(confidences[i], Boolean(correct[i]));
  return h.ece();
}

/** Metrics of a model on gold next tokens. */
export interface ModelMetrics {
  /** mean negative log-likelihood of the gold token, nats/token */
  loss: number;
  perplexity: number;
  bitsPerToken: number;
  /** fraction of positions where the argmax is the gold token */
  accuracy: number;
  /** expected calibration error of the argmax prediction vs the gold token */
  ece: number;
  calibration: CalibrationBin[];
}

/** Teacher (p) vs student (q) metrics, means over positions. */
export interface DivergenceMetrics {
  /** KL(p‖q), nats/token (what forward-KL distillation minimises) */
  forwardKl: number;
  /** KL(q‖p), nats/token */
  reverseKl: number;
  /** ½ Σ |p − q| */
  tvd: number;
  /** fraction of positions where argmax p = argmax q */
  top1Agreement: number;
  /** DistillSpec per-token acceptance 1 − TVD: the speculative-sampling acceptance rate at temperature 1 */
  acceptance: number;
}

export interface EvalMetrics {
  /** positions evaluated (gold label present) */
  tokens: number;
  student: ModelMetrics;
  /** present when a teacher was given */
  teacher?: ModelMetrics;
  divergence?: DivergenceMetrics;
}

/** Running sums of one model's gold-token metrics. */
class ModelSums {
  nll = 0;
  correct = 0;
  readonly calib: CalibrationHistogram;
  constructor(bins: number) { this.calib = new CalibrationHistogram(bins); }
  add(logq: Float64Array, label: number): number {
    const top = argmax(logq);
    this.nll -= logq[label];
    if (top === label) this.correct++;
    this.calib.add(Math.exp(logq[top]), top === label);
    return top;
  }
  result(n: number): ModelMetrics {
    const loss = this.nll / n;
    return { loss, perplexity: Math.exp(loss), bitsPerToken: loss / Math.LN2, accuracy: this.correct / n, ece: this.calib.ece(), calibration: this.calib.table() };
  }
}

/**
 * Accumulates evaluation metrics over batches of logit rows (float64 sums; memory independent of the
 * number of rows).
 */
export class EvalAccumulator {
  private n = 0;
  private readonly student: ModelSums;
  private readonly teacher: ModelSums;
  private fkl = 0;
  private rkl = 0;
  private tvd = 0;
  private agree = 0;
  private withTeacher: boolean | null = null;

  constructor(readonly vocabSize: number, readonly bins = 15) {
    this.student = new ModelSums(bins);
    this.teacher = new ModelSums(bins);
  }

  /**
   * Adds N rows. student: logits [N, V]; teacher: logits [N, V] or null; labels: [N] gold next tokens
   * (IGNORE_INDEX rows are skipped). Every call must agree on whether a teacher is present.
   */
  add(student: Float32Array, teacher: Float32Array | null, labels: Int32Array): void {
    const V = this.vocabSize, N = labels.length;
    if (student.length !== N * V) throw new RangeError(`student logits: ${student.length} values for ${N} rows × V ${V}`);
    if (teacher && teacher.length !== N * V) throw new RangeError(`teacher logits: ${teacher.length} values for ${N} rows × V ${V}`);
    if (this.withTeacher !== null && this.withTeacher !== Boolean(teacher)) throw new Error('EvalAccumulator: every batch needs a teacher, or none');
    this.withTeacher = Boolean(teacher);
    for (let i = 0; i < N; i++) {
      const y = labels[i];
      if (y === IGNORE_INDEX) continue;
      if (!(y >= 0 && y < V)) throw new RangeError(`label ${y} at row ${i} outside vocab [0, ${V})`);
      const logq = logSoftmaxRow(student.subarray(i * V, (i + 1) * V)); // [V]
      const topQ = this.student.add(logq, y);
      this.n++;
      if (!teacher) continue;
      const logp = logSoftmaxRow(teacher.subarray(i * V, (i + 1) * V)); // [V]
      const topP = this.teacher.add(logp, y);
      let f = 0, r = 0, t = 0;
      for (let j = 0; j < V; j++) {
        const p = Math.exp(logp[j]), q = Math.exp(logq[j]);
        const d = logp[j] - logq[j];
        if (p > 0) f += p * d;
        if (q > 0) r -= q * d;
        t += Math.abs(p - q);
      }
      this.fkl += f;
      this.rkl += r;
      this.tvd += 0.5 * t;
      if (topP === topQ) this.agree++;
    }
  }

  get tokens(): number { return this.n; }

  result(): EvalMetrics {
    const n = this.n;
    if (!n) throw new Error('EvalAccumulator: no positions with a gold label were added');
    const out: EvalMetrics = { tokens: n, student: this.student.result(n) };
    if (this.withTeacher) {
      out.teacher = this.teacher.result(n);
      const tvd = this.tvd / n;
      out.divergence = { forwardKl: this.fkl / n, reverseKl: this.rkl / n, tvd, top1Agreement: this.agree / n, acceptance: 1 - tvd };
    }
    return out;
  }
}
