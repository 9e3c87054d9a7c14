/**
 * The objective registry: config name → objective (zod schema of its options with defaults, composite
 * and row-kernel implementations). Adding an objective = one file under objectives/, one line here,
 * its golden case (tools/golden/objectives.py) and its property tests.
 *
 * Defaults that differ between objectives, in one place:
 * | name      | options (defaults)                                                      | τ² |
 * |-----------|-------------------------------------------------------------------------|----|
 * | ce        | —                                                                       | —  |
 * | fkl, rkl  | temperature 1, sparse 'renormalize' (rkl needs 'tail')                  | on |
 * | gjsd      | beta 0.5, temperature 1, sparse                                         | off (TRL) |
 * | tvd       | temperature 1, sparse                                                   | off (bounded) |
 * | skew_fkl, skew_rkl | alpha 0.1, temperature 1, sparse                               | on |
 * | taid      | t (= t_start), t_start 0.4, t_end 1, alpha 5e-4, beta 0.99, adaptive   | on |
 * | bdkd      | weighting 'entropy', mu 0.5, temperature 1, sparse ('tail' only)        | on |
 * | akl       | mu 0.5, detach_weights false, temperature 1, sparse ('tail' only)       | on |
 * | pld       | k 16, gold_first true                                                   | —  |
 */
import { UserError } from '../errors.js';
import { balancedKl, adaptiveKl } from './objectives/adaptive.js';
import { crossEntropy } from './objectives/ce.js';
import { featureSchemas } from './objectives/features.js';
import { generalizedJsd } from './objectives/jsd.js';
import { forwardKl, reverseKl } from './objectives/kl.js';
import { plackettLuce } from './objectives/pld.js';
import { skewForwardKl, skewReverseKl } from './objectives/skew.js';
import { taid } from './objectives/taid.js';
import { totalVariation } from './objectives/tvd.js';
import type { BoundObjective } from './types.js';

export const objectives = {
  ce: crossEntropy,
  fkl: forwardKl,
  rkl: reverseKl,
  gjsd: generalizedJsd,
  tvd: totalVariation,
  skew_fkl: skewForwardKl,
  skew_rkl: skewReverseKl,
  taid,
  bdkd: balancedKl,
  akl: adaptiveKl,
  pld: plackettLuce,
} as const;

/** Config names of the logit objectives. */
export type ObjectiveName = keyof typeof objectives;
export const objectiveNames = Object.keys(objectives) as ObjectiveName[];

/** Feature-level objectives (hidden states, attention maps, token relations); see objectives/features.ts. */
export const featureObjectives = featureSchemas;
export type FeatureObjectiveName = keyof typeof featureObjectives;

export function isObjectiveName(name: unknown): name is ObjectiveName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(objectives, name);
}

/** The objective called `name`, or a UserError listing the valid names. */
export function getObjective(name: string): (typeof objectives)[ObjectiveName] {
  if (!isObjectiveName(name)) {
    throw new UserError(`unknown objective "${name}"; expected one of: ${objectiveNames.join(', ')}`, 2);
  }
  return objectives[name];
}

/** Validates `rawOptions` against the objective's schema (defaults filled in) and binds them. */
export function bindObjective(name: string, rawOptions?: unknown, source?: string): BoundObjective {
  return getObjective(name).bind(rawOptions ?? {}, source ?? name);
}
