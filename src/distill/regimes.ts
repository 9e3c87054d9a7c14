/**
 * Data regimes (methods.md §2b), behind one `next()` that returns the next micro-batch to distil on:
 * - offline:   dataset batches (the teacher scores them);
 * - sequence:  the teacher generates the responses to the dataset prompts (sequence-level KD);
 * - on_policy: the student generates them (GKD with λ = 1); the teacher scores the student's prefixes;
 * - mixed:     student-generated with probability λ, else the dataset batch (GKD's rule);
 * - replay:    DistiLLM's adaptive off-policy sampling: student samples go to a replay buffer and are
 *              reused; the generation probability p_gen rises when validation CE gets worse.
 * Prompts: raw text uses the first `prompt_len` tokens of each sequence; prompt/response data uses
 * each example's prompt. Only response tokens are trained targets. No gradient flows through
 * sampling. The state (RNG, p_gen, buffer) is saved in checkpoints so a resumed run replays exactly.
 */
import type { RegimeConfig } from '../config/schema.js';
import type { Batch, BatchLoader } from '../data/loader.js';
import { UserError } from '../errors.js';
import type { CausalLM } from '../models/base.js';
import { generateBatch } from '../models/generate.js';
import { Rng } from '../util/rng.js';

export type BatchSource = 'dataset' | 'student' | 'teacher' | 'replay';

interface Generated {
  /** [T + 1] tokens: prompt, response, padding */
  tokens: Int32Array;
  /** prompt length */
  p: number;
  /** prompt + response length (≤ T + 1) */
  len: number;
}

export interface RegimeState {
  rng: number[];
  pGen: number;
  prevVal: number | null;
  buffer: { tokens: number[]; p: number; len: number }[];
  counts: Record<BatchSource, number>;
}

export interface RegimeOptions {
  config: RegimeConfig;
  loader: BatchLoader;
  student: CausalLM;
  /** needed by the `sequence` regime (an in-process teacher model) */
  teacherModel: CausalLM | null;
  /** prompt length of each dataset row (prompt/response data), or null for raw text */
  promptLens: Int32Array | null;
  seqLen: number;
  eosId: number | undefined;
  padId: number;
  totalSteps: number;
  seed: number;
}

export class RegimeSampler {
  private readonly cfg: RegimeConfig;
  private rng: Rng;
  private pGen: number;
  private prevVal: number | null = null;
  private buffer: Generated[] = [];
  readonly counts: Record<BatchSource, number> = { dataset: 0, student: 0, teacher: 0, replay: 0 };

  constructor(private readonly o: RegimeOptions) {
    this.cfg = o.config;
    this.rng = new Rng(o.seed);
    this.pGen = o.config.init_threshold;
    if (this.cfg.kind !== 'offline' && !o.promptLens && this.cfg.prompt_len >= o.seqLen) {
      throw new UserError(`distill.regime.prompt_len ${this.cfg.prompt_len} must be smaller than data.seq_len ${o.seqLen}`, 2);
    }
    if (this.cfg.kind === 'sequence' && !o.teacherModel) {
      throw new UserError('distill.regime.kind "sequence" needs an in-process teacher (distill.teacher.model: DIR) to generate with', 2);
    }
  }

  get kind(): RegimeConfig['kind'] {
    return this.cfg.kind;
  }

  /** The next micro-batch for optimizer step `step` (0-based), tagged with where it came from. */
  next(step: number): Batch & { source: BatchSource } {
    const c = this.cfg;
    const pick = (source: BatchSource, b: Batch): Batch & { source: BatchSource } => {
      this.counts[source] += b.batchSize;
      return { ...b, source };
    };
    switch (c.kind) {
      case 'offline':
        return pick('dataset', this.o.loader.next());
      case 'sequence':
        return pick('teacher', this.generated(this.o.loader.next(), this.o.teacherModel!, false));
      case 'on_policy':
        return pick('student', this.generated(this.o.loader.next(), this.o.student, false));
      case 'mixed': {
        const data = this.o.loader.next();
        return this.rng.nextFloat() < c.lambda ? pick('student', this.generated(data, this.o.student, false)) : pick('dataset', data);
      }
      case 'replay': {
        const data = this.o.loader.next();
        const r = this.rng.nextFloat();
        const frac = step / Math.max(1, this.o.totalSteps);
        const sThr = c.replay_ratio === 'constant' ? 0.5 * this.pGen : c.replay_ratio === 'increasing' ? this.pGen * frac : this.pGen * (1 - frac);
        if (r < sThr || (r < this.pGen && this.buffer.length < c.capacity) || (r < this.pGen && this.buffer.length < data.batchSize)) {
          return pick('student', this.generated(data, this.o.student, true));
        }
        if (r < this.pGen) return pick('replay', this.fromBuffer(data.batchSize));
        return pick('dataset', data);
      }
    }
  }

  /** Replay: at each validation, raise p_gen by 0.1 when CE got worse by more than loss_eps. */
  onValidation(valCe: number): void {
    if (this.cfg.kind !== 'replay') return;
    if (this.prevVal === null) { this.prevVal = valCe; return; }
    if (valCe >= this.prevVal + this.cfg.loss_eps) {
      this.pGen = Math.min(1, this.pGen + 0.1);
      this.prevVal = valCe;
    }
  }

  /** Current generation probability of the replay regime. */
  get generationProbability(): number {
    return this.pGen;
  }

  /** Responses to the prompts of `data` generated by `model`; optionally pushed to the replay buffer. */
  private generated(data: Batch, model: CausalLM, remember: boolean): Batch {
    const { seqLen: T, batchSize: B } = data;
    const c = this.cfg;
    const prompts = Array.from({ length: B }, (_, b) => {
      const p = this.o.promptLens && data.rows ? Math.min(this.o.promptLens[data.rows[b]], T) : Math.min(c.prompt_len, T);
      return data.input.subarray(b * T, b * T + p);
    });
    // group rows by prompt length so each group decodes as one batch
    const groups = new Map<number, number[]>();
    prompts.forEach((p, b) => groups.set(p.length, [...(groups.get(p.length) ?? []), b]));
    const rows: Generated[] = new Array(B);
    for (const [p, members] of groups) {
      const ids = new Int32Array(members.length * p);
      members.forEach((b, i) => ids.set(prompts[b], i * p));
      const room = T + 1 - p;
      const outs = generateBatch(model, ids, members.length, {
        maxNewTokens: Math.min(c.max_new_tokens ?? room, room), temperature: c.temperature, topK: c.top_k, eosId: this.o.eosId, rng: this.rng,
      });
      members.forEach((b, i) => {
        const tokens = new Int32Array(T + 1).fill(this.o.padId);
        tokens.set(prompts[b]);
        tokens.set(outs[i].slice(0, room), p);
        rows[b] = { tokens, p, len: p + Math.min(outs[i].length, room) };
      });
    }
    if (remember) {
      for (const g of rows) this.buffer.push(g);
      if (this.buffer.length > c.capacity) this.buffer.splice(0, this.buffer.length - c.capacity);
    }
    return toBatch(rows, T);
  }

  private fromBuffer(B: number): Batch {
    const picked = Array.from({ length: B }, () => this.buffer[this.rng.int(this.buffer.length)]);
    return toBatch(picked, picked[0].tokens.length - 1);
  }

  state(): RegimeState {
    return {
      rng: this.rng.state(), pGen: this.pGen, prevVal: this.prevVal, counts: { ...this.counts },
      buffer: this.buffer.map((g) => ({ tokens: Array.from(g.tokens), p: g.p, len: g.len })),
    };
  }

  restore(s: RegimeState): void {
    this.rng = Rng.fromState(s.rng);
    this.pGen = s.pGen;
    this.prevVal = s.prevVal;
    this.buffer = s.buffer.map((g) => ({ tokens: Int32Array.from(g.tokens), p: g.p, len: g.len }));
    Object.assign(this.counts, s.counts);
  }
}

/** Generated rows → a batch whose targets are the response tokens only (prompt and padding → -100). */
function toBatch(rows: Generated[], T: number): Batch {
  const B = rows.length;
  const input = new Int32Array(B * T), target = new Int32Array(B * T).fill(-100);
  rows.forEach((g, b) => {
    input.set(g.tokens.subarray(0, T), b * T);
    for (let t = g.p - 1; t < g.len - 1; t++) target[b * T + t] = g.tokens[t + 1];
  });
  return { input, target, batchSize: B, seqLen: T };
}
