/**
 * Total variation distance [V: distillm/losses.py `tv_distance`; methods.md §2a]:
 *   TVD = ½ Σ |p − q| ∈ [0, 1],  subgradient dL/dlog q_j = ½ q_j sign(q_j − p_j) (then the softmax rule) [D].
 * 1 − TVD = Σ min(p, q) is the speculative-decoding acceptance rate. No τ² by default (the loss is a
 * bounded distance; `tau_squared: true` restores Hinton scaling). With a 'renormalize' sparse teacher
 * this is DistillKit's ½(Σ_K |p̂ − q| + r_S).
 */
import { z } from 'zod';
import { abs, mul, sub, sum } from '../../tensor/ops.js';
import { divergenceObjective, sparseOption, tauSquaredOption, temperatureOption } from './define.js';

export const totalVariation = divergenceObjective({
  name: 'tvd',
  summary: 'total variation distance ½Σ|p−q|',
  schema: z.strictObject({ temperature: temperatureOption, tau_squared: tauSquaredOption(false), sparse: sparseOption }),
  div: {
    composite: (c) => mul(sum(abs(sub(c.P, c.Q)), -1), 0.5),
    row(r, _o, G) {
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (!r.keep[c]) continue;
        const P = Math.exp(r.logP[c]), Q = Math.exp(r.logQ[c]);
        L += 0.5 * Math.abs(P - Q);
        G[c] += 0.5 * Math.sign(Q - P) * Q;
      }
      return L;
    },
  },
});
