/**
 * Forward and reverse KL (methods.md §2a "Forward KL, reverse KL", "Hinton KD with temperature").
 *
 *   fkl = τ² · KL(p‖q) = τ² Σ p (log p − log q)      dL/dzS = τ (q − p)          [D]
 *   rkl = τ² · KL(q‖p) = τ² Σ q (log q − log p)      g = log q − log p, softmax rule [D]
 *
 * with p = softmax(zT/τ), q = softmax(zS/τ). τ² (on by default, `tau_squared`) is Hinton's factor as
 * in DistillKit [V: distillkit/lossfuncs/kl.py]. Deviation from DistiLLM's `forward_kl`: that computes
 * the cross-entropy form −Σ p log q; we include the teacher entropy so the loss is a divergence
 * (0 for identical inputs). The gradient is the same.
 */
import { z } from 'zod';
import { mul, sub, sum } from '../../tensor/ops.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { CatRow, CatTensors } from './categorical.js';
import { divergenceObjective, renormalizeRefusal, sparseOption, tauSquaredOption, temperatureOption } from './define.js';

/** Σ_c P (log P − log Q) per row [N] (kept categories; P = 0 contributes 0). */
export function fklComposite(c: CatTensors): Tensor {
  return sum(mul(c.P, sub(c.logP, c.logQ)), -1);
}
/** Σ_c Q (log Q − log P) per row [N]. */
export function rklComposite(c: CatTensors): Tensor {
  return sum(mul(c.Q, sub(c.logQ, c.logP)), -1);
}

/** KL(P‖Q) of one row; adds w · dKL/dlog Q (= −w P) into G. */
export function fklRow(r: CatRow, G: Float64Array, w = 1): number {
  let L = 0;
  for (let c = 0; c < r.C; c++) {
    if (!r.keep[c] || r.logP[c] === -Infinity) continue;
    const P = Math.exp(r.logP[c]);
    L += P * (r.logP[c] - r.logQ[c]);
    G[c] -= w * P;
  }
  return L;
}
/** KL(Q‖P) of one row; adds w · Q (log Q − log P + 1) into G. */
export function rklRow(r: CatRow, G: Float64Array, w = 1): number {
  let L = 0;
  for (let c = 0; c < r.C; c++) {
    if (!r.keep[c]) continue;
    const Q = Math.exp(r.logQ[c]);
    const d = r.logQ[c] - r.logP[c];
    L += Q * d;
    G[c] += w * Q * (d + 1);
  }
  return L;
}

export const forwardKl = divergenceObjective({
  name: 'fkl',
  summary: 'forward KL(p‖q) with temperature τ and Hinton τ² scaling',
  schema: z.strictObject({ temperature: temperatureOption, tau_squared: tauSquaredOption(true), sparse: sparseOption }),
  div: { composite: (c) => fklComposite(c), row: (r, _o, G) => fklRow(r, G) },
});

export const reverseKl = divergenceObjective({
  name: 'rkl',
  summary: 'reverse KL(q‖p) (mode-seeking) with temperature τ and τ² scaling',
  schema: z.strictObject({ temperature: temperatureOption, tau_squared: tauSquaredOption(true), sparse: sparseOption }),
  div: { composite: (c) => rklComposite(c), row: (r, _o, G) => rklRow(r, G) },
  sparseUnsupported: (o) => (o.sparse === 'renormalize' ? renormalizeRefusal('rkl', 'KL(q‖p)') : null),
});
