/**
 * Small helpers for strict, defensive validation of untrusted JSON: every failure is a `UserError`
 * of the form `<source>: <path> is <what it is>; expected <what it should be>`. Nothing here recurses
 * into values or stringifies them whole, so hostile input (deep nesting, huge strings) stays cheap.
 */
import { UserError } from '../errors.js';

/** Exit code for invalid input files (see `UserError`). */
export const INVALID_INPUT = 2;

/** A string as a bounded-length JSON literal, for messages. */
export function quote(s: string): string {
  return s.length > 60 ? `${JSON.stringify(s.slice(0, 60))}… (${s.length} chars)` : JSON.stringify(s);
}

/** A short human description of an untrusted JSON value, bounded in length whatever the value. */
export function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** A key rendered as a path segment: `.name` for identifiers, `["…"]` otherwise (bounded length). */
export function keyPath(key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && key.length <= 60) return `.${key}`;
  const shown = key.length > 60 ? `${JSON.stringify(key.slice(0, 60))}…` : JSON.stringify(key);
  return `[${shown}]`;
}

/** Throws `<source>: <path> is <describe(value)>; expected <expected>`. */
export function fail(source: string, path: string, value: unknown, expected: string): never {
  throw new UserError(`${source}: ${path} is ${describe(value)}; expected ${expected}`, INVALID_INPUT);
}

/** Throws a free-form validation message prefixed with the source. */
export function failWith(source: string, message: string): never {
  throw new UserError(`${source}: ${message}`, INVALID_INPUT);
}

/** A plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Returns `obj` as a record or fails; also rejects keys outside `allowed`, naming the first one. */
export function expectRecord(
  source: string,
  path: string,
  value: unknown,
  allowed: readonly string[],
): Record<string, unknown> {
  if (!isRecord(value)) fail(source, path, value, 'an object');
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) {
      failWith(source, `${path}${keyPath(k)} is not a recognised key; expected only ${allowed.join(', ')}`);
    }
  }
  return value;
}

/** Own property access that never reads the prototype chain (`__proto__`, `constructor`, …). */
export function field(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** A boolean field, or `dflt` when absent (`undefined`); anything else fails. */
export function expectBool(source: string, path: string, value: unknown, dflt?: boolean): boolean {
  if (value === undefined && dflt !== undefined) return dflt;
  if (typeof value !== 'boolean') fail(source, path, value, 'true or false');
  return value;
}

/** A non-negative safe integer below `limit`. */
export function expectIndex(source: string, path: string, value: unknown, limit: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= limit) {
    fail(source, path, value, `an integer from 0 to ${limit - 1}`);
  }
  return value;
}

/** An array of at most `maxLength` items. */
export function expectArray(source: string, path: string, value: unknown, maxLength: number): unknown[] {
  if (!Array.isArray(value)) fail(source, path, value, 'an array');
  if (value.length > maxLength) fail(source, path, value, `at most ${maxLength} items`);
  return value;
}
