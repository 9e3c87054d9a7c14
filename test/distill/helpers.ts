/** Shared helpers of the distillation tests: random inputs, sparse teachers, fixture decoding. */
import { Tensor } from '../../src/tensor/tensor.js';
import type { SparseTeacher } from '../../src/distill/index.js';
import { Rng } from '../../src/util/rng.js';
import type { JsonTensor } from '../helpers/fixtures.js';

export function randnArray(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Teacher top-k (full-vocabulary log-probs at temperature 1) of dense logits [N, V], ids shuffled. */
export function topK(zT: Float32Array, N: number, V: number, k: number, rng?: Rng): SparseTeacher {
  const ids = new Int32Array(N * k), logprobs = new Float32Array(N * k);
  for (let n = 0; n < N; n++) {
    const row = Array.from(zT.subarray(n * V, n * V + V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    const top = row.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k);
    if (rng) for (let i = top.length - 1; i > 0; i--) { const j = Math.floor(rng.nextFloat() * (i + 1)); [top[i], top[j]] = [top[j], top[i]]; }
    top.forEach(([x, i], j) => { ids[n * k + j] = i; logprobs[n * k + j] = x - lse; });
  }
  return { ids, logprobs, k };
}

/** A fixture tensor with the listed flat indices set to -Infinity. */
export function withNegInf(t: JsonTensor, neg: number[] | undefined, requiresGrad = false): Tensor {
  const d = Float32Array.from(t.data);
  for (const i of neg ?? []) d[i] = -Infinity;
  return new Tensor(d, t.shape, requiresGrad);
}

/** Max over elements of |a − b| − (atol + rtol·|b|) ≤ 0, with a readable report. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= atol + rtol * Math.abs(b[i]))) throw new Error(`${what}[${i}]: got ${a[i]}, expected ${b[i]} (|diff| ${d.toExponential(2)} > ${atol} + ${rtol}·|expected|)`);
  }
}
