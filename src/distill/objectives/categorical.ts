/**
 * The common ground of the divergence objectives: teacher P and student Q as distributions over C
 * categories — the vocabulary (C = V, dense teacher) or a sparse teacher's k ids plus the tail bucket
 * (C = k + 1, see ../sparse.ts). Each divergence is written once against this view, twice over:
 * a tensor composition (autodiff reference) and an analytic float64 row kernel.
 *
 * Conventions (methods.md §0):
 * - q = softmax(zS/τ), p = softmax(zT/τ); log-softmax is max-subtracted.
 * - A category is *dropped* (`keep` = 0, contributes nothing) when the student's or the teacher's logit
 *   there is -inf (a masked vocabulary entry), as DistiLLM's `inf_mask` zeroes the p·log q products
 *   [V: distillm/losses.py]. Note this also drops a finite-teacher / -inf-student entry, where the true
 *   FKL would be +inf.
 * - A *kept* category may still have P = 0 exactly (the tail bucket of a 'renormalize' sparse
 *   teacher); terms P·(…) are then 0. In tensors that zero is carried as log P = LOG_ZERO (finite, so
 *   0·LOG_ZERO = 0 and no NaN reaches a gradient); in the row kernels as -Infinity.
 */
import { UserError } from '../../errors.js';
import { add, concat, exp, gather, log, logSoftmax, mul, reshape, sub, sum, where } from '../../tensor/ops.js';
import { Tensor } from '../../tensor/tensor.js';
import { isSparseTeacher, sparseTeacherLogProbs } from '../sparse.js';
import type { SparseMode, SparseTeacher, TeacherRow, TeacherSignal } from '../types.js';

/** Tensor stand-in for log 0 of a genuine zero probability (finite: 0 · LOG_ZERO = 0, not NaN). */
export const LOG_ZERO = -1e30;

/** P and Q over C categories for N rows, as tensors. Entries with keep = 0 hold P = Q = 0, logs 0. */
export interface CatTensors {
  N: number;
  C: number;
  /** [N, C] student log-probs (differentiable) */
  logQ: Tensor;
  /** [N, C] student probs (differentiable) */
  Q: Tensor;
  /** [N, C] teacher log-probs (constant; LOG_ZERO for a genuine zero) */
  logP: Tensor;
  /** [N, C] teacher probs (constant) */
  P: Tensor;
  /** [N, C] 0/1 (constant) */
  keep: Tensor;
  /** float64 teacher log-probs (-Infinity = genuine zero; 0 where not kept), for detached statistics */
  rawLogP: Float64Array;
  rawKeep: Uint8Array;
}

/** P and Q of one row (float64). `logP` may be -Infinity on a kept category (a genuine zero). */
export interface CatRow {
  C: number;
  logP: Float64Array;
  logQ: Float64Array;
  keep: Uint8Array;
}

const finite = (x: number): boolean => x > -Infinity && x < Infinity;

/** log Σ exp over `x[off .. off+n)`; -Infinity when every entry is -Infinity. */
export function logSumExp(x: ArrayLike<number>, off = 0, n = x.length - off): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (x[off + i] > m) m = x[off + i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(x[off + i] - m);
  return m + Math.log(s);
}

/** log(e^a + e^b) in float64. */
export function logAddExp(a: number, b: number): number {
  const m = Math.max(a, b);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** Elementwise log(e^a + e^b) of tensors, shifted by a constant (detached) max so the gradient is exact. */
export function logAddExpT(a: Tensor, b: Tensor): Tensor {
  const m = new Float32Array(a.size);
  for (let i = 0; i < m.length; i++) {
    const v = Math.max(a.data[i], b.data[i]);
    m[i] = v > -Infinity ? v : 0;
  }
  const mt = new Tensor(m, a.shape);
  return add(mt, log(add(exp(sub(a, mt)), exp(sub(b, mt)))));
}

// ---------------------------------------------------------------- composite (tensor) view

/**
 * Builds P and Q over categories from student logits [N, V] (differentiable) and a dense or sparse
 * teacher, at temperature τ.
 */
export function buildCatTensors(student: Tensor, teacher: TeacherSignal, tau: number, mode: SparseMode): CatTensors {
  const V = student.shape[student.rank - 1];
  const N = student.size / V;
  const zS = reshape(student, [N, V]);
  const u = tau === 1 ? zS : mul(zS, 1 / tau);
  const logQFull = logSoftmax(u); // [N, V]
  return isSparseTeacher(teacher)
    ? sparseCats(zS, logQFull, teacher, N, V, tau, mode)
    : denseCats(zS, logQFull, teacher, N, V, tau);
}

function finishCats(N: number, C: number, logQRaw: Tensor, rawLogP: Float64Array, rawKeep: Uint8Array): CatTensors {
  const keepD = new Float32Array(N * C), logPD = new Float32Array(N * C), PD = new Float32Array(N * C);
  for (let i = 0; i < N * C; i++) {
    if (!rawKeep[i]) { rawLogP[i] = 0; continue; }
    keepD[i] = 1;
    logPD[i] = rawLogP[i] === -Infinity ? LOG_ZERO : rawLogP[i];
    PD[i] = Math.exp(rawLogP[i]);
  }
  const keep = new Tensor(keepD, [N, C]);
  const logQ = where(keep, logQRaw, 0); // [N, C]
  const Q = where(keep, exp(logQ), 0); // [N, C]
  return { N, C, logQ, Q, logP: new Tensor(logPD, [N, C]), P: new Tensor(PD, [N, C]), keep, rawLogP, rawKeep };
}

function denseCats(zS: Tensor, logQFull: Tensor, teacher: Tensor, N: number, V: number, tau: number): CatTensors {
  if (teacher.size !== N * V) throw new UserError(`teacher logits have ${teacher.size} values, expected N·V = ${N}·${V}`, 2);
  const zT = teacher.data;
  const rawLogP = new Float64Array(N * V), rawKeep = new Uint8Array(N * V);
  const row = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    const o = n * V;
    for (let v = 0; v < V; v++) row[v] = zT[o + v] / tau;
    const lse = logSumExp(row);
    for (let v = 0; v < V; v++) {
      rawKeep[o + v] = finite(zS.data[o + v]) && finite(zT[o + v]) ? 1 : 0;
      rawLogP[o + v] = row[v] - lse;
    }
  }
  return finishCats(N, V, logQFull, rawLogP, rawKeep);
}

function sparseCats(zS: Tensor, logQFull: Tensor, t: SparseTeacher, N: number, V: number, tau: number, mode: SparseMode): CatTensors {
  const { k, ids, logprobs } = t;
  const C = k + 1;
  if (ids.length !== N * k) throw new UserError(`sparse teacher has ${ids.length} ids, expected N·k = ${N}·${k}`, 2);
  const flat = new Int32Array(N * k);
  const comp = new Float32Array(N * V).fill(1); // 1 where v is outside row n's top-k
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < k; j++) {
      flat[n * k + j] = n * V + ids[n * k + j];
      comp[n * V + ids[n * k + j]] = 0;
    }
  }
  const logQK = reshape(gather(reshape(logQFull, [N * V, 1]), flat), [N, k]); // [N, k]
  // log r_S = log Σ_{v ∉ K} q_v, shifted by the (detached) max over the complement.
  const mD = new Float32Array(N), emptyD = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) if (comp[n * V + v] && logQFull.data[n * V + v] > m) m = logQFull.data[n * V + v];
    if (m === -Infinity) { emptyD[n] = 1; m = 0; } // no student mass outside K: the bucket is dropped below
    mD[n] = m;
  }
  const m = new Tensor(mD, [N, 1]);
  const compT = new Tensor(comp, [N, V]);
  const s = sum(exp(sub(where(compT, logQFull, -Infinity), m)), -1, true); // [N, 1]
  const logTail = add(log(add(s, new Tensor(emptyD, [N, 1]))), m); // [N, 1]; log 1 + 0 on empty rows
  const logQRaw = concat([logQK, logTail], -1); // [N, k + 1]

  const rawLogP = new Float64Array(N * C), rawKeep = new Uint8Array(N * C);
  const rowP = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const hasTail = sparseTeacherLogProbs(logprobs, n * k, k, V, tau, mode, rowP);
    for (let j = 0; j < k; j++) {
      rawLogP[n * C + j] = rowP[j];
      rawKeep[n * C + j] = finite(logprobs[n * k + j]) && finite(zS.data[n * V + ids[n * k + j]]) ? 1 : 0;
    }
    rawLogP[n * C + k] = rowP[k];
    rawKeep[n * C + k] = hasTail && !emptyD[n] ? 1 : 0;
  }
  return finishCats(N, C, logQRaw, rawLogP, rawKeep);
}

// ---------------------------------------------------------------- analytic (row) view

/** One row's categories plus what is needed to map dL/dlogQ back to the logits. */
export interface RowCats extends CatRow {
  V: number;
  tau: number;
  /** student log-probs over the full vocabulary (float64) */
  logQFull: Float64Array;
  /** sparse only: the teacher ids and log Σ_{v ∉ K} exp(u_v) − lse (= log r_S) */
  ids?: Int32Array;
  inK?: Uint8Array;
}

// Row kernels run once per position (thousands per step): their working arrays are reused instead of
// allocated per row. A RowCats is valid until the next buildRowCats call on the same slot — callers
// consume it (loss + gradient) before building the next one.
const pools = new Map<string, Float64Array | Uint8Array>();
function scratchF64(slot: string, n: number): Float64Array {
  let a = pools.get(slot) as Float64Array | undefined;
  if (!a || a.length < n) { a = new Float64Array(Math.max(n, 64)); pools.set(slot, a); }
  return a.subarray(0, n);
}
function scratchU8(slot: string, n: number): Uint8Array {
  let a = pools.get(slot) as Uint8Array | undefined;
  if (!a || a.length < n) { a = new Uint8Array(Math.max(n, 64)); pools.set(slot, a); }
  return a.subarray(0, n);
}
/** A reusable float64 row buffer (zeroed) for per-row gradients w.r.t. the categories. */
export function rowScratch(n: number): Float64Array {
  const g = scratchF64('G', n);
  g.fill(0);
  return g;
}

/** Builds P, Q (float64) of one row from the student logit row and a teacher row, at temperature τ. */
export function buildRowCats(zS: Float32Array, teacher: TeacherRow, tau: number, mode: SparseMode): RowCats {
  const V = zS.length;
  const logQFull = scratchF64('logQFull', V);
  for (let v = 0; v < V; v++) logQFull[v] = zS[v] / tau;
  const lse = logSumExp(logQFull);
  for (let v = 0; v < V; v++) logQFull[v] -= lse;
  if (teacher.kind === 'dense') {
    const zT = teacher.logits;
    const logP = scratchF64('logP', V), keep = scratchU8('keep', V);
    for (let v = 0; v < V; v++) logP[v] = zT[v] / tau;
    const lseT = logSumExp(logP);
    for (let v = 0; v < V; v++) {
      logP[v] -= lseT;
      keep[v] = finite(zS[v]) && finite(zT[v]) ? 1 : 0;
    }
    return { C: V, V, tau, logP, logQ: logQFull, keep, logQFull };
  }
  const { ids, logprobs } = teacher;
  const k = ids.length, C = k + 1;
  const logP = scratchF64('logP', C), logQ = scratchF64('logQ', C), keep = scratchU8('keep', C);
  logP.fill(0); logQ.fill(0); keep.fill(0);
  const hasTail = sparseTeacherLogProbs(logprobs, 0, k, V, tau, mode, logP);
  const inK = scratchU8('inK', V);
  inK.fill(0);
  for (let j = 0; j < k; j++) {
    inK[ids[j]] = 1;
    logQ[j] = logQFull[ids[j]];
    keep[j] = finite(logprobs[j]) && finite(zS[ids[j]]) ? 1 : 0;
  }
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (!inK[v] && logQFull[v] > m) m = logQFull[v];
  let s = 0;
  if (m > -Infinity) for (let v = 0; v < V; v++) if (!inK[v]) s += Math.exp(logQFull[v] - m);
  logQ[k] = m > -Infinity ? m + Math.log(s) : -Infinity;
  keep[k] = hasTail && logQ[k] > -Infinity ? 1 : 0;
  return { C, V, tau, logP, logQ, keep, logQFull, ids, inK };
}

/**
 * Chain rule from G = dL/dlog Q (per category) to dL/dzS, written into `gradOut` (length V) and
 * multiplied by `scale`. Dense: dL/du_v = G_v − q_v ΣG. Sparse: an id category passes G_j to its
 * logit; the tail passes G_tail · q_v / r_S to every logit outside K (methods.md §0, softmax rule).
 * u = zS/τ, so dL/dzS = dL/du / τ.
 */
export function rowGradToLogits(rc: RowCats, G: Float64Array, scale: number, gradOut: Float32Array): void {
  const { V, C, keep, logQFull } = rc;
  let gsum = 0;
  for (let c = 0; c < C; c++) if (keep[c]) gsum += G[c];
  const f = scale / rc.tau;
  if (!rc.ids) {
    for (let v = 0; v < V; v++) gradOut[v] = f * ((keep[v] ? G[v] : 0) - Math.exp(logQFull[v]) * gsum);
    return;
  }
  const k = rc.ids.length, inK = rc.inK as Uint8Array;
  const gTail = keep[k] ? G[k] : 0, logTail = rc.logQ[k];
  for (let v = 0; v < V; v++) {
    const q = Math.exp(logQFull[v]);
    const viaTail = !inK[v] && gTail !== 0 ? gTail * Math.exp(logQFull[v] - logTail) : 0;
    gradOut[v] = f * (viaTail - q * gsum);
  }
  for (let j = 0; j < k; j++) if (keep[j]) gradOut[rc.ids[j]] += f * G[j];
}
