/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), matching torch.optim.AdamW:
 *   p ← p − lr·wd·p;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
 *   p ← p − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + eps)
 * Parameters with ndim ≥ 2 (matrices, embeddings) decay; biases and norm gains do not (nanoGPT/HF).
 */
import { getBackend, type Tensor } from '../tensor/tensor.js';

export interface AdamWOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export const defaultAdamW: AdamWOptions = { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 };

export class AdamW {
  readonly params: Tensor[];
  readonly names: string[];
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  /** number of updates taken (t in the bias corrections) */
  step = 0;
  constructor(named: Map<string, Tensor>, readonly opts: AdamWOptions = defaultAdamW) {
    this.names = [...named.keys()];
    this.params = [...named.values()];
    this.m = this.params.map((p) => new Float32Array(p.size));
    this.v = this.params.map((p) => new Float32Array(p.size));
  }

  /** Applies one update with learning rate `lr` using each parameter's `.grad` (missing grad = 0). */
  update(lr: number): void {
    this.step++;
    const [b1, b2] = this.opts.betas;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const eps = this.opts.eps;
    const be = getBackend();
    this.params.forEach((p, i) => {
      const decay = p.rank >= 2 ? 1 - lr * this.opts.weightDecay : 1;
      be.adamw(p.data, p.grad?.data ?? null, this.m[i], this.v[i], { beta1: b1, beta2: b2, eps, decay, stepSize, sqrtBc2 });
    });
  }
}

/**
 * Scales all gradients so their global L2 norm is at most `maxNorm` (torch clip_grad_norm_:
 * factor min(1, maxNorm / (norm + 1e-6))). Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const backend = getBackend();
  let sq = 0;
  for (const p of params) if (p.grad) sq += backend.sumSquares(p.grad.data);
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && Number.isFinite(maxNorm)) {
    const f = Float32Array.of(maxNorm / (norm + 1e-6));
    if (f[0] < 1) {
      for (const p of params) {
        const g = p.grad?.data;
        if (g) backend.binary('mul', g, [1], f, [0], g, [g.length]); // in place: each element read once, then written
      }
    }
  }
  return norm;
}
