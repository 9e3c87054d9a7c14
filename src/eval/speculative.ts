/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023) with KV-cache models: a draft model
 * (the student) proposes γ tokens autoregressively, the target model (the teacher) scores all of them
 * in one forward call, and each draft x_i is accepted with probability min(1, p_i(x_i) / q_i(x_i)); at
 * the first rejection a replacement is drawn from norm(max(0, p_i − q_i)), and when all γ are accepted
 * a bonus token is drawn from p_{γ+1}. The emitted tokens are distributed exactly as sampling from the
 * target alone (tested statistically), so the acceptance rate measures how useful the student is as a
 * drafter: E[accept at a position] = Σ min(p, q) = 1 − TVD(p, q) (DistillSpec).
 *
 * Cache bookkeeping: for each model, `cached ≤ seq.length − 1` positions of the sequence are in its KV
 * cache; the rest (`pending`) is fed at the next call. After verification both caches are cut back to
 * the accepted prefix, so rejected drafts never leak into later positions.
 */
import type { CausalLM, KVCache } from '../models/base.js';
import { narrow } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { acceptanceProbability, expectedTokensPerCall, probsRow } from './metrics.js';

export interface SpeculativeOptions {
  /** draft tokens per target call, γ ≥ 1 (fewer near the token budget or the position limit) */
  gamma: number;
  maxNewTokens: number;
  /** sampling temperature of both models (default 1); 0 = greedy (point masses at the argmax) */
  temperature?: number;
  /** stop after emitting this token */
  eosId?: number;
  rng?: Rng;
}

/** Counters of one or more speculative runs. */
export interface SpeculativeStats {
  /** tokens emitted */
  newTokens: number;
  /** target (teacher) forward calls, the expensive ones */
  targetCalls: number;
  /** draft (student) forward calls */
  draftCalls: number;
  /** draft tokens proposed */
  drafted: number;
  /** draft tokens that reached the accept/reject test (drafts after a rejection are never tested) */
  tested: number;
  accepted: number;
  /** Σ over tested positions of the exact acceptance probability Σ min(p, q) = 1 − TVD */
  expectedAccepted: number;
  /** Σ α(1 − α) over tested positions: the variance of `accepted` around `expectedAccepted` */
  acceptedVariance: number;
}

export function emptyStats(): SpeculativeStats {
  return { newTokens: 0, targetCalls: 0, draftCalls: 0, drafted: 0, tested: 0, accepted: 0, expectedAccepted: 0, acceptedVariance: 0 };
}

function addStats(into: SpeculativeStats, s: SpeculativeStats): void {
  for (const k of Object.keys(into) as (keyof SpeculativeStats)[]) into[k] += s[k];
}

/** Drops every cached position from `length` on (the KV tensors are [B, H, S, D]). */
export function truncateCache(cache: KVCache, length: number): void {
  if (length > cache.length || length < 0) throw new RangeError(`truncateCache: ${length} outside [0, ${cache.length}]`);
  if (length === cache.length) return;
  noGrad(() => {
    for (const slot of cache.layers) {
      slot.k = slot.k && length > 0 ? narrow(slot.k, 2, 0, length) : null;
      slot.v = slot.v && length > 0 ? narrow(slot.v, 2, 0, length) : null;
    }
  });
  cache.length = length;
}

/** Draws an index from an unnormalised non-negative weight vector. */
function sampleFrom(w: Float64Array, rng: Rng): number {
  let z = 0;
  for (let j = 0; j < w.length; j++) z += w[j];
  let u = rng.nextFloat() * z;
  let last = 0;
  for (let j = 0; j < w.length; j++) {
    if (w[j] <= 0) continue;
    last = j;
    u -= w[j];
    if (u < 0) return j;
  }
  return last; // float rounding left u ≥ 0: the last token with mass
}

/** One model with its cache and how much of the sequence the cache holds. */
class Decoder {
  readonly cache: KVCache;
  cached = 0;
  constructor(readonly model: CausalLM) { this.cache = model.newCache(); }
  /** Feeds seq[cached..] followed by `extra`; returns the logits rows [T, V] of the fed positions. */
  feed(seq: readonly number[], extra: readonly number[]): Float32Array {
    const ids = Int32Array.from([...seq.slice(this.cached), ...extra]);
    const logits = this.model.forward(ids, 1, ids.length, { cache: this.cache }).logits.data; // [1, T, V]
    this.cached += ids.length;
    return logits;
  }
  rollback(length: number): void {
    if (length < this.cached) {
      truncateCache(this.cache, length);
      this.cached = length;
    }
  }
}

/**
 * Continues `prompt` with speculative sampling: `draft` proposes, `target` verifies. Returns the new
 * tokens (distributed as `target`'s own samples at `temperature`) and the acceptance counters.
 * Both models must share the token ids (same vocabulary size).
 */
export function speculativeGenerate(draft: CausalLM, target: CausalLM, prompt: readonly number[], opts: SpeculativeOptions): { tokens: number[]; stats: SpeculativeStats } {
  if (prompt.length === 0) throw new Error('speculativeGenerate: empty prompt (give at least one token)');
  if (!(Number.isInteger(opts.gamma) && opts.gamma >= 1)) throw new RangeError(`speculativeGenerate: gamma must be an integer >= 1, got ${opts.gamma}`);
  if (draft.vocabSize !== target.vocabSize) throw new Error(`speculativeGenerate: draft vocab ${draft.vocabSize} ≠ target vocab ${target.vocabSize}`);
  const V = target.vocabSize;
  const T = opts.temperature ?? 1;
  const rng = opts.rng ?? new Rng(0);
  const stats = emptyStats();
  const maxLen = Math.min(draft.maxPositions, target.maxPositions);
  const budget = Math.max(0, Math.min(opts.maxNewTokens, maxLen - prompt.length));
  const seq = [...prompt];
  const out: number[] = [];
  const flags = [draft.training, target.training];
  draft.eval();
  target.eval();
  try {
    noGrad(() => {
      const d = new Decoder(draft), t = new Decoder(target);
      while (out.length < budget) {
        const n = seq.length;
        // the target sees positions up to n + γ − 1; the last emitted token must stay within the budget
        const gamma = Math.max(0, Math.min(opts.gamma, budget - out.length - 1, maxLen - n));
        // 1. draft γ tokens; q[i] is the draft distribution of drafts[i]
        const drafts: number[] = [], q: Float64Array[] = [];
        for (let i = 0; i < gamma; i++) {
          const rows = d.feed(i === 0 ? seq : [], i === 0 ? [] : [drafts[i - 1]]);
          stats.draftCalls++;
          const qi = probsRow(rows.subarray(rows.length - V), T);
          q.push(qi);
          drafts.push(sampleFrom(qi, rng));
        }
        stats.drafted += gamma;
        // 2. one target call scores the pending tokens and every draft: rows give p_1 … p_{γ+1}
        const pending = n - t.cached;
        const rows = t.feed(seq, drafts); // [pending + γ, V]
        stats.targetCalls++;
        const p = (i: number): Float64Array => probsRow(rows.subarray((pending - 1 + i) * V, (pending + i) * V), T);
        // 3. accept/reject left to right
        const emitted: number[] = [];
        let accepted = 0;
        for (; accepted < gamma; accepted++) {
          const pi = p(accepted), qi = q[accepted], x = drafts[accepted];
          const alpha = acceptanceProbability(pi, qi);
          stats.tested++;
          stats.expectedAccepted += alpha;
          stats.acceptedVariance += alpha * (1 - alpha);
          if (rng.nextFloat() * qi[x] < pi[x]) { // r < p(x)/q(x), without dividing
            emitted.push(x);
            stats.accepted++;
            continue;
          }
          const residual = new Float64Array(V);
          let mass = 0;
          for (let j = 0; j < V; j++) { residual[j] = Math.max(0, pi[j] - qi[j]); mass += residual[j]; }
          emitted.push(sampleFrom(mass > 0 ? residual : pi, rng));
          break;
        }
        if (accepted === gamma) emitted.push(sampleFrom(p(gamma), rng)); // all accepted: a bonus token from p_{γ+1}
        // 4. keep the accepted prefix in both caches; the newest token is pending for both
        t.rollback(n + accepted);
        d.rollback(n + accepted);
        for (const x of emitted) {
          seq.push(x);
          out.push(x);
          if (x === opts.eosId) break;
        }
        if (out.length && out[out.length - 1] === opts.eosId) break;
      }
    });
  } finally {
    draft.train(flags[0]);
    target.train(flags[1]);
  }
  stats.newTokens = out.length;
  return { tokens: out, stats };
}

/** Aggregate speculative-decoding measurements over several prompts. */
export interface SpeculativeReport extends SpeculativeStats {
  gamma: number;
  temperature: number;
  prompts: number;
  /** measured acceptance rate: accepted / tested */
  acceptanceRate: number;
  /** mean over the tested positions of Σ min(p, q) = 1 − TVD: what the acceptance rate estimates */
  expectedAcceptance: number;
  /** standard error of the measured rate around the expected one */
  acceptanceStdErr: number;
  /** emitted tokens per target call (the speed-up bound when drafting is free) */
  tokensPerTargetCall: number;
  /** (1 − α^{γ+1}) / (1 − α) at the measured α: Leviathan et al.'s prediction of tokensPerTargetCall */
  predictedTokensPerTargetCall: number;
}

/** Runs `speculativeGenerate` on every prompt (one seeded generator for all) and aggregates. */
export function measureSpeculative(
  draft: CausalLM, target: CausalLM, prompts: readonly (readonly number[])[],
  opts: SpeculativeOptions & { onPrompt?: (done: number) => void },
): SpeculativeReport {
  const rng = opts.rng ?? new Rng(0);
  const total = emptyStats();
  prompts.forEach((prompt, i) => {
    addStats(total, speculativeGenerate(draft, target, prompt, { ...opts, rng }).stats);
    opts.onPrompt?.(i + 1);
  });
  const acceptanceRate = total.tested ? total.accepted / total.tested : NaN;
  return {
    gamma: opts.gamma,
    temperature: opts.temperature ?? 1,
    prompts: prompts.length,
    ...total,
    acceptanceRate,
    expectedAcceptance: total.tested ? total.expectedAccepted / total.tested : NaN,
    acceptanceStdErr: total.tested ? Math.sqrt(total.acceptedVariance) / total.tested : NaN,
    tokensPerTargetCall: total.targetCalls ? total.newTokens / total.targetCalls : NaN,
    predictedTokensPerTargetCall: expectedTokensPerCall(acceptanceRate, opts.gamma),
  };
}
