/**
 * Types shared by the distillation objectives. Shapes: N = B·T token positions (row-major over
 * [B, T]), V vocabulary size, k teacher top-k size.
 */
import type { z } from 'zod';
import type { Tensor } from '../tensor/tensor.js';

/** Targets equal to this are not trained on (Hugging Face's labels == -100 convention). */
export const IGNORE_INDEX = -100;

/**
 * A teacher given only as its top-k tokens per position (an API or an on-disk cache).
 * `logprobs` are the teacher's FULL-VOCABULARY log-probabilities at temperature 1 (so Σ exp ≤ 1; the
 * rest is the missing mass), not renormalised over the k ids.
 */
export interface SparseTeacher {
  /** [N·k] token ids, row-major; distinct within a row */
  ids: Int32Array;
  /** [N·k] log-probabilities matching `ids` */
  logprobs: Float32Array;
  k: number;
}

/** Dense teacher logits [N, V] (a Tensor, no gradient) or a sparse top-k teacher. */
export type TeacherSignal = Tensor | SparseTeacher;

/** Inputs of a logit objective for N positions. */
export interface LogitInputs {
  /** student logits [N, V] (the tensor the loss is differentiated against) */
  student: Tensor;
  teacher?: TeacherSignal;
  /** [N] gold next tokens; IGNORE_INDEX (-100) where there is none */
  labels?: Int32Array;
}

/** One row of the teacher for the analytic row kernels. */
export type TeacherRow =
  | { kind: 'dense'; logits: Float32Array }
  | { kind: 'sparse'; ids: Int32Array; logprobs: Float32Array };

/** What a row kernel compares one student row against. */
export interface RowTarget {
  teacher?: TeacherRow;
  /** gold token of this row, or IGNORE_INDEX */
  label?: number;
}

/** How the probability mass outside a sparse teacher's top-k is treated (see sparse.ts). */
export type SparseMode = 'renormalize' | 'tail';

/**
 * A logit objective: per-token losses [N] from student logits [N, V], by two independent paths that
 * are tested against each other and against PyTorch:
 * - `perToken` composes tensor ops (the reference; differentiated by autodiff);
 * - `rowLossGrad` is the analytic kernel for one row (float64 accumulation), for fused/chunked use.
 * Masking and normalisation are NOT done here (see reduce.ts).
 */
export interface LogitObjective<O> {
  readonly name: string;
  /** one line for docs and `--help` */
  readonly summary: string;
  /** options with their defaults; strict (unknown keys are errors) */
  readonly schema: z.ZodObject;
  readonly needsTeacher: boolean;
  needsLabels(opts: O): boolean;
  /** null when a sparse teacher is fine with these options, else the reason it is not */
  sparseUnsupported(opts: O): string | null;
  /** per-token losses [N], differentiable w.r.t. `inputs.student` */
  perToken(inputs: LogitInputs, opts: O): Tensor;
  /**
   * Loss of one row; writes dLoss/dzS (length V) into `gradOut` (overwritten, not accumulated).
   * `zS` is the student's logit row (length V).
   */
  rowLossGrad(zS: Float32Array, target: RowTarget, opts: O, gradOut: Float32Array): number;
  /** validates raw options (defaults filled in) and binds them; `source` names the config location */
  bind(raw?: unknown, source?: string): BoundObjective;
}

/** An objective with validated options, ready to call (what configs and mixtures hold). */
export interface BoundObjective {
  readonly name: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly needsTeacher: boolean;
  readonly needsLabels: boolean;
  /** throws a UserError if this objective cannot use a teacher of this kind with these options */
  checkTeacher(kind: 'dense' | 'sparse'): void;
  perToken(inputs: LogitInputs): Tensor;
  rowLossGrad(zS: Float32Array, target: RowTarget, gradOut: Float32Array): number;
  /** the same objective with some options replaced (re-validated), e.g. TAID's t for this step */
  withOptions(patch: Record<string, unknown>): BoundObjective;
}
