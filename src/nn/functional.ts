/**
 * Composite neural-network functions built from the primitives: normalisation, attention, RoPE,
 * losses. Shapes: B batch, T query positions, S key positions, H heads, D head dim, C channels, V vocab.
 */
import { Rng } from '../util/rng.js';
import {
  add, attentionFused, attentionPacked, concat, norm, div, gather, logSoftmax, matmul, mul, narrow, neg, permute, pow, reshape, softmax, sub,
  sum,
  where,
} from '../tensor/ops.js';
import { fmtShape, numel } from '../tensor/shape.js';
import { Tensor, zeros } from '../tensor/tensor.js';

/** Mean over `axes`. */
export function mean(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const s = sum(x, axes, keepdim);
  return div(s, x.size / Math.max(1, s.size));
}

/** LayerNorm over the last axis: (x - μ)/√(σ² + eps)·w + b (biased variance, as PyTorch). Fused kernel. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  return norm(x, weight, bias, eps, false);
}

/** RMSNorm (LLaMA): x / √(mean(x²) + eps) · w. Fused kernel. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return norm(x, weight, null, eps, true);
}

/** LayerNorm composed from primitives: the reference the fused kernel is tested against. */
export function layerNormReference(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  const xc = sub(x, mean(x, -1, true)); // [..., C]
  const variance = mean(mul(xc, xc), -1, true); // [..., 1]
  const y = mul(mul(xc, pow(add(variance, eps), -0.5)), weight);
  return bias ? add(y, bias) : y;
}

/** RMSNorm composed from primitives (reference for the fused kernel). */
export function rmsNormReference(x: Tensor, weight: Tensor, eps: number): Tensor {
  const ms = mean(mul(x, x), -1, true); // [..., 1]
  return mul(mul(x, pow(add(ms, eps), -0.5)), weight);
}

/** x · W + b with W stored [in, out] (GPT-2 Conv1D layout). */
export function linearIO(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const y = matmul(x, w);
  return b ? add(y, b) : y;
}

/**
 * Per-token cross-entropy −log softmax(logits)[target] for logits [N, V] and integer targets [N];
 * targets equal to `ignoreIndex` give 0 and are excluded from `count`.
 * Returns the per-token losses [N] and the number of counted tokens.
 */
export function crossEntropyPerToken(logits: Tensor, targets: Int32Array, ignoreIndex = -100): { losses: Tensor; mask: Tensor; count: number } {
  const V = logits.shape[logits.rank - 1];
  const N = logits.size / V;
  if (targets.length !== N) throw new Error(`cross-entropy: ${targets.length} targets for logits ${fmtShape(logits.shape)}`);
  const logp = reshape(logSoftmax(logits), [N * V, 1]); // [N·V, 1]
  const ids = new Int32Array(N);
  const maskData = new Float32Array(N);
  let count = 0;
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (t === ignoreIndex) continue;
    if (!(t >= 0 && t < V)) throw new RangeError(`cross-entropy: target ${t} at position ${i} outside vocab [0, ${V})`);
    ids[i] = i * V + t;
    maskData[i] = 1;
    count++;
  }
  const mask = new Tensor(maskData, [N]);
  const picked = reshape(gather(logp, ids), [N]); // [N]
  return { losses: mul(neg(picked), mask), mask, count };
}

/** Mean cross-entropy over non-ignored targets (PyTorch F.cross_entropy, reduction="mean"). */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = -100): Tensor {
  const { losses, count } = crossEntropyPerToken(logits, targets, ignoreIndex);
  return div(sum(losses), Math.max(1, count));
}

/** Broadcasts x to `shape` with gradient (summed back in backward). */
export function expand(x: Tensor, shape: number[]): Tensor {
  return add(x, zeros(shape));
}

/**
 * Scaled dot-product attention. q [B, H, T, D]; k, v [B, Hkv, S, D] with H a multiple of Hkv
 * (grouped-query: query head h reads kv head ⌊h / (H/Hkv)⌋). With `causal`, query t (at absolute
 * position S − T + t, as with a KV cache) sees keys 0..S − T + t. Returns [B, H, T, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Tensor {
  return attentionFused(q, k, v, causal, 1 / Math.sqrt(q.shape[3]));
}

/**
 * Attention straight from a fused q/k/v projection qkv [B, T, (H + 2·Hkv)·D] (q heads, then k, then v,
 * as GPT-2's c_attn lays them out) → [B, T, H·D] with heads merged: no split/merge copies.
 */
export function attentionQKV(qkv: Tensor, H: number, Hkv: number, causal: boolean): Tensor {
  const D = qkv.shape[qkv.rank - 1] / (H + 2 * Hkv);
  return attentionPacked(qkv, H, Hkv, causal, 1 / Math.sqrt(D));
}

/** attentionQKV composed as split heads → attention → merge heads (its reference). */
export function attentionQKVReference(qkv: Tensor, H: number, Hkv: number, causal: boolean): Tensor {
  const [B, T, W] = qkv.shape;
  const D = W / (H + 2 * Hkv);
  const heads = (from: number, n: number) => permute(reshape(narrow(qkv, 2, from * D, (from + n) * D), [B, T, n, D]), [0, 2, 1, 3]);
  const y = attention(heads(0, H), heads(H, Hkv), heads(H + Hkv, Hkv), causal); // [B, H, T, D]
  return reshape(permute(y, [0, 2, 1, 3]), [B, T, H * D]);
}

/** Attention composed from primitives (materialises the [B, H, T, S] scores): the fused kernel's reference. */
export function attentionReference(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Tensor {
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  if (H % Hkv !== 0) throw new Error(`attention: ${H} query heads not a multiple of ${Hkv} kv heads`);
  if (H !== Hkv) {
    const rep = H / Hkv;
    k = reshape(expand(reshape(k, [B, Hkv, 1, S, D]), [B, Hkv, rep, S, D]), [B, H, S, D]);
    v = reshape(expand(reshape(v, [B, Hkv, 1, S, D]), [B, Hkv, rep, S, D]), [B, H, S, D]);
  }
  let scores = mul(matmul(q, k, true), 1 / Math.sqrt(D)); // [B, H, T, S]
  if (causal) scores = where(causalMask(T, S), scores, -Infinity);
  return matmul(softmax(scores), v); // [B, H, T, D]
}

const maskCache = new Map<string, Tensor>();
/** [T, S] 1/0 mask: query t may see key s ≤ S − T + t. */
export function causalMask(T: number, S: number): Tensor {
  const key = `${T}x${S}`;
  let m = maskCache.get(key);
  if (!m) {
    const d = new Float32Array(T * S);
    for (let t = 0; t < T; t++) for (let s = 0; s <= S - T + t; s++) d[t * S + s] = 1;
    m = new Tensor(d, [T, S]);
    if (maskCache.size > 64) maskCache.clear();
    maskCache.set(key, m);
  }
  return m;
}

/** cos/sin tables [T, D] for rotary embeddings at positions offset..offset+T−1 (HF rotate_half layout). */
export function ropeTables(T: number, D: number, theta: number, offset = 0): { cos: Tensor; sin: Tensor } {
  const cos = new Float32Array(T * D), sin = new Float32Array(T * D);
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      // inv_freq in float32 like HF: 1 / theta^(2i/D)
      const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / D));
      const ang = Math.fround((t + offset) * invFreq);
      const c = Math.cos(ang), s = Math.sin(ang);
      cos[t * D + i] = c; cos[t * D + i + half] = c;
      sin[t * D + i] = s; sin[t * D + i + half] = s;
    }
  }
  return { cos: new Tensor(cos, [T, D]), sin: new Tensor(sin, [T, D]) };
}

/** Applies RoPE to x [B, H, T, D]: x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁]. */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const D = x.shape[x.rank - 1];
  const rotated = concat([neg(narrow(x, -1, D / 2, D)), narrow(x, -1, 0, D / 2)], -1);
  return add(mul(x, cos), mul(rotated, sin));
}

/** Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (p <= 0) return x;
  const m = new Float32Array(numel(x.shape));
  const scale = 1 / (1 - p);
  for (let i = 0; i < m.length; i++) m[i] = rng.nextFloat() < p ? 0 : scale;
  return mul(x, new Tensor(m, x.shape));
}
