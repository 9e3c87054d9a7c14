/** Head split/merge and KV-cache plumbing shared by the model families. */
import { concat, permute, reshape } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KVCache } from './base.js';

/** [B, T, H·D] → [B, H, T, D] */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, T, C] = x.shape;
  return permute(reshape(x, [B, T, heads, C / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, D] → [B, T, H·D] */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, D] = x.shape;
  return reshape(permute(x, [0, 2, 1, 3]), [B, T, H * D]);
}

/** Appends new keys/values [B, Hkv, T, D] to layer `i` of the cache and returns the full ones. */
export function appendCache(cache: KVCache | undefined, i: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
  if (!cache) return { k, v };
  const slot = cache.layers[i];
  const fk = slot.k ? concat([slot.k, k], 2) : k;
  const fv = slot.v ? concat([slot.v, v], 2) : v;
  slot.k = fk;
  slot.v = fv;
  return { k: fk, v: fv };
}
