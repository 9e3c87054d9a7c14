/**
 * Distillation objectives: logit objectives (registry), feature KD, sparse teachers, masks and
 * normalisation, mixtures, and the nested-array `computeObjective` API.
 */
export { computeObjective, type ComputeObjectiveInput, type ComputeObjectiveResult } from './compute.js';
export {
  objectives, objectiveNames, featureObjectives, getObjective, bindObjective, isObjectiveName,
  type ObjectiveName, type FeatureObjectiveName,
} from './registry.js';
export { Mixture, mixtureEntrySchema, type MixturePart } from './mixture.js';
export { fusedMixtureLoss, type FusedMixtureInput, type TeacherHead } from './fused-loss.js';
export { tokenMask, countTokens, maskedSum, tokenMean, maskedSumRows } from './reduce.js';
export { rowKernelPerToken, rowTargetAt, teacherRowAt } from './rows.js';
export { TAIL_FLOOR, validateSparseTeacher, isSparseTeacher } from './sparse.js';
export { TaidSchedule, type TaidScheduleOptions, type TaidScheduleState } from './objectives/taid.js';
export {
  HiddenStateDistiller, hiddenMsePerToken, hiddenCosinePerToken, attentionKlPerToken, trgPerToken,
  uniformLayerMap, resolveLayerMap, hiddenStateSchema, attentionKlSchema, trgSchema,
  type HiddenStateOptions, type AttentionKlOptions, type TrgOptions,
} from './objectives/features.js';
export {
  IGNORE_INDEX,
  type SparseTeacher, type TeacherSignal, type LogitInputs, type TeacherRow, type RowTarget, type SparseMode,
  type LogitObjective, type BoundObjective,
} from './types.js';
