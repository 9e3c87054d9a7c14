/**
 * PLD — Plackett-Luce list-wise distillation (methods.md §2a; reconstructed weights, ListMLE core).
 * The teacher's ranking (the gold label first when `gold_first`, then the teacher's top tokens by
 * descending probability, truncated to k items in total) is scored under the student's Plackett-Luce
 * model with worths exp(zS):
 *
 *   π = [y, top_{k−1}(zT without y)]    (or top_k(zT) without gold_first)
 *   L = Σ_{j=1..K} w_j ( logsumexp_{i ≥ j} zS[π_i] − zS[π_j] ),   w_j = p[π_j]   (teacher probability)
 *
 * The j = 1 term with the gold label is a p_y-weighted CE. Translation invariant in zS; no temperature.
 * Gradient: dL/dzS[π_i] = −w_i + Σ_{j ≤ i} w_j exp(zS[π_i] − lse_j).
 * Dense teacher: p = softmax(zT) over the vocabulary; sparse teacher: p = exp(logprob) of the given
 * ids (the `sparse` option does not apply: PLD only needs the ranking). If the gold token is not among
 * a sparse teacher's ids its weight is 0 (its teacher probability is unknown). Items whose teacher or
 * student logit is -inf are left out of the ranking. Ties in the teacher ranking go to the lower id.
 * A position whose label is -100 uses the teacher ranking alone (it is masked anyway).
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { add, exp, gather, log, mul, reshape, sub, sum, where } from '../../tensor/ops.js';
import { Tensor } from '../../tensor/tensor.js';
import { teacherRowAt } from '../rows.js';
import { IGNORE_INDEX, type TeacherRow } from '../types.js';
import { logAddExp, logSumExp } from './categorical.js';
import { defineObjective, requireTeacher, requireTeacherRow } from './define.js';

const finite = (x: number): boolean => x > -Infinity && x < Infinity;

/** The teacher's ranking of one row and the weights w_j = p[π_j]. */
export function pldRanking(
  zS: ArrayLike<number>, sOff: number, V: number, teacher: TeacherRow, label: number | undefined, k: number, goldFirst: boolean,
): { items: number[]; weights: number[] } {
  const cand: { id: number; key: number; w: number }[] = [];
  const gold = goldFirst && label !== undefined && label !== IGNORE_INDEX ? label : -1;
  let goldW = 0;
  if (teacher.kind === 'dense') {
    const zT = teacher.logits;
    const lse = logSumExp(zT);
    for (let v = 0; v < V; v++) {
      const w = Math.exp(zT[v] - lse);
      if (v === gold) goldW = finite(zT[v]) ? w : 0;
      else if (finite(zT[v]) && finite(zS[sOff + v])) cand.push({ id: v, key: zT[v], w });
    }
  } else {
    for (let j = 0; j < teacher.ids.length; j++) {
      const id = teacher.ids[j], lp = teacher.logprobs[j];
      if (id === gold) goldW = finite(lp) ? Math.exp(lp) : 0;
      else if (finite(lp) && finite(zS[sOff + id])) cand.push({ id, key: lp, w: Math.exp(lp) });
    }
  }
  cand.sort((a, b) => b.key - a.key || a.id - b.id);
  const items: number[] = [], weights: number[] = [];
  if (gold >= 0) { items.push(gold); weights.push(goldW); }
  for (const c of cand) {
    if (items.length >= k) break;
    items.push(c.id);
    weights.push(c.w);
  }
  return { items, weights };
}

const self = { name: 'pld', sparseUnsupported: () => null };

export const plackettLuce = defineObjective({
  name: 'pld',
  summary: "Plackett-Luce list-wise KD over the teacher's top-k ranking (gold label first)",
  schema: z.strictObject({
    k: z.number().int().min(1).default(16).describe('length of the ranking (16..64 is usable at LM vocabularies)'),
    gold_first: z.boolean().default(true).describe('put the gold label first in the ranking (needs labels)'),
  }),
  needsTeacher: true,
  needsLabels: (o) => o.gold_first,
  sparseUnsupported: () => null,
  perToken(inputs, o) {
    const teacher = requireTeacher(self, inputs.teacher, o);
    const { student, labels } = inputs;
    const V = student.shape[student.rank - 1];
    const N = student.size / V;
    if (o.gold_first && !labels) throw new UserError("objective 'pld' with gold_first needs labels (or set gold_first: false)", 2);
    const ranks = Array.from({ length: N }, (_, n) => pldRanking(student.data, n * V, V, teacherRowAt(teacher, n, V), labels?.[n], o.k, o.gold_first));
    const K = Math.max(1, ...ranks.map((r) => r.items.length));
    const flat = new Int32Array(N * K), valid = new Float32Array(N * K), W = new Float32Array(N * K);
    ranks.forEach((r, n) => r.items.forEach((id, j) => {
      flat[n * K + j] = n * V + id;
      valid[n * K + j] = 1;
      W[n * K + j] = r.weights[j];
    }));
    for (let i = 0; i < N * K; i++) if (!valid[i]) flat[i] = Math.floor(i / K) * V + (ranks[Math.floor(i / K)].items[0] ?? 0);
    const S = reshape(gather(reshape(student, [N * V, 1]), flat), [N, K]); // [N, K] student scores in rank order
    // suffix logsumexp: lse_j = log Σ_{i ≥ j, valid} exp(S_i), via an [N, K, K] masked broadcast
    const tri = new Float32Array(N * K * K), mx = new Float32Array(N * K), empty = new Float32Array(N * K);
    for (let n = 0; n < N; n++) for (let j = 0; j < K; j++) {
      let m = -Infinity;
      for (let i = j; i < K; i++) if (valid[n * K + i]) { tri[(n * K + j) * K + i] = 1; m = Math.max(m, S.data[n * K + i]); }
      if (m === -Infinity) { empty[n * K + j] = 1; m = 0; }
      mx[n * K + j] = m;
    }
    const X = where(new Tensor(tri, [N, K, K]), reshape(S, [N, 1, K]), -Infinity); // [N, K, K]
    const M = new Tensor(mx, [N, K]);
    const se = sum(exp(sub(X, reshape(M, [N, K, 1]))), -1); // [N, K]
    const lse = add(log(add(se, new Tensor(empty, [N, K]))), M); // [N, K]
    const validT = new Tensor(valid, [N, K]);
    const terms = where(validT, sub(lse, S), 0);
    return sum(mul(new Tensor(W, [N, K]), terms), -1); // [N]
  },
  rowLossGrad(zS, target, o, gradOut) {
    const teacher = requireTeacherRow(self, target.teacher, o);
    if (o.gold_first && target.label === undefined) throw new UserError("objective 'pld' with gold_first needs labels (or set gold_first: false)", 2);
    const { items, weights } = pldRanking(zS, 0, zS.length, teacher, target.label, o.k, o.gold_first);
    gradOut.fill(0);
    const K = items.length;
    if (K === 0) return 0;
    const lse = new Float64Array(K);
    lse[K - 1] = zS[items[K - 1]];
    for (let j = K - 2; j >= 0; j--) lse[j] = logAddExp(lse[j + 1], zS[items[j]]);
    let L = 0, B = 0;
    for (let i = 0; i < K; i++) {
      const s = zS[items[i]];
      L += weights[i] * (lse[i] - s);
      B = i === 0 ? weights[0] : B * Math.exp(lse[i] - lse[i - 1]) + weights[i];
      gradOut[items[i]] = B * Math.exp(s - lse[i]) - weights[i];
    }
    return L;
  },
});
