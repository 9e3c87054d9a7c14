/**
 * A weighted objective mixture through the fused chunked head + loss (chunked.ts): the student's final
 * hidden states and LM head in, the scalar masked loss sum out; logits never exist for more than
 * `chunkRows` positions at a time. The teacher is either an in-process model's final hidden states and
 * head (its logits are made chunk by chunk too, so neither side ever holds [N, V]) or any other signal
 * (dense logits, sparse top-k). Used by `lmdistill distill` and by the benchmark's KD step.
 */
import { matmulBf16 } from '../tensor/precision.js';
import { getBackend, uninit, type Tensor } from '../tensor/tensor.js';
import { backendRowPlan } from './backend-rows.js';
import { fusedLinearLoss, type ChunkLossFn, type ChunkTargets, type RowLossFn } from './chunked.js';
import type { Mixture } from './mixture.js';
import { rowTargetAt } from './rows.js';
import { isSparseTeacher } from './sparse.js';
import type { TeacherSignal } from './types.js';

/** An in-process teacher's final hidden states [N, C] and LM head [V, C]. */
export interface TeacherHead { h: Float32Array; W: Float32Array; C: number }

export interface FusedMixtureInput {
  /** student final hidden states [N, C] (with grad) */
  hidden: Tensor;
  /** student LM head [V, C] */
  head: Tensor;
  mixture: Mixture;
  labels?: Int32Array;
  /** 0 for positions that do not count (the loss is Σ mask·loss) */
  mask: Float32Array;
  teacherHead?: TeacherHead;
  teacher?: TeacherSignal;
  chunkRows: number;
  /**
   * 'backend' (default): ce / fkl / rkl mixtures against a dense teacher go through the backend's
   * chunk-level row kernels (backend-rows.ts); 'objectives': always the objectives' TypeScript row kernels.
   */
  rowKernels?: 'backend' | 'objectives';
}

/** Σ_r mask_r · Σ_i w_i·l_i(r) (differentiable w.r.t. hidden and head) and each part's unweighted Σ_r mask_r·l_i(r). */
export function fusedMixtureLoss(x: FusedMixtureInput): { loss: Tensor; partSums: Record<string, number> } {
  const [V] = x.head.shape;
  const N = x.mask.length;
  const partSums: Record<string, number> = {};
  const scratch = new Float32Array(V);
  const rowFn: RowLossFn = (z, tgt, grad, r) => {
    grad.fill(0);
    let L = 0;
    for (const p of x.mixture.parts) {
      if (p.weight === 0) continue;
      const l = p.objective.rowLossGrad(z, tgt, scratch);
      partSums[p.key] = (partSums[p.key] ?? 0) + x.mask[r] * l;
      L += p.weight * l;
      for (let j = 0; j < V; j++) grad[j] += p.weight * scratch[j];
    }
    return L;
  };
  const th = x.teacherHead;
  const tChunk = th ? uninit(Math.min(x.chunkRows, N) * V) : null; // written by the GEMM of each chunk before use
  const targets: ChunkTargets = (c0, c1) => {
    if (th && tChunk) {
      getBackend().matmul(th.h.subarray(c0 * th.C, c1 * th.C), th.W, tChunk, { batch: 1, m: c1 - c0, n: V, k: th.C, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16: matmulBf16() });
      return (r) => ({ teacher: { kind: 'dense', logits: tChunk.subarray((r - c0) * V, (r - c0 + 1) * V) }, label: x.labels?.[r] });
    }
    const inputs = { student: x.hidden, teacher: x.teacher, labels: x.labels };
    return (r) => rowTargetAt(inputs, r, V);
  };
  const { loss } = fusedLinearLoss(x.hidden, x.head, rowFn, targets, x.mask, x.chunkRows, backendChunkLoss(x, rowFn, targets, partSums, tChunk));
  return { loss, partSums };
}

/** The chunk-level path through Backend.rowLosses, or undefined when this input does not qualify. */
function backendChunkLoss(x: FusedMixtureInput, rowFn: RowLossFn, targets: ChunkTargets, partSums: Record<string, number>, tChunk: Float32Array | null): ChunkLossFn | undefined {
  if (x.rowKernels === 'objectives') return undefined;
  const plan = backendRowPlan(x.mixture);
  if (!plan) return undefined;
  const [V] = x.head.shape;
  const N = x.mask.length;
  const needT = plan.parts.some((p) => p.kind !== 'ce'), needY = plan.parts.some((p) => p.kind === 'ce');
  const dense = x.teacher && !isSparseTeacher(x.teacher) && x.teacher.size === N * V ? x.teacher.data : null;
  // missing labels or teacher: the row kernels raise the error
  if (needY && x.labels?.length !== N) return undefined;
  if (needT && !tChunk && !dense) return undefined;
  const np = plan.parts.length;
  const chunk = Math.max(1, Math.min(x.chunkRows, N));
  const partLosses = new Float64Array(chunk * np), refused = new Uint8Array(chunk);
  return (c0, c1, z, gz, rowLosses) => {
    const rows = c1 - c0;
    const target = targets(c0, c1); // makes the in-process teacher's logits for the chunk
    const teacher = !needT ? null : tChunk ? tChunk.subarray(0, rows * V) : (dense as Float32Array).subarray(c0 * V, c1 * V);
    getBackend().rowLosses({
      rows, V, z, teacher, labels: needY && x.labels ? x.labels.subarray(c0, c1) : null, weights: x.mask.subarray(c0, c1),
      parts: plan.parts, grad: gz, partLosses, refused,
    });
    for (let i = 0; i < rows; i++) {
      const r = c0 + i, w = x.mask[r];
      if (w === 0) continue;
      if (refused[i]) { // non-finite logits or a bad label: the objectives' kernels (conventions, errors)
        const g = gz.subarray(i * V, (i + 1) * V);
        rowLosses[r] = rowFn(z.subarray(i * V, (i + 1) * V), target(r), g, r);
        for (let j = 0; j < V; j++) g[j] *= w;
        continue;
      }
      let L = 0;
      for (let k = 0; k < np; k++) {
        const l = partLosses[i * np + k];
        partSums[plan.keys[k]] = (partSums[plan.keys[k]] ?? 0) + w * l;
        L += plan.parts[k].weight * l;
      }
      rowLosses[r] = L;
    }
  };
}
