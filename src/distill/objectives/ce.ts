/**
 * Cross-entropy against the gold labels: l = −log softmax(zS)[y], 0 where y = -100 (those positions
 * are also masked out by reduce.ts). dl/dzS = softmax(zS) − onehot(y). No temperature (the hard-label
 * term of Hinton KD is at τ = 1). Needs no teacher.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { crossEntropyPerToken } from '../../nn/functional.js';
import { reshape, where } from '../../tensor/ops.js';
import { IGNORE_INDEX } from '../types.js';
import { logSumExp } from './categorical.js';
import { defineObjective } from './define.js';

function requireLabels(labels: Int32Array | undefined, N: number): Int32Array {
  if (!labels) throw new UserError("objective 'ce' needs labels (gold next tokens, -100 to ignore)", 2);
  if (labels.length !== N) throw new UserError(`labels have ${labels.length} entries, expected N = ${N}`, 2);
  return labels;
}

export const crossEntropy = defineObjective({
  name: 'ce',
  summary: 'cross-entropy with the gold labels (labels == -100 ignored)',
  schema: z.strictObject({}),
  needsTeacher: false,
  needsLabels: () => true,
  sparseUnsupported: () => null,
  perToken({ student, labels }) {
    const V = student.shape[student.rank - 1];
    const N = student.size / V;
    const y = requireLabels(labels, N);
    for (let i = 0; i < N; i++) {
      if (y[i] !== IGNORE_INDEX && !(y[i] >= 0 && y[i] < V)) throw new UserError(`labels[${i}] = ${y[i]} is outside the vocabulary [0, ${V}) and is not -100`, 2);
    }
    const { losses, mask } = crossEntropyPerToken(reshape(student, [N, V]), y, IGNORE_INDEX);
    // select, not multiply: an ignored row whose logit 0 is -inf would otherwise give 0·inf = NaN
    return where(mask, losses, 0); // [N]
  },
  rowLossGrad(zS, { label }, _o, gradOut) {
    if (label === undefined) throw new UserError("objective 'ce' needs labels (gold next tokens, -100 to ignore)", 2);
    const V = zS.length;
    if (label === IGNORE_INDEX) {
      gradOut.fill(0);
      return 0;
    }
    if (!(label >= 0 && label < V)) throw new UserError(`label ${label} is outside the vocabulary [0, ${V}) and is not -100`, 2);
    const lse = logSumExp(zS);
    for (let v = 0; v < V; v++) gradOut[v] = Math.exp(zS[v] - lse);
    gradOut[label] -= 1;
    return lse - zS[label];
  },
});
