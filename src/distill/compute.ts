/**
 * `computeObjective`: the objectives for callers outside our tensor type — nested number arrays in,
 * the token-mean loss and its gradient w.r.t. the student logits out. Every argument is validated;
 * a bad shape or value is a UserError naming the argument and the expected shape.
 */
import { UserError } from '../errors.js';
import { backward } from '../tensor/autodiff.js';
import { Tensor } from '../tensor/tensor.js';
import { tokenMask, tokenMean, countTokens } from './reduce.js';
import { bindObjective } from './registry.js';
import { validateSparseTeacher } from './sparse.js';
import { IGNORE_INDEX, type SparseTeacher, type TeacherSignal } from './types.js';

/** Nested-array inputs. B sequences × T positions × V vocabulary. */
export interface ComputeObjectiveInput {
  /** student logits [B][T][V]; -Infinity allowed (masked vocabulary), NaN/+Infinity are not */
  student: number[][][];
  /** teacher logits [B][T][V], or a sparse top-k teacher {ids, logprobs} each [B][T][k] */
  teacher?: number[][][] | { ids: number[][][]; logprobs: number[][][] };
  /** gold next tokens [B][T] in [0, V), or -100 (not trained on) */
  labels?: number[][];
  /** 1 = train on this position, 0 = ignore [B][T] */
  mask?: number[][];
}

export interface ComputeObjectiveResult {
  /** token mean over unmasked positions (mask AND labels != -100); 0 when none */
  loss: number;
  /** d loss / d student logits [B][T][V] */
  gradStudent: number[][][];
  /** number of positions the mean is over */
  tokens: number;
}

/**
 * Computes objective `name` (ce, fkl, rkl, gjsd, tvd, skew_fkl, skew_rkl, taid, bdkd, akl, pld) with
 * `options` (temperature, beta, alpha, t, k, sparse, …; see registry.ts for each objective's options and
 * defaults) and returns the token-level mean loss over unmasked positions and its gradient w.r.t. the
 * student logits. Uses the composite (autodiff) implementation, in float32.
 */
export function computeObjective(name: string, input: ComputeObjectiveInput, options: Record<string, unknown> = {}): ComputeObjectiveResult {
  const obj = bindObjective(name, options, `${name} options`);
  if (typeof input !== 'object' || input === null) throw new UserError('computeObjective: input must be an object {student, teacher?, labels?, mask?}', 2);
  const [B, T, V] = shape3(input.student, 'student', '[B][T][V]');
  const N = B * T;
  const student = new Tensor(flattenLogits(input.student, 'student', B, T, V), [N, V], true);

  let teacher: TeacherSignal | undefined;
  if (input.teacher !== undefined) {
    if (Array.isArray(input.teacher)) {
      const [tb, tt, tv] = shape3(input.teacher, 'teacher', `[B][T][V] = [${B}][${T}][${V}]`);
      if (tb !== B || tt !== T || tv !== V) throw new UserError(`teacher must have shape [B][T][V] = [${B}][${T}][${V}] like student; got [${tb}][${tt}][${tv}]`, 2);
      teacher = new Tensor(flattenLogits(input.teacher, 'teacher', B, T, V), [N, V]);
    } else {
      teacher = sparseFromNested(input.teacher, B, T, V);
    }
    obj.checkTeacher(teacher instanceof Tensor ? 'dense' : 'sparse');
  } else if (obj.needsTeacher) {
    throw new UserError(`objective '${name}' needs a teacher: teacher logits [B][T][V] or {ids, logprobs} [B][T][k]`, 2);
  }

  const labels = input.labels !== undefined ? flattenLabels(input.labels, B, T, V) : undefined;
  if (!labels && obj.needsLabels) throw new UserError(`objective '${name}' needs labels [B][T] = [${B}][${T}] (gold tokens, -100 to ignore)`, 2);
  const maskIn = input.mask !== undefined ? flattenMask(input.mask, B, T) : undefined;
  const mask = tokenMask(N, { mask: maskIn, labels });

  const loss = tokenMean(obj.perToken({ student, teacher, labels }), mask);
  if (loss.requiresGrad) backward(loss);
  const g = student.grad?.data ?? new Float32Array(N * V);
  const gradStudent = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => Array.from(g.subarray((b * T + t) * V, (b * T + t + 1) * V))));
  return { loss: loss.item(), gradStudent, tokens: countTokens(mask) };
}

// ---------------------------------------------------------------- validation helpers

function shape3(x: unknown, what: string, expected: string): [number, number, number] {
  const bad = (detail: string): never => { throw new UserError(`${what} must be a nested array of shape ${expected}: ${detail}`, 2); };
  if (!Array.isArray(x) || x.length === 0) bad('expected a non-empty array');
  const xs = x as unknown[];
  if (!Array.isArray(xs[0]) || (xs[0] as unknown[]).length === 0) bad(`${what}[0] is not a non-empty array`);
  const T = (xs[0] as unknown[]).length;
  const r0 = (xs[0] as unknown[])[0];
  if (!Array.isArray(r0) || r0.length === 0) bad(`${what}[0][0] is not a non-empty array`);
  const V = (r0 as unknown[]).length;
  xs.forEach((seq, b) => {
    if (!Array.isArray(seq) || seq.length !== T) bad(`${what}[${b}] has ${Array.isArray(seq) ? seq.length : 'no'} rows, expected T = ${T}`);
    (seq as unknown[]).forEach((row, t) => {
      if (!Array.isArray(row) || row.length !== V) bad(`${what}[${b}][${t}] has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${V}`);
    });
  });
  return [xs.length, T, V];
}

function flattenLogits(x: number[][][], what: string, B: number, T: number, V: number): Float32Array {
  const out = new Float32Array(B * T * V);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    let finite = 0;
    for (let v = 0; v < V; v++) {
      const val = x[b][t][v];
      if (typeof val !== 'number' || Number.isNaN(val) || val === Infinity) {
        throw new UserError(`${what}[${b}][${t}][${v}] = ${String(val)} is not a logit (finite number or -Infinity)`, 2);
      }
      if (val !== -Infinity) finite++;
      out[(b * T + t) * V + v] = val;
    }
    if (finite === 0) throw new UserError(`${what}[${b}][${t}] has no finite logit`, 2);
  }
  return out;
}

function sparseFromNested(t: unknown, B: number, T: number, V: number): SparseTeacher {
  if (typeof t !== 'object' || t === null || !('ids' in t) || !('logprobs' in t)) {
    throw new UserError(`teacher must be logits [B][T][V] = [${B}][${T}][${V}] or a sparse top-k teacher {ids, logprobs}, each [B][T][k]`, 2);
  }
  const { ids, logprobs } = t as { ids: unknown; logprobs: unknown };
  const [ib, it, k] = shape3(ids, 'teacher.ids', `[B][T][k] = [${B}][${T}][k]`);
  const [lb, lt, lk] = shape3(logprobs, 'teacher.logprobs', `[B][T][k] = [${B}][${T}][${k}]`);
  if (ib !== B || it !== T) throw new UserError(`teacher.ids must have shape [B][T][k] = [${B}][${T}][k]; got [${ib}][${it}][${k}]`, 2);
  if (lb !== B || lt !== T || lk !== k) throw new UserError(`teacher.logprobs must have shape [B][T][k] = [${B}][${T}][${k}] like teacher.ids; got [${lb}][${lt}][${lk}]`, 2);
  const idA = new Int32Array(B * T * k), lpA = new Float32Array(B * T * k);
  const idsN = ids as unknown[][][], lpN = logprobs as unknown[][][];
  for (let b = 0; b < B; b++) for (let s = 0; s < T; s++) for (let j = 0; j < k; j++) {
    const id = idsN[b][s][j], lp = lpN[b][s][j];
    if (typeof id !== 'number' || !Number.isInteger(id)) throw new UserError(`teacher.ids[${b}][${s}][${j}] = ${String(id)} is not an integer token id`, 2);
    if (typeof lp !== 'number') throw new UserError(`teacher.logprobs[${b}][${s}][${j}] = ${String(lp)} is not a number`, 2);
    idA[(b * T + s) * k + j] = id;
    lpA[(b * T + s) * k + j] = lp;
    if (id < 0 || id >= V) throw new UserError(`teacher.ids[${b}][${s}][${j}] = ${id} is outside the vocabulary [0, ${V})`, 2);
  }
  const sparse = { ids: idA, logprobs: lpA, k };
  validateSparseTeacher(sparse, B * T, V, 'teacher');
  return sparse;
}

function shape2(x: unknown, what: string, B: number, T: number): unknown[][] {
  const bad = (detail: string): never => { throw new UserError(`${what} must be a nested array of shape [B][T] = [${B}][${T}]: ${detail}`, 2); };
  if (!Array.isArray(x) || x.length !== B) bad(`got ${Array.isArray(x) ? x.length : 'no'} sequences`);
  (x as unknown[]).forEach((row, b) => {
    if (!Array.isArray(row) || row.length !== T) bad(`${what}[${b}] has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${T}`);
  });
  return x as unknown[][];
}

function flattenLabels(x: unknown, B: number, T: number, V: number): Int32Array {
  const rows = shape2(x, 'labels', B, T);
  const out = new Int32Array(B * T);
  rows.forEach((row, b) => row.forEach((y, t) => {
    if (typeof y !== 'number' || !Number.isInteger(y) || (y !== IGNORE_INDEX && (y < 0 || y >= V))) {
      throw new UserError(`labels[${b}][${t}] = ${String(y)} must be a token id in [0, ${V}) or -100`, 2);
    }
    out[b * T + t] = y;
  }));
  return out;
}

function flattenMask(x: unknown, B: number, T: number): Float32Array {
  const rows = shape2(x, 'mask', B, T);
  const out = new Float32Array(B * T);
  rows.forEach((row, b) => row.forEach((m, t) => {
    if (m !== 0 && m !== 1) throw new UserError(`mask[${b}][${t}] = ${String(m)} must be 0 or 1`, 2);
    out[b * T + t] = m;
  }));
  return out;
}
