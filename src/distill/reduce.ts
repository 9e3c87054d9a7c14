/**
 * Masks and token-level normalisation — the ONLY place they live. Objectives return per-token losses
 * [N] (N = B·T positions); this file turns them into a loss:
 *
 *   L = Σ_{b,t} m_bt · l_bt / Σ_{b,t} m_bt        (token mean; DistiLLM, TAID, torchtune, TRL)
 *
 * m is 1 on positions that are trained on: the given 0/1 mask (prompt/response masks, padding) AND
 * labels != -100. Masked positions are *selected away* (where), not multiplied by 0, so a NaN or inf
 * computed at a padded position cannot leak into the loss or the gradients.
 *
 * Gradient accumulation: split a batch into micro-batches, compute `maskedSum` of each (sum and count),
 * and let the trainer divide every micro-batch's summed loss by the TOTAL count of the whole
 * accumulated batch before backward (not by its own count). The accumulated gradient then equals the
 * gradient of the token mean over the big batch exactly (tested), however the tokens fall across
 * micro-batches.
 */
import { UserError } from '../errors.js';
import { div, sum, where } from '../tensor/ops.js';
import { scalar, Tensor } from '../tensor/tensor.js';
import { IGNORE_INDEX } from './types.js';

/**
 * The 0/1 token mask [N]: `mask` (if given; any nonzero counts as 1) AND `labels` != -100 (if given).
 * With neither, every position counts.
 */
export function tokenMask(n: number, opts: { mask?: ArrayLike<number>; labels?: ArrayLike<number> } = {}): Float32Array {
  const { mask, labels } = opts;
  if (mask && mask.length !== n) throw new UserError(`mask has ${mask.length} entries, expected N = ${n}`, 2);
  if (labels && labels.length !== n) throw new UserError(`labels have ${labels.length} entries, expected N = ${n}`, 2);
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) m[i] = (mask ? mask[i] !== 0 : true) && (labels ? labels[i] !== IGNORE_INDEX : true) ? 1 : 0;
  return m;
}

/** Number of counted positions of a mask. */
export function countTokens(mask: ArrayLike<number>): number {
  let c = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) c++;
  return c;
}

/**
 * Σ_i m_i · l_i as a scalar tensor (differentiable) and count = Σ m. `perToken` is [N] (any shape with
 * N elements).
 */
export function maskedSum(perToken: Tensor, mask: Float32Array): { sum: Tensor; count: number } {
  if (perToken.size !== mask.length) throw new Error(`maskedSum: ${perToken.size} per-token losses for a mask of ${mask.length}`);
  const m = new Tensor(mask, perToken.shape);
  return { sum: sum(where(m, perToken, 0)), count: countTokens(mask) };
}

/** Token-level mean Σ m·l / Σ m (a scalar tensor); 0 when nothing is counted. */
export function tokenMean(perToken: Tensor, mask: Float32Array): Tensor {
  const { sum: s, count } = maskedSum(perToken, mask);
  return count > 0 ? div(s, count) : scalar(0);
}

/** Float64 versions for the row kernels: Σ m·l and Σ m. */
export function maskedSumRows(losses: ArrayLike<number>, mask: ArrayLike<number>): { sum: number; count: number } {
  let s = 0, c = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 0) continue;
    s += losses[i];
    c++;
  }
  return { sum: s, count: c };
}
