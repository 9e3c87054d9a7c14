/**
 * Sparse top-k teachers and the missing probability mass (methods.md, "Sparse top-k teacher logits and
 * the missing mass"; [V: DistillKit distillkit/lossfuncs/{common,kl}.py]).
 *
 * A sparse teacher row gives k ids and their full-vocabulary log-probs lp_i; P_K = Σ exp(lp_i) ≤ 1.
 * Every objective then compares two distributions over C = k + 1 categories — the k ids plus one
 * "tail" bucket holding everything else:
 *
 *   student  Q = [ q_{id_1}, ..., q_{id_k}, r_S ],   q = softmax(zS/τ) over the FULL vocabulary,
 *                                                    r_S = 1 − Σ_K q  (never renormalised to K)
 *   'tail'         P = [ p_1, ..., p_k, r_T ],       r_T = max(1 − P_K, TAIL_FLOOR)
 *   'renormalize'  P = [ p̂_1, ..., p̂_k, 0 ],         p̂ = p / P_K
 *
 * 'tail' is DistillKit's SYMMETRIC_UNIFORM / MaxText's "other_bucket"; 'renormalize' is DistillKit's
 * ZERO / MaxText's "renormalize". With 'renormalize' the teacher puts exactly zero mass on the tail
 * while the student keeps r_S there, so FKL = Σ_K p̂ (log p̂ − log q) and TVD = ½(Σ_K |p̂ − q| + r_S),
 * exactly DistillKit's formulas, but any objective containing KL(Q‖P) (rkl, bdkd, akl, gjsd with β=1,
 * skew_rkl with α=0) is infinite and is refused with an error suggesting 'tail'.
 *
 * Temperature on log-prob targets: p_i^(τ) ∝ p_i^(1/τ), renormalised over the categories; in 'tail'
 * mode the tail mass is raised to 1/τ too (DistillKit get_target_logprobs, with generation temperature
 * 1). TAIL_FLOOR = 1e-6 (DistillKit's eps) keeps r_T > 0 when the top-k mass rounds to 1, so the
 * reverse-KL tail term stays finite. When k = V (the ids cover the vocabulary) there is no tail: the
 * bucket is dropped and both modes equal the dense objective.
 * At τ ≠ 1 the tempered tail r_T^(1/τ) is an approximation (the true Σ_{v∉K} p_v^(1/τ) is unknown),
 * so in 'tail' mode a student identical to the teacher still has a small loss at τ ≠ 1; at τ = 1 it
 * has none.
 */
import { UserError } from '../errors.js';
import type { SparseMode, SparseTeacher } from './types.js';

/** Lower bound of the teacher tail mass in 'tail' mode (DistillKit's eps). */
export const TAIL_FLOOR = 1e-6;

export function isSparseTeacher(t: unknown): t is SparseTeacher {
  return typeof t === 'object' && t !== null && 'ids' in t && 'logprobs' in t && 'k' in t;
}

/**
 * Validates a sparse teacher for N rows over a vocabulary of V: sizes, ids in range and distinct per
 * row, log-probs ≤ ~0 and not NaN/+inf, Σ exp ≤ ~1. Throws a UserError naming `what`.
 */
export function validateSparseTeacher(t: SparseTeacher, N: number, V: number, what = 'teacher'): void {
  const { k, ids, logprobs } = t;
  if (!Number.isInteger(k) || k < 1 || k > V) throw new UserError(`${what}.k must be an integer in [1, ${V}] (the vocabulary size), got ${k}`, 2);
  if (ids.length !== N * k || logprobs.length !== N * k) {
    throw new UserError(`${what}: ids and logprobs must each hold N·k = ${N}·${k} = ${N * k} values, got ${ids.length} ids and ${logprobs.length} logprobs`, 2);
  }
  const seen = new Int32Array(V).fill(-1);
  for (let n = 0; n < N; n++) {
    let mass = 0, finite = 0;
    for (let j = 0; j < k; j++) {
      const i = n * k + j, id = ids[i], lp = logprobs[i];
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new UserError(`${what}.ids: id ${id} at row ${n}, slot ${j} is outside the vocabulary [0, ${V})`, 2);
      if (seen[id] === n) throw new UserError(`${what}.ids: token ${id} appears twice in row ${n}; top-k ids must be distinct`, 2);
      seen[id] = n;
      if (Number.isNaN(lp) || lp > 1e-3) throw new UserError(`${what}.logprobs: value ${lp} at row ${n}, slot ${j} is not a log-probability (must be ≤ 0 or -Infinity)`, 2);
      mass += Math.exp(Math.min(lp, 0));
      if (lp > -Infinity) finite++;
    }
    if (finite === 0) throw new UserError(`${what}.logprobs: row ${n} has no finite log-probability`, 2);
    if (mass > 1 + 1e-3) throw new UserError(`${what}.logprobs: row ${n} has total probability ${mass.toFixed(6)} > 1; logprobs must be full-vocabulary log-probabilities`, 2);
  }
}

/**
 * Teacher log-probabilities over the k + 1 categories of one sparse row at temperature τ
 * (see the module comment). Writes `out[0..k]`; a genuine zero is -Infinity. Returns whether the row
 * has a tail bucket (k < V).
 */
export function sparseTeacherLogProbs(
  logprobs: Float32Array, off: number, k: number, V: number, tau: number, mode: SparseMode, out: Float64Array,
): boolean {
  const hasTail = k < V;
  let mx = -Infinity, mass = 0;
  for (let j = 0; j < k; j++) {
    const lp = Math.min(logprobs[off + j], 0);
    mass += Math.exp(lp);
    out[j] = lp / tau;
    if (out[j] > mx) mx = out[j];
  }
  let tailLog = -Infinity;
  if (hasTail && mode === 'tail') {
    tailLog = Math.log(Math.max(1 - mass, TAIL_FLOOR)) / tau;
    if (tailLog > mx) mx = tailLog;
  }
  let s = 0;
  for (let j = 0; j < k; j++) s += Math.exp(out[j] - mx);
  if (tailLog > -Infinity) s += Math.exp(tailLog - mx);
  const logZ = mx + Math.log(s);
  for (let j = 0; j < k; j++) out[j] -= logZ;
  out[k] = tailLog - logZ; // -Infinity for 'renormalize' or without a tail
  return hasTail;
}
