/**
 * What every causal LM offers the trainer, the distiller and the sampler, whatever its family.
 */
import { Module } from '../nn/module.js';
import { matmul } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import type { ModelConfig } from './config.js';

/** Per-layer cached keys/values [B, Hkv, S, D] for incremental decoding. */
export interface KVCache {
  layers: { k: Tensor | null; v: Tensor | null }[];
  /** number of positions already cached (S) */
  length: number;
}

export interface ForwardOptions {
  /** extend this cache with the new positions (generation); positions start at cache.length */
  cache?: KVCache;
  /** also return the residual stream: embeddings output, then each block's output (last one normed), as HF */
  outputHiddenStates?: boolean;
}

export interface HiddenOutput {
  /** final (normed) hidden states [B, T, C], the input of the LM head */
  hidden: Tensor;
  /** numLayers + 1 tensors [B, T, C] when requested */
  hiddenStates?: Tensor[];
}

export interface ForwardOutput {
  /** [B, T, V] */
  logits: Tensor;
  /** numLayers + 1 tensors [B, T, C] when requested */
  hiddenStates?: Tensor[];
}

export abstract class CausalLM extends Module {
  abstract readonly config: ModelConfig;
  abstract readonly vocabSize: number;
  abstract readonly maxPositions: number;
  abstract readonly numLayers: number;
  /** dropout masks draw from this (saved in checkpoints so a resumed run replays exactly) */
  dropoutRng = new Rng(0);

  /** Everything up to the LM head. ids: B·T token ids, row-major [B, T]. */
  abstract forwardHidden(ids: Int32Array, batch: number, seqLen: number, opts?: ForwardOptions): HiddenOutput;

  /** LM head weight [V, C] (logits = hidden · Wᵀ); tied models return the embedding table. */
  abstract lmHeadWeight(): Tensor;

  /** Logits [B, T, V] (and optionally the residual stream). ids: B·T token ids, row-major [B, T]. */
  forward(ids: Int32Array, batch: number, seqLen: number, opts: ForwardOptions = {}): ForwardOutput {
    const { hidden, hiddenStates } = this.forwardHidden(ids, batch, seqLen, opts);
    const logits = matmul(hidden, this.lmHeadWeight(), true); // [B, T, V]
    return hiddenStates ? { logits, hiddenStates } : { logits };
  }

  /** HF tensor names that alias another parameter (tied embeddings): [alias, source]. */
  abstract tiedAliases(): [string, string][];

  newCache(): KVCache {
    return { layers: Array.from({ length: this.numLayers }, () => ({ k: null, v: null })), length: 0 };
  }
}

/** Validates ids against the vocabulary and sequence limits (a user's data can be wrong). */
export function checkIds(ids: Int32Array, batch: number, seqLen: number, vocab: number, maxPos: number, offset: number): void {
  if (ids.length !== batch * seqLen) throw new Error(`forward: got ${ids.length} ids for batch ${batch} × seqLen ${seqLen}`);
  if (offset + seqLen > maxPos) throw new RangeError(`sequence of ${offset + seqLen} positions exceeds the model's maximum ${maxPos}`);
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) throw new RangeError(`token id ${ids[i]} at position ${i} outside vocab [0, ${vocab})`);
  }
}
