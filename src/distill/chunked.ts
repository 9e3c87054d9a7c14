/**
 * Fused chunked linear + loss (anchor: Liger-Kernel's fused linear cross-entropy / JSD). For the LM head,
 * logits z = h·Wᵀ are computed for a chunk of positions, the objective's analytic row kernel gives each
 * row's loss and dLoss/dz, and the gradients w.r.t. h and W are accumulated — then the chunk is dropped.
 * Peak memory is O(chunk × V) instead of O(N × V); the result equals the unfused path (tested).
 *
 * The output is the scalar Σ_r w_r·loss_r with per-row weights w (mask / normaliser) known up front, so
 * the gradients can be finished in the forward pass; backward only scales them by the upstream gradient.
 */
import { matmulBf16 } from '../tensor/precision.js';
import { getBackend, record, Tensor, uninit } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';
import type { RowTarget } from './types.js';

/** Row loss: writes dLoss/dz (length V) into `grad` (overwritten); `r` is the absolute row index. */
export type RowLossFn = (z: Float32Array, target: RowTarget, grad: Float32Array, r: number) => number;

/**
 * A chunk-level replacement of the per-row loop (e.g. a backend's native row kernels): given the chunk's
 * logits z [rows, V], writes gz [rows, V] already multiplied by the row weights (zero rows where w_r = 0)
 * and rowLosses[c0 .. c1) (the unweighted row losses; left 0 where w_r = 0).
 */
export type ChunkLossFn = (c0: number, c1: number, z: Float32Array, gz: Float32Array, rowLosses: Float64Array) => void;

/** Called once per chunk [c0, c1) before its rows (e.g. to compute a teacher chunk); returns row → target. */
export type ChunkTargets = (c0: number, c1: number) => (r: number) => RowTarget;

export interface FusedLossResult {
  /** scalar Σ_r w_r · loss_r, differentiable w.r.t. h and W */
  loss: Tensor;
  /** per-row losses (0 where w_r = 0) */
  rowLosses: Float64Array;
}

/**
 * h [N, C] (student final hidden), W [V, C] (LM head, used transposed), weights [N] (0 = masked row).
 * `chunkRows` rows of logits exist at a time. With `chunkLoss`, it computes each chunk's losses and
 * gradients instead of `lossFn` / `targets`.
 */
export function fusedLinearLoss(h: Tensor, W: Tensor, lossFn: RowLossFn, targets: ChunkTargets, weights: Float32Array, chunkRows = 256, chunkLoss?: ChunkLossFn): FusedLossResult {
  const C = h.shape[h.rank - 1];
  const N = h.size / C;
  const [V, Cw] = W.shape;
  if (W.rank !== 2 || Cw !== C || weights.length !== N) {
    throw new Error(`fusedLinearLoss: h ${fmtShape(h.shape)}, W ${fmtShape(W.shape)}, ${weights.length} weights`);
  }
  const be = getBackend();
  // the head is a matmul: under autocast('bf16') its three GEMMs round their operands like matmul's
  const bf16 = matmulBf16();
  const chunk = Math.max(1, Math.min(chunkRows, N));
  // z is written by the GEMM before it is read; the others start from zero (rows of weight 0 and
  // chunks without a counted row are skipped, and dW accumulates)
  const z = uninit(chunk * V), gz = uninit(chunk * V).fill(0);
  const gh = h.requiresGrad ? uninit(N * C).fill(0) : null;
  const gW = W.requiresGrad ? uninit(V * C).fill(0) : null;
  const rowLosses = new Float64Array(N);
  let total = 0;
  for (let c0 = 0; c0 < N; c0 += chunk) {
    const c1 = Math.min(N, c0 + chunk), rows = c1 - c0;
    const hc = h.data.subarray(c0 * C, c1 * C);
    be.matmul(hc, W.data, z, { batch: 1, m: rows, n: V, k: C, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16 }); // [rows, V]
    let any = false;
    if (chunkLoss) {
      chunkLoss(c0, c1, z.subarray(0, rows * V), gz.subarray(0, rows * V), rowLosses);
      for (let r = c0; r < c1; r++) {
        if (weights[r] === 0) continue;
        total += weights[r] * rowLosses[r];
        any = true;
      }
    }
    const target = chunkLoss ? null : targets(c0, c1);
    for (let i = 0; target && i < rows; i++) {
      const r = c0 + i, w = weights[r];
      const g = gz.subarray(i * V, (i + 1) * V);
      if (w === 0) { g.fill(0); continue; }
      const l = lossFn(z.subarray(i * V, (i + 1) * V), target(r), g, r);
      rowLosses[r] = l;
      total += w * l;
      for (let j = 0; j < V; j++) g[j] *= w;
      any = true;
    }
    if (!any) continue;
    const gzc = gz.subarray(0, rows * V);
    if (gh) be.matmul(gzc, W.data, gh.subarray(c0 * C, c1 * C), { batch: 1, m: rows, n: C, k: V, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16 }); // dh = dz·W
    if (gW) be.matmul(gzc, hc, gW, { batch: 1, m: V, n: C, k: rows, transA: true, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: true, bf16 }); // dW += dzᵀ·h
  }
  const out = record(new Tensor(Float32Array.of(total), []), 'fusedLinearLoss', [h, W], { saved: { gh, gW } });
  return { loss: out, rowLosses };
}
