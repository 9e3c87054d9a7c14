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
