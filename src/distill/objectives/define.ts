/**
 * Building blocks for objective definitions: option schemas shared by several objectives, binding of
 * validated options, and `divergenceObjective`, which turns a divergence over categories
 * (categorical.ts) into a full logit objective (temperature, τ² scaling, dense or sparse teacher).
 */
import { z } from 'zod';
import { parseWith } from '../../config/zod.js';
import { UserError } from '../../errors.js';
import { mul } from '../../tensor/ops.js';
import type { Tensor } from '../../tensor/tensor.js';
import { isSparseTeacher } from '../sparse.js';
import type { BoundObjective, LogitInputs, LogitObjective, RowTarget, SparseMode, TeacherRow, TeacherSignal } from '../types.js';
import { buildCatTensors, buildRowCats, rowGradToLogits, rowScratch, type CatRow, type CatTensors } from './categorical.js';

// ---------------------------------------------------------------- shared options

export const temperatureOption = z.number().positive().default(1)
  .describe('softmax temperature τ applied to both student and teacher logits');
export const sparseOption = z.enum(['renormalize', 'tail']).default('renormalize')
  .describe("missing mass of a sparse top-k teacher: 'renormalize' (teacher renormalised over its top-k, zero elsewhere; DistillKit's default) or 'tail' (one extra bucket with 1−Σp_topk for the teacher and 1−Σq_topk for the student)");
export const tauSquaredOption = (dflt: boolean) => z.boolean().default(dflt)
  .describe('multiply the loss by τ² so the gradient scale stays roughly independent of τ (Hinton)');

/** Options every divergence objective has. */
export interface DivergenceOptions {
  temperature: number;
  tau_squared: boolean;
  sparse: SparseMode;
}

export const renormalizeRefusal = (name: string, why: string): string =>
  `${name} is infinite with sparse: 'renormalize' (${why}: the teacher gives zero probability to the student's mass outside its top-k); use sparse: 'tail'`;

// ---------------------------------------------------------------- binding

type ObjectiveSpec<S extends z.ZodObject> = Omit<LogitObjective<z.output<S>>, 'bind' | 'schema'> & { schema: S };

/** Adds `bind` (validate options once, then call) to an objective definition. */
export function defineObjective<S extends z.ZodObject>(spec: ObjectiveSpec<S>): LogitObjective<z.output<S>> {
  const obj: LogitObjective<z.output<S>> = {
    ...spec,
    bind(raw?: unknown, source = spec.name): BoundObjective {
      const opts = parseWith(spec.schema, raw ?? {}, source) as z.output<S>;
      return bound(obj, opts, source);
    },
  };
  return obj;
}

function bound<O extends object>(obj: LogitObjective<O>, opts: O, source: string): BoundObjective {
  const options = Object.freeze({ ...opts }) as Readonly<Record<string, unknown>>;
  return {
    name: obj.name,
    options,
    needsTeacher: obj.needsTeacher,
    needsLabels: obj.needsLabels(opts),
    checkTeacher(kind) {
      const why = kind === 'sparse' ? obj.sparseUnsupported(opts) : null;
      if (why) throw new UserError(`${source}: ${why}`, 2);
    },
    perToken: (inputs) => obj.perToken(inputs, opts),
    rowLossGrad: (zS, target, gradOut) => obj.rowLossGrad(zS, target, opts, gradOut),
    withOptions: (patch) => obj.bind({ ...options, ...patch }, source),
  };
}

/** The teacher of `inputs`, checked to be present and usable by the objective. */
export function requireTeacher<O>(obj: Pick<LogitObjective<O>, 'name' | 'sparseUnsupported'>, teacher: TeacherSignal | undefined, opts: O): TeacherSignal {
  if (!teacher) throw new UserError(`objective '${obj.name}' needs a teacher (dense logits or sparse top-k)`, 2);
  if (isSparseTeacher(teacher)) {
    const why = obj.sparseUnsupported(opts);
    if (why) throw new UserError(why, 2);
  }
  return teacher;
}

export function requireTeacherRow<O>(obj: Pick<LogitObjective<O>, 'name' | 'sparseUnsupported'>, teacher: TeacherRow | undefined, opts: O): TeacherRow {
  if (!teacher) throw new UserError(`objective '${obj.name}' needs a teacher (dense logits or sparse top-k)`, 2);
  if (teacher.kind === 'sparse') {
    const why = obj.sparseUnsupported(opts);
    if (why) throw new UserError(why, 2);
  }
  return teacher;
}

// ---------------------------------------------------------------- divergences

/** A divergence between P (teacher) and Q (student) over categories, in both forms. */
export interface Divergence<O> {
  /** per-row values [N] from tensors; differentiable through `c.logQ` / `c.Q` */
  composite(c: CatTensors, opts: O): Tensor;
  /** value of one row; ADDS dL/dlog Q_c into `G` (zero-initialised by the caller) */
  row(r: CatRow, opts: O, G: Float64Array): number;
}

interface DivergenceSpec<S extends z.ZodObject> {
  name: string;
  summary: string;
  schema: S;
  div: Divergence<z.output<S>>;
  sparseUnsupported?: (opts: z.output<S>) => string | null;
}

/**
 * A logit objective from a divergence: student q = softmax(zS/τ), teacher p = softmax(zT/τ) (or the
 * sparse categories), loss = D(p, q) · (τ² if `tau_squared`).
 */
export function divergenceObjective<S extends z.ZodObject>(spec: DivergenceSpec<S>): LogitObjective<z.output<S>> {
  type O = z.output<S> & DivergenceOptions;
  const sparseUnsupported = (opts: z.output<S>): string | null => spec.sparseUnsupported?.(opts) ?? null;
  const self = { name: spec.name, sparseUnsupported };
  return defineObjective({
    name: spec.name,
    summary: spec.summary,
    schema: spec.schema,
    needsTeacher: true,
    needsLabels: () => false,
    sparseUnsupported,
    perToken(inputs: LogitInputs, raw: z.output<S>): Tensor {
      const o = raw as O;
      const teacher = requireTeacher(self, inputs.teacher, raw);
      const cats = buildCatTensors(inputs.student, teacher, o.temperature, o.sparse);
      const losses = spec.div.composite(cats, raw); // [N]
      return o.tau_squared && o.temperature !== 1 ? mul(losses, o.temperature * o.temperature) : losses;
    },
    rowLossGrad(zS: Float32Array, target: RowTarget, raw: z.output<S>, gradOut: Float32Array): number {
      const o = raw as O;
      const teacher = requireTeacherRow(self, target.teacher, raw);
      const rc = buildRowCats(zS, teacher, o.temperature, o.sparse);
      const G = rowScratch(rc.C);
      const loss = spec.div.row(rc, raw, G);
      const scale = o.tau_squared ? o.temperature * o.temperature : 1;
      rowGradToLogits(rc, G, scale, gradOut);
      return loss * scale;
    },
  });
}
