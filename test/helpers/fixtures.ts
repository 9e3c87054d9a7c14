/** Loading the committed PyTorch golden fixtures (see tools/golden/README.md). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../../src/tensor/tensor.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const ROOT = path.join(FIXTURES, '..', '..');

export interface JsonTensor { shape: number[]; data: number[] }

export function readFixture<T>(rel: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, rel), 'utf8')) as T;
}
export function toTensor(t: JsonTensor, requiresGrad = false): Tensor {
  return new Tensor(Float32Array.from(t.data), t.shape, requiresGrad);
}

/** Max |a − b| / (atol + rtol·|b|) over elements: ≤ 1 means within tolerance. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): { ok: boolean; maxAbs: number; at: number } {
  if (a.length !== b.length) return { ok: false, maxAbs: Infinity, at: -1 };
  let ok = true, maxAbs = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= atol + rtol * Math.abs(b[i]))) ok = false;
    if (d > maxAbs || Number.isNaN(d)) { maxAbs = d; at = i; }
  }
  return { ok, maxAbs, at };
}

/** Splits fixture ids [B, T+1] into next-token input/target batches [B·T]. */
export function fixedBatch(ids: JsonTensor): { input: Int32Array; target: Int32Array; batchSize: number; seqLen: number } {
  const [B, L] = ids.shape;
  const T = L - 1;
  const input = new Int32Array(B * T), target = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    input[b * T + t] = ids.data[b * L + t];
    target[b * T + t] = ids.data[b * L + t + 1];
  }
  return { input, target, batchSize: B, seqLen: T };
}

/** log Σ exp(row) in float64, max-shifted (the tests' own reference normaliser). */
export function rowLogSumExp(row: ArrayLike<number>): number {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) mx = Math.max(mx, row[i]);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - mx);
  return mx + Math.log(s);
}
