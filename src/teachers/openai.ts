/**
 * A teacher behind any OpenAI-compatible server (vLLM, llama.cpp, `lmdistill serve`, ...) that returns
 * prompt logprobs. For each sequence of token ids it asks `/v1/completions` for
 *
 *     {prompt: [ids], echo: true, max_tokens: 1, logprobs: k, return_tokens_as_token_ids: true}
 *
 * and reads the top-k of position t (the distribution of the token after input[t]) from the echoed
 * prompt entry t + 1, and that of the last position from the one generated token. The server must use
 * the same tokenizer (ids are sent, and checked: each echoed token must map back to the id sent).
 *
 * Token strings map back to ids exactly when the server renders them as `token_id:<id>` (vLLM's
 * `return_tokens_as_token_ids`, sent by default; `tokenIds: 'auto'` drops it if the server rejects the
 * field). Otherwise strings go through the tokenizer: `bytes:\xNN…` (OpenAI's form for partial UTF-8),
 * decoded text, or the raw vocabulary form; a string that maps to no id is a UserError naming it.
 *
 * Client: the `openai` package (loopback or remote `baseURL`) for its typed errors (status classes,
 * connection vs timeout), auth header and per-request timeout. Its own retries are off (`maxRetries: 0`)
 * so one policy here — exponential backoff with jitter on 429/408/5xx/connection errors/timeouts,
 * honouring Retry-After — covers every failure, reports each retry through `onEvent`, and ends in one
 * UserError naming the URL.
 *
 * With `cacheDir`, every response is stored on disk (`http-cache.ts`) before it is used, keyed by URL +
 * model + request body: a restarted job re-asks nothing it already has.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import { parseWith } from '../config/zod.js';
import { UserError } from '../errors.js';
import { textToByteSymbols, BYTE_TO_UNICODE } from '../tokenizer/bytes.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import { ResponseCache } from './http-cache.js';
import type { Teacher, TeacherBatch, TopK } from './teacher.js';

export const openaiTeacherOptionsSchema = z.strictObject({
  /** server base URL including `/v1`, e.g. `http://127.0.0.1:8000/v1` */
  baseURL: z.string().url(),
  /** model id to ask for (default: the first one `GET /models` lists) */
  model: z.string().min(1).optional(),
  /** sent as `Authorization: Bearer <apiKey>` */
  apiKey: z.string().min(1).optional(),
  /** the teacher's vocabulary size (default: the tokenizer's) */
  vocabSize: z.number().int().positive().optional(),
  /** sequences per request: 1 sends `prompt: [ids]` (every server); more sends a list of prompts (vLLM, ours) */
  promptsPerRequest: z.number().int().positive().max(4096).default(1),
  /** requests in flight at once */
  concurrency: z.number().int().positive().max(1024).default(4),
  /** retries after the first attempt on 429/408/5xx/connection errors/timeouts */
  maxRetries: z.number().int().min(0).max(100).default(6),
  /** first backoff delay; doubles per retry, with jitter, up to retryMaxMs */
  retryBaseMs: z.number().min(0).default(250),
  retryMaxMs: z.number().min(0).default(15_000),
  /** per-request timeout */
  timeoutMs: z.number().int().positive().default(120_000),
  /** on-disk request cache directory (none when unset) */
  cacheDir: z.string().min(1).optional(),
  /** `return_tokens_as_token_ids`: 'auto' sends it and drops it if the server rejects the field */
  tokenIds: z.enum(['auto', 'always', 'never']).default('auto'),
});
export type OpenAITeacherOptionsIn = z.input<typeof openaiTeacherOptionsSchema>;

/** What the teacher reports (library code never prints). */
export type OpenAITeacherEvent =
  | { type: 'request'; url: string; prompts: number; attempt: number }
  | { type: 'retry'; url: string; attempt: number; delayMs: number; reason: string }
  | { type: 'response'; url: string; key: string; fromCache: boolean };

interface Extras {
  tokenizer: BpeTokenizer;
  onEvent?: (e: OpenAITeacherEvent) => void;
}

/** The part of a completions response we read (other fields are ignored). */
const responseSchema = z.object({
  choices: z.array(z.object({
    index: z.number().int().min(0),
    logprobs: z.object({
      tokens: z.array(z.string()),
      top_logprobs: z.array(z.record(z.string(), z.number()).nullable()),
    }),
  })).min(1),
});
type CompletionResponse = z.output<typeof responseSchema>;

/** One topk() call's shared state. */
interface Job {
  failed: boolean;
}

/** One sequence's top-k rows: [T·k] ids and logprobs. */
interface SeqTopK {
  ids: Int32Array;
  logprobs: Float32Array;
}

/** Parsed `bytes:\xNN…` token string, or undefined. */
function parseByteToken(s: string): string | undefined {
  const m = /^bytes:((?:\\x[0-9a-fA-F]{2})+)$/.exec(s);
  if (!m) return undefined;
  let symbols = '';
  for (const hex of m[1]!.split('\\x').slice(1)) symbols += BYTE_TO_UNICODE[parseInt(hex, 16)]!;
  return symbols;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export class OpenAITeacher implements Teacher {
  readonly name: string;
  readonly vocabSize: number;
  readonly dense = false;
  readonly options: z.output<typeof openaiTeacherOptionsSchema>;
  private readonly client: OpenAI;
  private readonly tokenizer: BpeTokenizer;
  private readonly onEvent: (e: OpenAITeacherEvent) => void;
  private readonly cache: ResponseCache | undefined;
  private readonly closer = new AbortController();
  private readonly inflight = new Map<string, Promise<SeqTopK[]>>();
  private readonly tokenIdCache = new Map<string, number | null>();
  private modelPromise: Promise<string> | undefined;
  private sendTokenIds: boolean;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(options: OpenAITeacherOptionsIn & Extras) {
    const { tokenizer, onEvent, ...rest } = options;
    this.options = parseWith(openaiTeacherOptionsSchema, rest, 'OpenAI teacher options');
    this.tokenizer = tokenizer;
    this.onEvent = onEvent ?? (() => {});
    this.vocabSize = this.options.vocabSize ?? tokenizer.vocabSize;
    this.name = `openai:${this.options.baseURL}`;
    this.sendTokenIds = this.options.tokenIds !== 'never';
    // every request and backoff listens on this signal: many in flight are expected, not a leak
    setMaxListeners(0, this.closer.signal);
    this.client = new OpenAI({
      baseURL: this.options.baseURL,
      // the SDK insists on a key; servers without auth ignore this placeholder (vLLM's convention)
      apiKey: this.options.apiKey ?? 'EMPTY',
      maxRetries: 0,
      timeout: this.options.timeoutMs,
    });
    if (this.options.cacheDir !== undefined) {
      this.cache = new ResponseCache(this.options.cacheDir);
      this.cache.sweep();
    }
  }

  private get url(): string {
    return this.options.baseURL;
  }

  /**
   * Top-k next-token logprobs at every position of `batch` ([B·T·k'] with k' = min(k, vocabSize)),
   * sorted by descending logprob (ties: smaller id first). Throws UserError when the server cannot be
   * reached within the retry budget, rejects the request, or returns something that does not line up.
   */
  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    const { batchSize: B, seqLen: T, input } = batch;
    if (!Number.isInteger(k) || k < 1) throw new UserError(`teacher ${this.url}: k must be a positive integer, got ${k}`, 2);
    if (!(Number.isInteger(B) && Number.isInteger(T) && B >= 1 && T >= 1) || input.length !== B * T) {
      throw new Error(`OpenAITeacher.topk: ${input.length} ids for batch ${B} × seqLen ${T}`);
    }
    const kk = Math.min(k, this.vocabSize);
    const model = await this.model();
    const ids = new Int32Array(B * T * kk), logprobs = new Float32Array(B * T * kk);
    const per = this.options.promptsPerRequest;
    const groups: number[][] = [];
    for (let b = 0; b < B; b += per) groups.push(Array.from({ length: Math.min(per, B - b) }, (_, i) => b + i));
    // After the first failure the batch is lost: requests still waiting for a slot are not sent.
    const job: Job = { failed: false };
    await Promise.all(groups.map(async (rows) => {
      const seqs = rows.map((b) => Array.from(input.subarray(b * T, (b + 1) * T)));
      const got = await this.complete(model, seqs, kk, job);
      rows.forEach((b, i) => {
        ids.set(got[i]!.ids, b * T * kk);
        logprobs.set(got[i]!.logprobs, b * T * kk);
      });
    }));
    return { k: kk, ids, logprobs };
  }

  async logits(_batch: TeacherBatch): Promise<Float32Array> {
    throw new UserError(`teacher ${this.url} is an API teacher: it gives top-k logprobs only (dense = false); use a sparse objective or a local teacher for full logits`, 2);
  }

  /** Aborts retries and requests in flight; later calls fail. */
  async close(): Promise<void> {
    this.closer.abort(new UserError(`teacher ${this.url}: closed`));
  }

  /** The model id: the configured one, or the first the server lists. */
  private model(): Promise<string> {
    this.modelPromise ??= (this.options.model !== undefined
      ? Promise.resolve(this.options.model)
      : this.withRetries('GET /models', async (signal) => {
        const list = await this.client.models.list({ signal });
        const first = list.data[0]?.id;
        if (!first) throw new UserError(`teacher ${this.url}: GET /models lists no model; set the model name`);
        return first;
      })).catch((e: unknown) => {
        this.modelPromise = undefined; // a later call may try again
        throw e;
      });
    return this.modelPromise;
  }

  /**
   * One completions request for `seqs`, served from the cache when possible; returns each sequence's
   * top-k rows ([T·k] ids and logprobs). A response is cached only after it was fully decoded, so
   * nothing unusable is ever stored.
   */
  private async complete(model: string, seqs: number[][], k: number, job: Job): Promise<SeqTopK[]> {
    const body = (withIds: boolean): Record<string, unknown> => ({
      model,
      prompt: seqs.length === 1 ? seqs[0] : seqs,
      max_tokens: 1,
      temperature: 0,
      echo: true,
      logprobs: k,
      ...(withIds ? { return_tokens_as_token_ids: true } : {}),
    });
    for (;;) {
      const withIds = this.sendTokenIds;
      const req = body(withIds);
      const key = ResponseCache.key({ url: this.url, body: req });
      try {
        return await this.once(key, req, (r) => this.extract(r, seqs, k), job);
      } catch (e) {
        // A strict server (OpenAI's own) rejects vLLM's field: ask again without it.
        if (withIds && this.rejectsTokenIds(e)) {
          this.sendTokenIds = false;
          continue;
        }
        throw e instanceof RejectedError ? new UserError(e.message, e.exitCode) : e;
      }
    }
  }

  /** Cache lookup, else one deduplicated, concurrency-limited, retried request. */
  private once(key: string, body: Record<string, unknown>, extract: (r: CompletionResponse) => SeqTopK[], job: Job): Promise<SeqTopK[]> {
    const cached = this.cache?.get(key);
    if (cached !== undefined) {
      const parsed = responseSchema.safeParse(cached);
      if (parsed.success) {
        const out = extract(parsed.data);
        this.onEvent({ type: 'response', url: this.url, key, fromCache: true });
        return Promise.resolve(out);
      }
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.withSlot(() => this.withRetries('POST /completions', async (signal, attempt) => {
        if (job.failed) throw new UserError(`teacher ${this.url}: request abandoned (another request of the batch failed)`);
        this.onEvent({ type: 'request', url: this.url, prompts: Array.isArray((body.prompt as unknown[])[0]) ? (body.prompt as unknown[]).length : 1, attempt });
        const raw: unknown = await this.client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming, { signal });
        const parsed = responseSchema.safeParse(raw);
        if (!parsed.success) {
          throw new UserError(`teacher ${this.url}: unexpected completions response (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}); does the server support echo with logprobs?`);
        }
        const out = extract(parsed.data);
        this.cache?.put(key, raw, { url: this.url, model: body.model, logprobs: body.logprobs });
        this.onEvent({ type: 'response', url: this.url, key, fromCache: false });
        return out;
      }).catch((e: unknown) => {
        // before the slot passes on, so the batch's next request sees it (a rejected
        // return_tokens_as_token_ids is not fatal: `complete` asks again without it)
        if (!('return_tokens_as_token_ids' in body && this.rejectsTokenIds(e))) job.failed = true;
        throw e;
      })).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** True for a 400 caused by vLLM's `return_tokens_as_token_ids` when tokenIds is 'auto'. */
  private rejectsTokenIds(e: unknown): boolean {
    return this.options.tokenIds === 'auto' && e instanceof RejectedError && /return_tokens_as_token_ids/.test(`${e.param ?? ''} ${e.message}`);
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.options.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); else this.active--;
    }
  }

  /** Runs `fn` until it succeeds, a non-retryable error occurs, or the retry budget is spent. */
  private async withRetries<T>(what: string, fn: (signal: AbortSignal, attempt: number) => Promise<T>): Promise<T> {
    const { maxRetries, retryBaseMs, retryMaxMs, timeoutMs } = this.options;
    for (let attempt = 0; ; attempt++) {
      if (this.closer.signal.aborted) throw this.closer.signal.reason;
      try {
        return await fn(this.closer.signal, attempt);
      } catch (e) {
        if (e instanceof UserError) throw e;
        if (e instanceof APIUserAbortError && this.closer.signal.aborted) throw this.closer.signal.reason;
        const c = this.classify(e, what, timeoutMs);
        if (!c.retryable) throw c.error;
        if (attempt >= maxRetries) {
          throw new UserError(`teacher ${this.url}: ${what} failed after ${attempt + 1} attempt${attempt ? 's' : ''}: ${c.reason}`);
        }
        // exponential backoff with "equal jitter": half fixed, half random, so retries of many
        // concurrent requests spread out instead of arriving together
        const exp = Math.min(retryMaxMs, retryBaseMs * 2 ** attempt);
        const delayMs = Math.min(retryMaxMs, Math.max(exp / 2 + Math.random() * (exp / 2), c.retryAfterMs ?? 0));
        this.onEvent({ type: 'retry', url: this.url, attempt: attempt + 1, delayMs, reason: c.reason });
        await sleep(delayMs, this.closer.signal);
      }
    }
  }

  private classify(e: unknown, what: string, timeoutMs: number): { retryable: true; reason: string; retryAfterMs?: number } | { retryable: false; error: Error } {
    if (e instanceof APIConnectionTimeoutError) return { retryable: true, reason: `timed out after ${timeoutMs} ms` };
    if (e instanceof APIConnectionError) {
      // fetch wraps the socket error: APIConnectionError → TypeError('fetch failed') → {code: 'ECONNREFUSED'}
      const cause = e.cause as { cause?: { code?: string; message?: string }; message?: string } | undefined;
      return { retryable: true, reason: `connection failed (${cause?.cause?.code ?? cause?.cause?.message ?? cause?.message ?? e.message})` };
    }
    if (e instanceof APIError && typeof e.status === 'number') {
      const s = e.status;
      const msg = (e.error as { message?: string } | undefined)?.message ?? e.message;
      if (s === 429 || s === 408 || s >= 500) {
        const ra = e.headers?.get('retry-after-ms') ?? null;
        const raSec = e.headers?.get('retry-after') ?? null;
        const retryAfterMs = ra !== null && Number.isFinite(Number(ra)) ? Number(ra) : raSec !== null && Number.isFinite(Number(raSec)) ? Number(raSec) * 1000 : undefined;
        return { retryable: true, reason: `HTTP ${s}: ${msg}`, retryAfterMs };
      }
      const hint = s === 401 || s === 403 ? ' (check the API key)' : s === 404 ? ' (check the base URL, which should end in /v1, and the model name)' : '';
      return { retryable: false, error: new RejectedError(`teacher ${this.url}: ${what} was rejected with HTTP ${s}${hint}: ${msg}`, e.param ?? null) };
    }
    return { retryable: false, error: e instanceof Error ? e : new Error(String(e)) };
  }

  /**
   * Decodes a response into each sequence's top-k rows, checking it lines up with what was sent (count,
   * lengths, echoed ids, k entries per position); throws UserError otherwise.
   */
  private extract(res: CompletionResponse, seqs: number[][], k: number): SeqTopK[] {
    if (res.choices.length !== seqs.length) {
      throw new UserError(`teacher ${this.url}: sent ${seqs.length} prompts but got ${res.choices.length} choices${seqs.length > 1 ? ' (does the server accept a list of prompts? set promptsPerRequest: 1)' : ''}`);
    }
    return seqs.map((seq, i) => {
      const choice = res.choices.find((c) => c.index === i);
      if (!choice) throw new UserError(`teacher ${this.url}: no choice with index ${i} in the response`);
      const lp = choice.logprobs, T = seq.length;
      if (lp.tokens.length < T + 1 || lp.top_logprobs.length < T + 1) {
        throw new UserError(`teacher ${this.url}: expected logprobs for ${T} echoed prompt tokens + 1 generated, got ${lp.tokens.length}; does the server support echo with logprobs?`);
      }
      for (let t = 1; t < T; t++) {
        const id = this.tokenId(lp.tokens[t]!, i, t);
        if (id !== seq[t]) {
          throw new UserError(`teacher ${this.url}: the echoed prompt token at position ${t} is ${JSON.stringify(lp.tokens[t])} (id ${id}), but id ${seq[t]} was sent: the server does not use the shared tokenizer or does not take token-id prompts`);
        }
      }
      const ids = new Int32Array(T * k), logprobs = new Float32Array(T * k);
      for (let t = 0; t < T; t++) {
        // position t predicts the token after seq[t]: echoed entry t + 1 (for t = T − 1, the generated token)
        const dict = lp.top_logprobs[t + 1] ?? {};
        const best = new Map<number, number>();
        for (const [s, v] of Object.entries(dict)) {
          const id = this.tokenId(s, i, t + 1);
          if (!(best.get(id)! >= v)) best.set(id, v);
        }
        const entries = [...best];
        if (entries.length < k) {
          throw new UserError(`teacher ${this.url}: ${entries.length} distinct top logprobs at position ${t} of sequence ${i}, asked for ${k} (does the server cap logprobs, or render two tokens as the same string? try tokenIds: 'always')`);
        }
        entries.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
        for (let j = 0; j < k; j++) {
          ids[t * k + j] = entries[j]![0];
          logprobs[t * k + j] = entries[j]![1];
        }
      }
      return { ids, logprobs };
    });
  }

  /** The shared tokenizer's id for a token string from the server; UserError when there is none. */
  private tokenId(s: string, seq: number, pos: number): number {
    let id = this.tokenIdCache.get(s);
    if (id === undefined) {
      const m = /^token_id:(\d+)$/.exec(s);
      if (m) id = Number(m[1]);
      else {
        const bytes = parseByteToken(s);
        id = (bytes !== undefined ? this.tokenizer.tokenToId(bytes) : undefined)
          ?? this.tokenizer.tokenToId(textToByteSymbols(s))
          ?? this.tokenizer.tokenToId(s)
          ?? null;
      }
      if (id !== null && !(id >= 0 && id < this.vocabSize)) id = null;
      this.tokenIdCache.set(s, id);
    }
    if (id === null) {
      throw new UserError(`teacher ${this.url}: the token string ${JSON.stringify(s)} (sequence ${seq}, position ${pos}) is not a token of the shared tokenizer; the server must use the same tokenizer, and should render tokens as ids (vLLM: return_tokens_as_token_ids; teacher option tokenIds: 'always')`);
    }
    return id;
  }
}

/** A 4xx the server gave for a request (not retried). */
class RejectedError extends UserError {
  constructor(message: string, readonly param: string | null) {
    super(message);
    this.name = 'RejectedError';
  }
}
