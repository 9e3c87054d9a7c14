/**
 * Generalised Jensen-Shannon divergence, TRL convention [V: huggingface/trl, `generalized_jsd_loss` in
 * trl/experimental/gkd/gkd_trainer.py; methods.md §2a]:
 *
 *   M     = β p + (1 − β) q                  (built in log space with logsumexp)
 *   JSD_β = β KL(p‖M) + (1 − β) KL(q‖M)
 *   β = 0 → exactly KL(p‖q) (forward KL);  β = 1 → exactly KL(q‖p) (reverse KL)   (special-cased, as TRL)
 *
 * The general formula vanishes at both ends (JSD/β → FKL, JSD/(1−β) → RKL), so loss magnitudes are not
 * comparable across β. Student gradient: dL/dlog q = (1 − β) q log(q/M) [D]. Like TRL the temperature
 * divides both logit sets and there is no τ² factor by default (`tau_squared: false`).
 * DistiLLM's `js_distance(lam=0.9)` and TAID's `js` are β = 0.1 here.
 */
import { z } from 'zod';
import { add, mul, sub, sum } from '../../tensor/ops.js';
import { logAddExp, logAddExpT } from './categorical.js';
import { divergenceObjective, renormalizeRefusal, sparseOption, tauSquaredOption, temperatureOption } from './define.js';
import { fklComposite, fklRow, rklComposite, rklRow } from './kl.js';

export const generalizedJsd = divergenceObjective({
  name: 'gjsd',
  summary: 'generalised JSD with β (TRL/GKD convention: β=0 forward KL, β=1 reverse KL)',
  schema: z.strictObject({
    beta: z.number().min(0).max(1).default(0.5).describe('weight of the teacher in the mixture M = βp + (1−β)q (TRL GKDConfig default 0.5)'),
    temperature: temperatureOption,
    tau_squared: tauSquaredOption(false),
    sparse: sparseOption,
  }),
  sparseUnsupported: (o) => (o.beta === 1 && o.sparse === 'renormalize' ? renormalizeRefusal('gjsd with beta = 1', 'it is KL(q‖p)') : null),
  div: {
    composite(c, { beta }) {
      if (beta === 0) return fklComposite(c);
      if (beta === 1) return rklComposite(c);
      const logM = logAddExpT(add(c.logP, Math.log(beta)), add(c.logQ, Math.log1p(-beta))); // [N, C]
      const klP = sum(mul(c.P, sub(c.logP, logM)), -1);
      const klQ = sum(mul(c.Q, sub(c.logQ, logM)), -1);
      return add(mul(klP, beta), mul(klQ, 1 - beta)); // [N]
    },
    row(r, { beta }, G) {
      if (beta === 0) return fklRow(r, G);
      if (beta === 1) return rklRow(r, G);
      const lb = Math.log(beta), l1b = Math.log1p(-beta);
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (!r.keep[c]) continue;
        const lp = r.logP[c], lq = r.logQ[c];
        const logM = logAddExp(lp + lb, lq + l1b);
        const Q = Math.exp(lq);
        if (lp > -Infinity) L += beta * Math.exp(lp) * (lp - logM);
        L += (1 - beta) * Q * (lq - logM);
        G[c] += (1 - beta) * Q * (lq - logM);
      }
      return L;
    },
  },
});
