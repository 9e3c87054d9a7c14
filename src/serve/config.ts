/**
 * Server options: one zod schema holds every limit, its default and its documentation. The CLI
 * (`lmdistill serve`) and library callers (`startServer`) both go through it.
 */
import { z } from 'zod';

const posInt = z.number().int().positive();

export const serveOptionsSchema = z.strictObject({
  /** id clients send as `model` and `/v1/models` lists */
  modelName: z.string().min(1).max(256).regex(/^[^\s]+$/, 'must not contain whitespace'),
  /** interface to bind; loopback unless the operator opts into exposing the server */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 = an ephemeral port (tests) */
  port: z.number().int().min(0).max(65535).default(8000),
  /** when set, every /v1 request needs `Authorization: Bearer <apiKey>` */
  apiKey: z.string().min(1).optional(),
  /** requests generating at once (CPU-bound: more than a few only interleaves tokens) */
  maxConcurrency: posInt.max(1024).default(1),
  /** requests waiting for a slot; one more is refused with 429 */
  maxQueue: z.number().int().min(0).max(1_000_000).default(32),
  /** request bodies above this are refused with 413 */
  maxBodyBytes: posInt.default(8 * 1024 * 1024),
  /** upper bound on `max_tokens` / `max_completion_tokens` */
  maxTokens: posInt.default(1024),
  /** upper bound on `n` */
  maxN: posInt.max(1024).default(16),
  /** upper bound on completions `logprobs` and chat `top_logprobs` (OpenAI: 5 / 20) */
  maxLogprobs: z.number().int().min(0).max(100_000).default(20),
  /** upper bound on prompts in one completions request (a list prompt) */
  maxPrompts: posInt.max(100_000).default(64),
  /** upper bound on prompts × n in one request */
  maxChoices: posInt.max(100_000).default(64),
  /** upper bound on `stop` sequences (OpenAI: 4) */
  maxStop: posInt.max(64).default(4),
  /** prompt tokens run per forward before yielding to the event loop */
  prefillChunk: posInt.max(1 << 20).default(512),
  /** on shutdown, in-flight requests get this long before their connections are cut */
  shutdownGraceMs: z.number().int().min(0).default(5000),
});

export type ServeOptionsIn = z.input<typeof serveOptionsSchema>;
export type ServeOptions = z.output<typeof serveOptionsSchema>;
