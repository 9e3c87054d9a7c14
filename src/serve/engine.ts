/**
 * The served model: request-independent state (model, tokenizer, limits) and the generation loop shared
 * by the completions and chat endpoints. One prompt is prefilled once and its KV cache forked for each
 * of the `n` choices; events come out per token so the endpoints can stream them or collect them.
 */
import { randomInt } from 'node:crypto';
import type { CausalLM } from '../models/base.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import { hash32, Rng } from '../util/rng.js';
import type { ServeOptions } from './config.js';
import { decodeFrom, forkCache, prefill, type Prefilled, type TokenLogprob } from './decode.js';
import { ApiError, invalidRequest } from './errors.js';
import { TextTracker, TokenRenderer } from './text.js';

export type FinishReason = 'stop' | 'length';

/** Sampling and reporting parameters of one request, after validation and defaults. */
export interface GenParams {
  n: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number | null;
  stops: readonly string[];
  /** top entries per token (completions `logprobs`, chat `top_logprobs`); null = no logprobs */
  topLogprobs: number | null;
  /** also report the prompt's tokens (completions `echo`) */
  echo: boolean;
  /** drop the reply's leading whitespace (chat) */
  trimStart: boolean;
}

/** What the generation loop reports, in order: per prompt a `prompt`, then per choice its tokens and an `end`. */
export type GenEvent =
  | { type: 'prompt'; prompt: number; ids: Int32Array; state: Prefilled }
  | { type: 'token'; choice: number; entry: TokenLogprob; delta: string; offset: number }
  | { type: 'end'; choice: number; finishReason: FinishReason; delta: string; text: string; completionTokens: number };

export class Engine {
  readonly renderer: TokenRenderer;
  readonly eosId: number | undefined;
  /** sampler mask: false for ids the model has but the tokenizer lacks (undefined when there are none) */
  readonly allowed: Uint8Array | undefined;
  /** unix seconds, reported in /v1/models */
  readonly created = Math.floor(Date.now() / 1000);

  constructor(readonly model: CausalLM, readonly tokenizer: BpeTokenizer, readonly opts: ServeOptions) {
    model.eval();
    for (const p of model.parameters()) p.requiresGrad = false;
    this.renderer = new TokenRenderer(tokenizer);
    this.eosId = tokenizer.eosId;
    const allowed = new Uint8Array(model.vocabSize);
    let missing = 0;
    for (let id = 0; id < allowed.length; id++) {
      allowed[id] = tokenizer.idToToken(id) === undefined ? 0 : 1;
      missing += 1 - allowed[id]!;
    }
    this.allowed = missing > 0 ? allowed : undefined;
  }

  get modelName(): string {
    return this.opts.modelName;
  }

  /** 404 unless `name` (when given) is the served model. */
  checkModel(name: string | null | undefined): void {
    if (name !== undefined && name !== null && name !== this.modelName) {
      throw new ApiError(404, `The model \`${name}\` does not exist (this server serves \`${this.modelName}\`)`, 'invalid_request_error', 'model', 'model_not_found');
    }
  }

  /** Validates prompt ids against the model (vocabulary, context) and the completion budget. */
  checkPrompt(ids: Int32Array, maxTokens: number, param: string): void {
    const V = this.model.vocabSize, ctx = this.model.maxPositions;
    if (ids.length === 0) throw invalidRequest(`${param} is empty: give at least one token`, param);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= V) throw invalidRequest(`${param}: token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${V})`, param);
    }
    // The last generated token is never fed back, so prompt + max_tokens may reach ctx + 1 (see decodeFrom).
    if (ids.length + Math.max(maxTokens, 1) - 1 > ctx) {
      throw invalidRequest(
        `This model's maximum context length is ${ctx} tokens. However, you requested ${ids.length + maxTokens} tokens (${ids.length} in the prompt, ${maxTokens} for the completion). Please reduce the prompt or the completion length.`,
        ids.length > ctx ? param : 'max_tokens',
        'context_length_exceeded',
      );
    }
  }

  /** Encodes text; the result is checked by `checkPrompt`. */
  encode(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text));
  }

  /** Decoded text of token ids (ids the tokenizer lacks contribute nothing). */
  decode(ids: ArrayLike<number>): string {
    const dec = new TextDecoder('utf-8', { ignoreBOM: true });
    let s = '';
    for (let i = 0; i < ids.length; i++) s += dec.decode(this.renderer.bytesOf(ids[i]!), { stream: true });
    return s + dec.decode();
  }

  /**
   * Generates `p.n` choices for each prompt (choice index = prompt · n + j), yielding events as tokens are
   * made. Stops early when `signal` aborts (throws its reason).
   */
  async *generate(prompts: readonly Int32Array[], p: GenParams, signal?: AbortSignal): AsyncGenerator<GenEvent, void, undefined> {
    for (let pi = 0; pi < prompts.length; pi++) {
      const ids = prompts[pi]!;
      const state = await prefill(this.model, ids, {
        chunk: this.opts.prefillChunk,
        echoTopK: p.echo && p.topLogprobs !== null ? p.topLogprobs : null,
        signal,
      });
      yield { type: 'prompt', prompt: pi, ids, state };
      const base = p.echo ? this.decode(ids).length : 0;
      for (let j = 0; j < p.n; j++) {
        const choice = pi * p.n + j;
        const rng = new Rng(p.seed === null ? randomInt(2 ** 47) : hash32(hash32(p.seed >>> 0, Math.floor(p.seed / 2 ** 32) >>> 0), choice));
        const fork: Prefilled = j === p.n - 1 ? state : { ...state, cache: forkCache(state.cache) };
        const tracker = new TextTracker(this.renderer, p.stops, base, this.eosId === undefined ? [] : [this.eosId], p.trimStart);
        let count = 0, finish: FinishReason = 'length';
        for await (const entry of decodeFrom(this.model, fork, {
          maxNewTokens: p.maxTokens, temperature: p.temperature, topP: p.topP, topK: p.topK, rng,
          topLogprobs: p.topLogprobs ?? 0, eosId: this.eosId, allowed: this.allowed, signal,
        })) {
          count++;
          const step = tracker.push(entry.id);
          yield { type: 'token', choice, entry, delta: step.delta, offset: step.offset };
          if (step.stopped || entry.id === this.eosId) { finish = 'stop'; break; }
        }
        const delta = tracker.finish();
        yield { type: 'end', choice, finishReason: finish, delta, text: tracker.value, completionTokens: count };
      }
    }
  }
}
