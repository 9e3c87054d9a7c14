/**
 * Step-wise decoding with per-token log-probabilities, built for a server: the prompt is run in
 * chunks through the KV cache and every generated token is one small forward, with a yield to the
 * event loop in between, so one long request never freezes the others (or the health check).
 *
 * Log-probabilities are those of the model's raw next-token distribution (log-softmax of the logits
 * over the full model vocabulary, float64 accumulation), before temperature / top-k / top-p — the
 * teacher's distribution that distillation wants, and what LocalTeacher reports. Sampling uses
 * `sampleToken` (src/models/generate.ts) on the same logits.
 */
import type { CausalLM, KVCache } from '../models/base.js';
import { sampleToken } from '../models/generate.js';
import { noGrad } from '../tensor/tensor.js';
import type { Rng } from '../util/rng.js';

/** One candidate token with its natural-log probability. */
export interface TopEntry {
  id: number;
  logprob: number;
}

/** A chosen token (prompt or generated), its logprob and the `k` most likely tokens at its position. */
export interface TokenLogprob extends TopEntry {
  /** sorted by descending logprob, ties by ascending id (as `topkFromLogits`) */
  top: TopEntry[];
}

/** log Σ exp(row) in float64. */
export function logSumExp(row: Float32Array): number {
  let mx = -Infinity;
  for (let j = 0; j < row.length; j++) if (row[j] > mx) mx = row[j];
  if (mx === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < row.length; j++) s += Math.exp(row[j] - mx);
  return mx + Math.log(s);
}

/** The `k` largest entries of `row` as logprobs (`row[j] − lse`), descending, ties by smaller id. O(V·k). */
export function topEntries(row: Float32Array, k: number, lse: number): TopEntry[] {
  const kk = Math.min(k, row.length);
  if (kk <= 0) return [];
  const ids: number[] = [];
  for (let j = 0; j < row.length; j++) {
    const v = row[j];
    if (ids.length === kk && !(v > row[ids[kk - 1]!]!)) continue; // equal keeps the smaller id already held
    let pos = ids.length === kk ? kk - 1 : ids.length;
    while (pos > 0 && v > row[ids[pos - 1]!]!) pos--;
    if (ids.length === kk) ids.pop();
    ids.splice(pos, 0, j);
  }
  return ids.map((id) => ({ id, logprob: row[id]! - lse }));
}

/** Entry for token `id` at a position whose logits are `row`. */
function entryFor(row: Float32Array, id: number, k: number): TokenLogprob {
  const lse = logSumExp(row);
  return { id, logprob: row[id]! - lse, top: topEntries(row, k, lse) };
}

/** Lets queued I/O (other requests, health checks, disconnect notices) run between forwards. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}

/** The model state after reading a prompt. */
export interface Prefilled {
  cache: KVCache;
  /** [V] logits for the token after the prompt */
  last: Float32Array;
  promptLength: number;
  /** per prompt position: null for the first token (nothing conditions it), else its entry; only when asked */
  promptLogprobs: (TokenLogprob | null)[] | null;
}

export interface PrefillOptions {
  /** prompt tokens per forward */
  chunk: number;
  /** compute prompt logprobs with this many top entries (null = do not) */
  echoTopK: number | null;
  signal?: AbortSignal;
}

/**
 * Runs `prompt` (≥ 1 token, ≤ maxPositions) through the model in chunks of `opts.chunk` tokens,
 * yielding to the event loop between chunks. Assumes `model` is in eval mode (the server sets it once).
 */
export async function prefill(model: CausalLM, prompt: Int32Array, opts: PrefillOptions): Promise<Prefilled> {
  const T = prompt.length, V = model.vocabSize;
  if (T === 0) throw new Error('prefill: empty prompt');
  const cache = model.newCache();
  const entries: (TokenLogprob | null)[] | null = opts.echoTopK === null ? null : [null];
  let last = new Float32Array(0);
  for (let s = 0; s < T; s += opts.chunk) {
    if (s > 0) {
      await yieldToEventLoop();
      throwIfAborted(opts.signal);
    }
    const e = Math.min(T, s + opts.chunk);
    const logits = noGrad(() => model.forward(prompt.subarray(s, e), 1, e - s, { cache }).logits.data); // [1, e−s, V]
    if (entries) {
      // row r predicts prompt[s + r + 1]
      for (let p = s; p < e && p + 1 < T; p++) entries.push(entryFor(logits.subarray((p - s) * V, (p - s + 1) * V), prompt[p + 1]!, opts.echoTopK!));
    }
    last = logits.slice((e - s - 1) * V, (e - s) * V);
  }
  return { cache, last, promptLength: T, promptLogprobs: entries };
}

/** An independent copy of a cache: extending one never changes the other (layers are replaced, not mutated). */
export function forkCache(cache: KVCache): KVCache {
  return { length: cache.length, layers: cache.layers.map((l) => ({ k: l.k, v: l.v })) };
}

export interface DecodeOptions {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature: number;
  topP: number;
  /** 0 = off */
  topK: number;
  rng: Rng;
  /** top entries reported per generated token */
  topLogprobs: number;
  /** stop after yielding this token */
  eosId?: number;
  /** ids the sampler may pick (false = never, e.g. padded ids with no token); logprobs still cover all */
  allowed?: Uint8Array;
  signal?: AbortSignal;
}

/**
 * Generates from a prefilled state (its cache is extended in place: fork it first to reuse a prompt),
 * yielding each new token with its logprob entry. The consumer may stop early (`return()`), e.g. on a
 * stop string. The context holds `maxPositions` tokens; the last generated token is never fed back, so
 * a prompt of maxPositions tokens can still produce one token (what a top-k teacher request needs).
 */
export async function* decodeFrom(model: CausalLM, state: Prefilled, opts: DecodeOptions): AsyncGenerator<TokenLogprob, void, undefined> {
  const budget = Math.min(opts.maxNewTokens, model.maxPositions - state.promptLength + 1);
  let row = state.last;
  for (let i = 0; i < budget; i++) {
    let samplable = row;
    if (opts.allowed) {
      samplable = row.slice();
      for (let j = 0; j < samplable.length; j++) if (!opts.allowed[j]) samplable[j] = -Infinity;
    }
    const id = sampleToken(samplable, { maxNewTokens: 1, temperature: opts.temperature, topK: opts.topK, topP: opts.topP }, opts.rng);
    yield entryFor(row, id, opts.topLogprobs);
    if (id === opts.eosId || i + 1 === budget) return;
    await yieldToEventLoop();
    throwIfAborted(opts.signal);
    row = noGrad(() => model.forward(Int32Array.of(id), 1, 1, { cache: state.cache }).logits.data); // [1, 1, V]
  }
}
