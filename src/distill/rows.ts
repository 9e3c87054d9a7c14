/**
 * Driving an objective's analytic row kernel over a range of rows — the shape of work a fused, chunked
 * kernel will do (compute logits for a chunk of rows, then loss and dLoss/dlogits row by row). Used by
 * tests to check row kernels against the composite path, and chunked against unchunked.
 */
import { UserError } from '../errors.js';
import { isSparseTeacher } from './sparse.js';
import type { BoundObjective, LogitInputs, RowTarget, TeacherRow, TeacherSignal } from './types.js';

/** Row n of a dense or sparse teacher (views, no copies). */
export function teacherRowAt(teacher: TeacherSignal, n: number, V: number): TeacherRow {
  if (isSparseTeacher(teacher)) {
    const { k } = teacher;
    return { kind: 'sparse', ids: teacher.ids.subarray(n * k, n * k + k), logprobs: teacher.logprobs.subarray(n * k, n * k + k) };
  }
  return { kind: 'dense', logits: teacher.data.subarray(n * V, n * V + V) };
}

/** What row n of `inputs` is compared against. */
export function rowTargetAt(inputs: LogitInputs, n: number, V: number): RowTarget {
  return {
    teacher: inputs.teacher ? teacherRowAt(inputs.teacher, n, V) : undefined,
    label: inputs.labels ? inputs.labels[n] : undefined,
  };
}

/**
 * Per-token losses and per-row gradients dl_n/dzS_n for rows [start, end) by the row kernel.
 * `grad` is [(end − start), V].
 */
export function rowKernelPerToken(obj: BoundObjective, inputs: LogitInputs, start = 0, end?: number): { losses: Float64Array; grad: Float32Array } {
  const V = inputs.student.shape[inputs.student.rank - 1];
  const N = inputs.student.size / V;
  const stop = end ?? N;
  if (!(0 <= start && start <= stop && stop <= N)) throw new UserError(`row range [${start}, ${stop}) outside [0, ${N})`, 2);
  if (inputs.teacher && isSparseTeacher(inputs.teacher)) obj.checkTeacher('sparse');
  const losses = new Float64Array(stop - start);
  const grad = new Float32Array((stop - start) * V);
  for (let n = start; n < stop; n++) {
    const zS = inputs.student.data.subarray(n * V, n * V + V);
    losses[n - start] = obj.rowLossGrad(zS, rowTargetAt(inputs, n, V), grad.subarray((n - start) * V, (n - start + 1) * V));
  }
  return { losses, grad };
}
