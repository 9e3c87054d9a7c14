/**
 * Total variation distance [V: distillm/losses.py `tv_distance`; methods.md §2a]:
 *   TVD = ½ Σ |p − q| ∈ [0, 1],  subgradient dL/dlog q_j = ½ q_j sign(q_j − p_j) (then the softmax rule) [D].
 * 1 − TVD = Σ min(p, q) is the speculative-decoding acceptance rate. No τ² by default (the loss is a
 * bounded distance; `tau_squared: true` restores Hinton scaling). With a 'renormalize' sparse teacher
 * this is DistillKit's ½(Σ_K |p̂ − q| + r_S).
 * Subgradient at ties: where |p − q| ≤ 1e-6 (p + q) — equal up to float rounding, e.g. a student that
 * already matches a teacher given as rounded log-probs — the zero subgradient is taken, so rounding
 * noise produces no gradient (the loss value is unchanged).
 */
import { z } from 'zod';
import { abs, mul, sub, sum, where } from '../../tensor/ops.js';
import { Tensor } from '../../tensor/tensor.js';
import { divergenceObjective, sparseOption, tauSquaredOption, temperatureOption } from './define.js';

/** relative tolerance under which p and q count as tied (zero subgradient) */
const TIE = 1e-6;

export const totalVariation = divergenceObjective({
  name: 'tvd',
  summary: 'total variation distance ½Σ|p−q|',
  schema: z.strictObject({ temperature: temperatureOption, tau_squared: tauSquaredOption(false), sparse: sparseOption }),
  div: {
    composite(c) {
      const gap = abs(sub(c.P, c.Q)); // [N, C]
      const tie = new Float32Array(gap.size);
      for (let i = 0; i < tie.length; i++) tie[i] = gap.data[i] <= TIE * (c.P.data[i] + c.Q.data[i]) ? 1 : 0;
      const g = where(new Tensor(tie, gap.shape), new Tensor(gap.data.slice(), gap.shape), gap); // no gradient at ties
      return mul(sum(g, -1), 0.5);
    },
    row(r, _o, G) {
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (!r.keep[c]) continue;
        const P = Math.exp(r.logP[c]), Q = Math.exp(r.logQ[c]);
        L += 0.5 * Math.abs(P - Q);
        if (Math.abs(P - Q) > TIE * (P + Q)) G[c] += 0.5 * Math.sign(Q - P) * Q;
      }
      return L;
    },
  },
});
