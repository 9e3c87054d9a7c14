/**
 * Checks of request parameters against the server's configured caps (`ServeOptions`), each failing
 * with a 400 that names the parameter and the cap, plus small helpers shared by the endpoints.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { ServeOptions } from './config.js';
import { fromZodError, invalidRequest } from './errors.js';

/** Parses a request body or throws a 400 naming the first bad parameter. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw fromZodError(r.error);
  return r.data;
}

/** Throws a 400 naming `param` when `value` exceeds `cap` (the server's configured limit). */
export function atMost(value: number, cap: number, param: string, what = param): void {
  if (value > cap) throw invalidRequest(`${what} is ${value}, above this server's limit of ${cap}`, param);
}

/** `n`, checked against `maxN`; `best_of`, when given, must equal n (we do not rank candidates). */
export function resolveN(n: number | null | undefined, bestOf: number | null | undefined, opts: ServeOptions): number {
  const v = n ?? 1;
  atMost(v, opts.maxN, 'n');
  if (bestOf !== null && bestOf !== undefined && bestOf !== v) {
    throw invalidRequest(`best_of (${bestOf}) must equal n (${v}): best-of ranking is not supported`, 'best_of');
  }
  return v;
}

/** `stop` as a list: at most `maxStop` non-empty strings. */
export function resolveStops(stop: string | string[] | null | undefined, opts: ServeOptions): string[] {
  const list = stop === null || stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop;
  atMost(list.length, opts.maxStop, 'stop', 'the number of stop sequences');
  list.forEach((s, i) => {
    if (s.length === 0) throw invalidRequest(`stop${typeof stop === 'string' ? '' : `[${i}]`} is empty`, 'stop');
  });
  return list;
}

/** `top_k` (vLLM extension): 0 and −1 mean off. */
export function resolveTopK(topK: number | null | undefined): number {
  return topK === null || topK === undefined || topK <= 0 ? 0 : topK;
}

/** An OpenAI-looking response id such as `cmpl-3f9a…`. */
export function responseId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}
