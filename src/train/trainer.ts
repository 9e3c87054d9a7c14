/**
 * One optimisation step = forward + backward over `gradAccumSteps` micro-batches, then clip, schedule
 * and AdamW. Token-level normalisation is done over the whole accumulated batch: every micro-batch's
 * summed per-token loss is divided by the total number of counted tokens of all micro-batches, so the
 * accumulated gradient equals the gradient of the single big batch (tested).
 */
import type { Batch, BatchLoader } from '../data/loader.js';
import type { CausalLM } from '../models/base.js';
import { crossEntropyPerToken } from '../nn/functional.js';
import { AdamW, clipGradNorm } from '../optim/adamw.js';
import { learningRate, type ScheduleOptions } from '../optim/schedules.js';
import { backward } from '../tensor/autodiff.js';
import { autocast, type Precision } from '../tensor/precision.js';
import { div, reshape, sum } from '../tensor/ops.js';
import { BufferArena, noGrad, type Tensor } from '../tensor/tensor.js';

/** Targets equal to this are not trained on (HF's labels == -100 convention). */
export const IGNORE_INDEX = -100;

/**
 * A training objective: the SUM of per-token losses over a micro-batch (the trainer normalises), plus
 * optional named parts for logging (per-token means).
 */
export type LossFn = (model: CausalLM, batch: Batch) => { sum: Tensor; parts?: Record<string, number> };

/** Next-token cross-entropy, summed over counted tokens. */
export const crossEntropyLoss: LossFn = (model, batch) => {
  const { logits } = model.forward(batch.input, batch.batchSize, batch.seqLen); // [B, T, V]
  const { losses } = crossEntropyPerToken(reshape(logits, [-1, model.vocabSize]), batch.target, IGNORE_INDEX);
  return { sum: sum(losses) };
};

/** Tokens a batch contributes to the loss normaliser. */
export function countTokens(batch: Batch): number {
  let n = 0;
  for (let i = 0; i < batch.target.length; i++) if (batch.target[i] !== IGNORE_INDEX) n++;
  return n;
}

export interface TrainerOptions {
  model: CausalLM;
  optimizer: AdamW;
  schedule: ScheduleOptions;
  /** max global grad L2 norm (0 = no clipping) */
  gradClip: number;
  /** micro-batches per optimizer step */
  gradAccumSteps: number;
  lossFn?: LossFn;
  /**
   * matmul precision of forward + backward (src/tensor/precision.ts); default fp32. With bf16 the
   * GEMM operands are rounded to bfloat16, while loss, softmax, norms, gradient clipping, AdamW and
   * the master weights stay fp32.
   */
  precision?: Precision;
  /**
   * Recycle the step's kernel-output buffers into the next step (default true; see BufferArena in
   * src/tensor/tensor.ts). Results are identical either way; off, every step allocates afresh.
   */
  recycleBuffers?: boolean;
}

export interface StepResult {
  /** 0-based index of the update just taken */
  step: number;
  /** token-mean loss over the accumulated batch, before the update */
  loss: number;
  lr: number;
  /** global grad norm before clipping */
  gradNorm: number;
  /** counted tokens in this step */
  tokens: number;
  parts: Record<string, number>;
}

export class Trainer {
  readonly model: CausalLM;
  readonly optimizer: AdamW;
  private readonly lossFn: LossFn;
  /** the step's kernel outputs are recycled into the next step (see BufferArena) */
  readonly arena = new BufferArena();
  constructor(private readonly opts: TrainerOptions) {
    this.model = opts.model;
    this.optimizer = opts.optimizer;
    this.lossFn = opts.lossFn ?? crossEntropyLoss;
  }

  /** Number of updates taken so far (the next step's 0-based index). */
  get stepCount(): number {
    return this.optimizer.step;
  }

  /** Takes one optimizer step over `gradAccumSteps` micro-batches drawn from `loader`. */
  step(loader: BatchLoader): StepResult {
    const micro: Batch[] = Array.from({ length: this.opts.gradAccumSteps }, () => loader.next());
    return this.stepOn(micro);
  }

  /** One optimizer step on the given micro-batches (their gradients accumulate). */
  stepOn(micro: Batch[]): StepResult {
    if (this.opts.recycleBuffers === false) return this.stepInArena(micro);
    return this.arena.run(() => this.stepInArena(micro));
  }

  private stepInArena(micro: Batch[]): StepResult {
    const model = this.model.train();
    const total = micro.reduce((a, b) => a + countTokens(b), 0);
    if (total === 0) throw new Error('a training step with no counted tokens (all targets ignored)');
    // everything the optimizer updates (the model and e.g. feature-KD projections) starts from zero grads
    const params = this.optimizer.params;
    for (const p of params) p.grad = null;
    let lossSum = 0;
    const partSums: Record<string, number> = {};
    const precision = this.opts.precision ?? 'fp32';
    for (const b of micro) {
      autocast(precision, () => {
        const { sum: s, parts } = this.lossFn(model, b);
        lossSum += s.item();
        const n = countTokens(b);
        for (const [k, v] of Object.entries(parts ?? {})) partSums[k] = (partSums[k] ?? 0) + v * n;
        backward(div(s, total));
      });
    }
    const gradNorm = clipGradNorm(params, this.opts.gradClip);
    const step = this.optimizer.step;
    const lr = learningRate(this.opts.schedule, step);
    noGrad(() => this.optimizer.update(lr));
    for (const p of params) p.grad = null;
    const parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, v / total]));
    return { step, loss: lossSum / total, lr, gradNorm, tokens: total, parts };
  }
}

/** Mean next-token cross-entropy (nats/token) of `model` over `batches`, without gradients. */
export function evaluateLoss(model: CausalLM, batches: Iterable<Batch>): { loss: number; tokens: number } {
  const wasTraining = model.training;
  model.eval();
  let s = 0, n = 0;
  noGrad(() => {
    for (const b of batches) {
      s += crossEntropyLoss(model, b).sum.item();
      n += countTokens(b);
    }
  });
  model.train(wasTraining);
  return { loss: n ? s / n : NaN, tokens: n };
}
