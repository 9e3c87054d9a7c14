/** Shared fixtures of the teacher-cache tests: seeded random datasets and a synthetic teacher. */
import { packTokens, type PackedDataset } from '../../src/data/packing.js';
import type { Teacher, TeacherBatch, TopK } from '../../src/teachers/teacher.js';
import { Rng } from '../../src/util/rng.js';

/** A packed dataset of `rows` rows of random ids in [0, V) (seeded). */
export function randomDataset(rows: number, T: number, V: number, seed: number): PackedDataset {
  const rng = new Rng(seed);
  const stream = Int32Array.from({ length: rows * T + 1 }, () => rng.int(V));
  return packTokens(stream, T);
}
export const rowInput = (d: PackedDataset, r: number): Int32Array => d.get(r).slice(0, d.seqLen);
export const batchOfRows = (d: PackedDataset, rows: number[]): TeacherBatch => {
  const input = new Int32Array(rows.length * d.seqLen);
  rows.forEach((r, i) => input.set(rowInput(d, r), i * d.seqLen));
  return { input, batchSize: rows.length, seqLen: d.seqLen };
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A deterministic synthetic teacher of any vocabulary size (exercises uint32 ids): position t's top-k
 * depends on the prefix input[0..t] only, like a causal model.
 */
export class FakeTeacher implements Teacher {
  readonly dense = false;
  constructor(readonly vocabSize: number, readonly name = 'fake') {}
  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    const { batchSize: B, seqLen: T, input } = batch;
    const ids = new Int32Array(B * T * k), logprobs = new Float32Array(B * T * k);
    for (let b = 0; b < B; b++) {
      let h = 2166136261;
      for (let t = 0; t < T; t++) {
        h = Math.imul(h ^ input[b * T + t], 16777619) >>> 0;
        for (let j = 0; j < k; j++) {
          const o = (b * T + t) * k + j;
          ids[o] = (h + j * 7919) % this.vocabSize;
          logprobs[o] = -(j + 1) * 0.731 - (h % 1000) / 997;
        }
      }
    }
    return { k, ids, logprobs };
  }
  async logits(): Promise<Float32Array> { throw new Error('not dense'); }
  async close(): Promise<void> {}
}
