/**
 * Weighted mixtures of logit objectives, e.g. in YAML
 *
 *   loss:
 *     - {objective: fkl, weight: 0.5, temperature: 2}
 *     - {objective: ce, weight: 0.5}
 *
 * Each entry is the objective's own option schema plus `objective` and `weight` (default 1), strict:
 * an unknown key is a UserError naming it and the entry. The mixture's per-token loss is
 * Σ_i weight_i · l_i [N]; each part's unweighted per-token losses are returned too, for logging.
 */
import { z } from 'zod';
import { formatZodError } from '../config/zod.js';
import { UserError } from '../errors.js';
import { add, mul } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { maskedSum } from './reduce.js';
import { getObjective, objectiveNames } from './registry.js';
import type { BoundObjective, LogitInputs, RowTarget } from './types.js';

export interface MixturePart {
  /** unique key for logs: the objective name, suffixed `#2`, `#3`… when an objective repeats */
  key: string;
  weight: number;
  objective: BoundObjective;
}

const entryHead = z.looseObject({
  objective: z.string().describe(`one of ${objectiveNames.join(', ')}`),
  weight: z.number().min(0).default(1).describe('weight of this part in the sum'),
});

/** The mixture part schema of one objective: its options + objective + weight, strict. */
export function mixtureEntrySchema(name: string): z.ZodObject {
  const obj = getObjective(name);
  return z.strictObject({ ...obj.schema.shape, objective: z.literal(name), weight: entryHead.shape.weight });
}

export class Mixture {
  constructor(readonly parts: readonly MixturePart[]) {
    if (parts.length === 0) throw new UserError('a loss mixture needs at least one objective', 2);
  }

  /**
   * Parses a YAML/JSON mixture: a list of entries, or one entry object. `source` prefixes error
   * messages (e.g. "config.yaml: loss").
   */
  static parse(raw: unknown, source = 'loss'): Mixture {
    const list = Array.isArray(raw) ? raw : [raw];
    const seen = new Map<string, number>();
    const parts = list.map((entry, i) => {
      const where = Array.isArray(raw) ? `${source}[${i}]` : source;
      const head = entryHead.safeParse(entry);
      if (!head.success) throw new UserError(formatZodError(head.error, where), 2);
      const name = head.data.objective;
      getObjective(name); // unknown objective → UserError listing the names
      const parsed = mixtureEntrySchema(name).safeParse(entry);
      if (!parsed.success) throw new UserError(formatZodError(parsed.error, where), 2);
      const { objective: _o, weight, ...options } = parsed.data as Record<string, unknown> & { weight: number };
      const count = (seen.get(name) ?? 0) + 1;
      seen.set(name, count);
      return { key: count === 1 ? name : `${name}#${count}`, weight, objective: getObjective(name).bind(options, where) };
    });
    return new Mixture(parts);
  }

  get needsTeacher(): boolean {
    return this.parts.some((p) => p.objective.needsTeacher && p.weight > 0);
  }
  get needsLabels(): boolean {
    return this.parts.some((p) => p.objective.needsLabels && p.weight > 0);
  }
  /** Throws a UserError if some part cannot use a teacher of this kind. */
  checkTeacher(kind: 'dense' | 'sparse'): void {
    for (const p of this.parts) if (p.objective.needsTeacher) p.objective.checkTeacher(kind);
  }

  /** The same mixture with `patch` applied to every part whose objective is `name` (e.g. TAID's t). */
  withOptions(name: string, patch: Record<string, unknown>): Mixture {
    return new Mixture(this.parts.map((p) => (p.objective.name === name ? { ...p, objective: p.objective.withOptions(patch) } : p)));
  }

  /** Weighted per-token loss [N] and each part's unweighted per-token losses [N]. */
  perToken(inputs: LogitInputs): { loss: Tensor; parts: Record<string, Tensor> } {
    const parts: Record<string, Tensor> = {};
    let loss: Tensor | null = null;
    for (const p of this.parts) {
      const l = p.objective.perToken(inputs);
      parts[p.key] = l;
      const wl = p.weight === 1 ? l : mul(l, p.weight);
      loss = loss ? add(loss, wl) : wl;
    }
    return { loss: loss as Tensor, parts };
  }

  /**
   * Masked sum and count of the weighted loss (for the trainer, see reduce.ts on accumulation), plus
   * each part's token mean over this micro-batch (numbers, for logging).
   */
  maskedSum(inputs: LogitInputs, mask: Float32Array): { sum: Tensor; count: number; parts: Record<string, number> } {
    const { loss, parts } = this.perToken(inputs);
    const { sum, count } = maskedSum(loss, mask);
    const means: Record<string, number> = {};
    for (const [k, l] of Object.entries(parts)) {
      let s = 0;
      for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) s += l.data[i];
      means[k] = count > 0 ? s / count : 0;
    }
    return { sum, count, parts: means };
  }

  /** Row kernel of the mixture: Σ w_i · l_i for one row, gradient into `gradOut` (overwritten). */
  rowLossGrad(zS: Float32Array, target: RowTarget, gradOut: Float32Array, scratch = new Float32Array(zS.length)): number {
    gradOut.fill(0);
    let loss = 0;
    for (const p of this.parts) {
      if (p.weight === 0) continue;
      loss += p.weight * p.objective.rowLossGrad(zS, target, scratch);
      for (let v = 0; v < zS.length; v++) gradOut[v] += p.weight * scratch[v];
    }
    return loss;
  }
}
