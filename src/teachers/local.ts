/**
 * An in-process teacher: any CausalLM (e.g. loaded from a Hugging Face folder), frozen, run without
 * gradients in eval mode.
 */
import type { CausalLM } from '../models/base.js';
import { noGrad } from '../tensor/tensor.js';
import { topkFromLogits, type Teacher, type TeacherBatch, type TopK } from './teacher.js';

export class LocalTeacher implements Teacher {
  readonly dense = true;
  readonly vocabSize: number;
  constructor(readonly model: CausalLM, readonly name = 'local') {
    this.vocabSize = model.vocabSize;
    model.eval();
    for (const p of model.parameters()) p.requiresGrad = false; // frozen: never part of a graph
  }
  /** [B·T, V] logits */
  logitsSync(batch: TeacherBatch): Float32Array {
    return noGrad(() => this.model.forward(batch.input, batch.batchSize, batch.seqLen).logits.data);
  }
  async logits(batch: TeacherBatch): Promise<Float32Array> {
    return this.logitsSync(batch);
  }
  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    return topkFromLogits(this.logitsSync(batch), this.vocabSize, k);
  }
  async close(): Promise<void> {}
}
