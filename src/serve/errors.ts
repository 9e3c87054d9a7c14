/**
 * OpenAI-style errors: every failure leaves the server as
 * `{"error": {"message", "type", "param", "code"}}` with the matching HTTP status, so OpenAI client
 * libraries raise their typed errors (BadRequestError, AuthenticationError, NotFoundError, ...).
 */
import type { z } from 'zod';

export type ErrorStatus = 400 | 401 | 404 | 405 | 413 | 429 | 500 | 503;

/** An error that becomes an HTTP response (never a crash). */
export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 naming the offending parameter (`param` is a dotted path such as `messages.0.content`). */
export function invalidRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** Dotted parameter path of a zod issue: `messages.0.content` → `messages[0].content` (OpenAI's spelling). */
function paramPath(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** The first zod issue as a 400 naming its parameter. */
export function fromZodError(err: z.ZodError): ApiError {
  const iss = err.issues[0]!;
  if (iss.code === 'unrecognized_keys') {
    const prefix = paramPath(iss.path);
    const key = iss.keys[0]!;
    const param = prefix ? `${prefix}.${key}` : key;
    return invalidRequest(`Unrecognized request argument supplied: ${param}`, param);
  }
  const param = paramPath(iss.path);
  // zod's unions report "Invalid input"; say what the union accepts instead (set by the schemas).
  return invalidRequest(`${param ?? 'body'}: ${iss.message}`, param);
}
