/**
 * Autoregressive sampling with a KV cache: greedy (temperature 0), temperature, top-k and top-p
 * (nucleus) filtering. Runs without gradients; seeded for reproducibility.
 */
import { noGrad } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import type { CausalLM } from './base.js';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 = greedy (argmax) */
  temperature?: number;
  /** keep only the k most likely tokens (0 = off) */
  topK?: number;
  /** keep the smallest set of tokens whose probability reaches p (1 = off) */
  topP?: number;
  /** stop after emitting this token */
  eosId?: number;
  rng?: Rng;
}

/** Picks the next token from one row of logits [V] under the sampling options. */
export function sampleToken(logits: Float32Array, opts: SampleOptions, rng: Rng): number {
  const V = logits.length;
  const temperature = opts.temperature ?? 1;
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  const topK = opts.topK ?? 0;
  if (topK > 0 && topK < V) order = order.slice(0, topK);
  const mx = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - mx) / temperature));
  let z = probs.reduce((a, b) => a + b, 0);
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    let acc = 0, keep = 0;
    while (keep < probs.length && acc < topP * z) acc += probs[keep++];
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    z = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.nextFloat() * z;
  for (let j = 0; j < probs.length; j++) {
    u -= probs[j];
    if (u < 0) return order[j];
  }
  return order[order.length - 1];
}

/**
 * Continues `prompt` (token ids) by up to `maxNewTokens` tokens, one sequence, using the KV cache
 * (each step feeds only the newest token). Returns the new tokens only.
 */
export function generate(model: CausalLM, prompt: readonly number[], opts: SampleOptions): number[] {
  if (prompt.length === 0) throw new Error('generate: empty prompt (give at least one token)');
  const rng = opts.rng ?? new Rng(0);
  const wasTraining = model.training;
  model.eval();
  const out: number[] = [];
  try {
    noGrad(() => {
      const cache = model.newCache();
      const budget = Math.min(opts.maxNewTokens, model.maxPositions - prompt.length);
      let feed = Int32Array.from(prompt);
      for (let i = 0; i < budget; i++) {
        const { logits } = model.forward(feed, 1, feed.length, { cache }); // [1, T, V]
        const V = model.vocabSize;
        const next = sampleToken(logits.data.subarray(logits.size - V), opts, rng);
        out.push(next);
        if (next === opts.eosId) break;
        feed = Int32Array.of(next);
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/**
 * Batched sampling for prompts of one common length P: prompts [B·P] → continuations [B][≤ maxNewTokens]
 * (each stops after eos). One KV cache for the whole batch; each step feeds [B, 1].
 */
export function generateBatch(model: CausalLM, prompts: Int32Array, batch: number, opts: SampleOptions): number[][] {
  const P = prompts.length / batch;
  if (!Number.isInteger(P) || P < 1) throw new Error(`generateBatch: ${prompts.length} prompt ids for batch ${batch}`);
  const rng = opts.rng ?? new Rng(0);
  const V = model.vocabSize;
  const outs: number[][] = Array.from({ length: batch }, () => []);
  const done = new Array<boolean>(batch).fill(false);
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      const cache = model.newCache();
      const budget = Math.min(opts.maxNewTokens, model.maxPositions - P);
      let feed = prompts;
      let T = P;
      for (let i = 0; i < budget && done.some((d) => !d); i++) {
        const logits = model.forward(feed, batch, T, { cache }).logits.data; // [B, T, V]
        const next = new Int32Array(batch);
        for (let b = 0; b < batch; b++) {
          const row = logits.subarray((b * T + T - 1) * V, (b * T + T) * V);
          next[b] = sampleToken(row, opts, rng);
          if (!done[b]) {
            outs[b].push(next[b]);
            if (next[b] === opts.eosId) done[b] = true;
          }
        }
        feed = next;
        T = 1;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return outs;
}
