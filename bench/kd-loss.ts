/**
 * The bench's distillation objective, two ways. `kdLoss` is the plain composition on full [N, V] logits,
 * exactly what bench/peer_kd.py does in PyTorch. `kdLossFused` is the same objective through the
 * library's fused chunked head + loss (src/distill/fused-loss.ts, what `lmdistill distill` runs by
 * default): neither side's logits ever exist for more than a chunk of rows. Both have the Trainer's
 * `LossFn` contract (sum of per-token losses); test/bench/kd-loss.test.ts checks they agree.
 *
 * Per token:  (1 − α)·CE(y, softmax(z_S)) + α·τ²·KL(p ‖ q),   p = softmax(z_T/τ) (teacher, no grad),
 * q = softmax(z_S/τ) (Hinton: hard-label CE at temperature 1).
 * bench/peer_kd.py computes exactly the same composition (one log-softmax of the student shared by both
 * terms, teacher under no-grad), so both sides do the same work.
 */
import { fusedMixtureLoss, Mixture } from '../src/distill/index.js';
import type { CausalLM } from '../src/models/base.js';
import { add, exp, gather, logSoftmax, mul, neg, reshape, sub, sum } from '../src/tensor/ops.js';
import { noGrad, scoped, type Tensor } from '../src/tensor/tensor.js';
import type { LossFn } from '../src/train/trainer.js';

export interface KdWeights {
  /** weight of the KL term; 1 − alpha goes to cross-entropy */
  alpha: number;
  /** softmax temperature of both distributions */
  tau: number;
}

/**
 * Per-token KD losses [N] from student logits zs [N, V] (with grad), teacher logits zt [N, V] (no grad)
 * and targets [N] (all counted: the bench's random tokens have no ignored positions).
 */
export function kdTokenLosses(zs: Tensor, zt: Tensor, targets: Int32Array, w: KdWeights): Tensor {
  const [N, V] = zs.shape;
  const logq = logSoftmax(zs); // [N, V]
  // the KL compares the softened distributions; at τ = 1 (the bench cases) they are logq itself
  const logqTau = w.tau === 1 ? logq : logSoftmax(mul(zs, 1 / w.tau));
  const { logp, p } = noGrad(() => {
    const lp = logSoftmax(w.tau === 1 ? zt : mul(zt, 1 / w.tau)); // [N, V]
    return { logp: lp, p: exp(lp) };
  });
  const kl = sum(mul(p, sub(logp, logqTau)), -1); // [N]
  const flat = Int32Array.from(targets, (t, i) => i * V + t);
  const ce = neg(reshape(gather(reshape(logq, [N * V, 1]), flat), [N])); // [N], hard labels at τ = 1
  return add(mul(ce, 1 - w.alpha), mul(kl, w.alpha * w.tau * w.tau)); // [N]
}

/** A Trainer loss: teacher forward under noGrad, student forward, summed per-token KD losses. */
export function kdLoss(teacher: CausalLM, w: KdWeights): LossFn {
  return (student, batch) => {
    const { batchSize: B, seqLen: T } = batch;
    const V = student.vocabSize;
    const zt = noGrad(() => reshape(teacher.forward(batch.input, B, T).logits, [B * T, V])); // [N, V]
    const zs = reshape(student.forward(batch.input, B, T).logits, [B * T, V]); // [N, V]
    return { sum: sum(kdTokenLosses(zs, zt, batch.target, w)) };
  };
}

/**
 * The same loss through the library's fused chunked path: the teacher's final hidden states under noGrad,
 * then per chunk of `chunkRows` positions both heads' logits, the (1 − α)·CE + α·FKL(τ) row kernels and the
 * gradients w.r.t. the student's hidden states and head.
 */
export function kdLossFused(teacher: CausalLM, w: KdWeights, chunkRows = 256): LossFn {
  const mixture = Mixture.parse([{ objective: 'ce', weight: 1 - w.alpha }, { objective: 'fkl', weight: w.alpha, temperature: w.tau }], 'bench KD loss');
  return (student, batch) => {
    const { batchSize: B, seqLen: T } = batch;
    const N = B * T;
    const th = scoped(() => noGrad(() => teacher.forwardHidden(batch.input, B, T).hidden), (h) => [h]); // [B, T, C_T]
    const tW = teacher.lmHeadWeight();
    const { hidden } = student.forwardHidden(batch.input, B, T); // [B, T, C]
    const { loss } = fusedMixtureLoss({
      hidden: reshape(hidden, [N, -1]), head: student.lmHeadWeight(), mixture, labels: batch.target,
      mask: new Float32Array(N).fill(1), teacherHead: { h: th.data, W: tW.data, C: tW.shape[1] }, chunkRows,
    });
    return { sum: loss };
  };
}
