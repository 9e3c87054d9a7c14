/**
 * The pinned gpt2-tiny training run of tools/golden/gpt_train.py: its fixture (token ids, losses, learning
 * rates, gradient norms, the hyper-parameters) and a Trainer set up exactly as the script sets up PyTorch.
 */
import path from 'node:path';
import { loadPretrained } from '../../src/models/registry.js';
import { AdamW } from '../../src/optim/adamw.js';
import type { Precision } from '../../src/tensor/precision.js';
import { Trainer } from '../../src/train/trainer.js';
import { FIXTURES, readFixture, type JsonTensor } from './fixtures.js';

export interface GptTrain {
  input_ids: JsonTensor; losses: number[]; lrs: number[]; grad_norms: number[]; accum_losses: number[];
  config: { peak_lr: number; warmup_steps: number; total_steps: number; min_lr: number; betas: [number, number]; eps: number; weight_decay: number; grad_clip: number };
}

export const readGptTrain = (): GptTrain => readFixture<GptTrain>('golden/gpt-train.json');

/** gpt2-tiny from its HF folder with the run's AdamW, cosine schedule and clipping. */
export function pinnedTrainer(g: GptTrain, opts: { gradAccumSteps?: number; precision?: Precision } = {}): Trainer {
  const model = loadPretrained(path.join(FIXTURES, 'hf/gpt2-tiny'));
  const c = g.config;
  return new Trainer({
    model,
    optimizer: new AdamW(model.namedParameters(), { betas: c.betas, eps: c.eps, weightDecay: c.weight_decay }),
    schedule: { kind: 'cosine', peakLr: c.peak_lr, warmupSteps: c.warmup_steps, totalSteps: c.total_steps, minLr: c.min_lr },
    gradClip: c.grad_clip,
    gradAccumSteps: opts.gradAccumSteps ?? 1,
    ...(opts.precision ? { precision: opts.precision } : {}),
  });
}
