/**
 * Runs a student (and optionally its teacher) over reference batches and accumulates the metrics of
 * metrics.ts. Both models run in eval mode without gradients; their training flags are restored.
 */
import type { Batch } from '../data/loader.js';
import { UserError } from '../errors.js';
import type { CausalLM } from '../models/base.js';
import { noGrad } from '../tensor/tensor.js';
import { EvalAccumulator, type EvalMetrics } from './metrics.js';

export interface EvaluateOptions {
  /** teacher model sharing the student's token ids (vocabulary sizes must match) */
  teacher?: CausalLM;
  /** reliability-diagram bins for the ECE (default 15) */
  bins?: number;
  /** called after each batch with the number of batches done */
  onBatch?: (done: number) => void;
}

/**
 * Student metrics on gold next tokens (perplexity, accuracy, ECE), and with a teacher also the
 * teacher's own metrics and the teacher–student divergences per token (KL both ways, TVD, top-1
 * agreement, speculative acceptance 1 − TVD). batches: input/target [B·T] as the trainer's.
 */
export function evaluateModels(student: CausalLM, batches: Iterable<Batch>, opts: EvaluateOptions = {}): EvalMetrics {
  const { teacher } = opts;
  const V = student.vocabSize;
  if (teacher && teacher.vocabSize !== V) {
    throw new UserError(`teacher vocab_size ${teacher.vocabSize} differs from the student's ${V}: logit metrics need shared token ids`, 2);
  }
  const acc = new EvalAccumulator(V, opts.bins ?? 15);
  const flags = [student.training, teacher?.training ?? false];
  student.eval();
  teacher?.eval();
  try {
    let done = 0;
    noGrad(() => {
      for (const b of batches) {
        const s = student.forward(b.input, b.batchSize, b.seqLen).logits.data; // [B, T, V]
        const t = teacher ? teacher.forward(b.input, b.batchSize, b.seqLen).logits.data : null; // [B, T, V]
        acc.add(s, t, b.target);
        opts.onBatch?.(++done);
      }
    });
  } finally {
    student.train(flags[0]);
    teacher?.train(flags[1]);
  }
  return acc.result();
}
