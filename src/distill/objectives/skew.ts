/**
 * Skew forward / reverse KL (DistiLLM) [V: distillm/losses.py `skewed_forward_kl`, `skewed_reverse_kl`;
 * methods.md §2a]:
 *
 *   skew_fkl = KL(p ‖ α p + (1 − α) q)      dL/dq_i = −(1 − α) p_i / M_i                     [D]
 *   skew_rkl = KL(q ‖ (1 − α) p + α q)      dL/dq_i = log(q_i/M_i) + 1 − α q_i / M_i          [D]
 *
 * Gradients flow through the student inside the mixture (the reference does not detach). α = 0 gives
 * plain FKL / RKL. Defaults α = 0.1, τ = 1 [V: distillm arguments.py]. Deviation: DistiLLM's
 * skewed_forward_kl is the cross-entropy form −Σ p log M; we add the teacher entropy so the loss is a
 * divergence (0 for identical inputs); gradients are identical.
 */
import { z } from 'zod';
import { add, mul, sub, sum } from '../../tensor/ops.js';
import { logAddExp, logAddExpT } from './categorical.js';
import { divergenceObjective, renormalizeRefusal, sparseOption, tauSquaredOption, temperatureOption } from './define.js';

const alphaOption = z.number().min(0).lt(1).default(0.1).describe('skew α ∈ [0, 1): the share of the mixture taken from the distribution on the left (DistiLLM default 0.1)');

export const skewForwardKl = divergenceObjective({
  name: 'skew_fkl',
  summary: 'skew forward KL(p ‖ αp + (1−α)q) (DistiLLM)',
  schema: z.strictObject({ alpha: alphaOption, temperature: temperatureOption, tau_squared: tauSquaredOption(true), sparse: sparseOption }),
  div: {
    composite(c, { alpha }) {
      const logM = alpha === 0 ? c.logQ : logAddExpT(add(c.logP, Math.log(alpha)), add(c.logQ, Math.log1p(-alpha)));
      return sum(mul(c.P, sub(c.logP, logM)), -1);
    },
    row(r, { alpha }, G) {
      const la = Math.log(alpha), l1a = Math.log1p(-alpha);
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (!r.keep[c] || r.logP[c] === -Infinity) continue;
        const lp = r.logP[c], lq = r.logQ[c];
        const logM = alpha === 0 ? lq : logAddExp(lp + la, lq + l1a);
        L += Math.exp(lp) * (lp - logM);
        G[c] -= (1 - alpha) * Math.exp(lp + lq - logM);
      }
      return L;
    },
  },
});

export const skewReverseKl = divergenceObjective({
  name: 'skew_rkl',
  summary: 'skew reverse KL(q ‖ (1−α)p + αq) (DistiLLM)',
  schema: z.strictObject({ alpha: alphaOption, temperature: temperatureOption, tau_squared: tauSquaredOption(true), sparse: sparseOption }),
  sparseUnsupported: (o) => (o.alpha === 0 && o.sparse === 'renormalize' ? renormalizeRefusal('skew_rkl with alpha = 0', 'it is KL(q‖p)') : null),
  div: {
    composite(c, { alpha }) {
      const logM = alpha === 0 ? c.logP : logAddExpT(add(c.logP, Math.log1p(-alpha)), add(c.logQ, Math.log(alpha)));
      return sum(mul(c.Q, sub(c.logQ, logM)), -1);
    },
    row(r, { alpha }, G) {
      const la = Math.log(alpha), l1a = Math.log1p(-alpha);
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (!r.keep[c]) continue;
        const lp = r.logP[c], lq = r.logQ[c];
        const logM = alpha === 0 ? lp : logAddExp(lp + l1a, lq + la);
        const Q = Math.exp(lq);
        L += Q * (lq - logM);
        G[c] += Q * (lq - logM + 1) - (alpha === 0 ? 0 : alpha * Math.exp(2 * lq - logM));
      }
      return L;
    },
  },
});
