/**
 * Turning zod validation failures into one clear UserError that names the file, the key path and
 * what was expected (exit code 2: invalid input).
 */
import { z } from 'zod';
import { UserError } from '../errors.js';

/** Formats the first issues of a zod error as `file: key.path: message` lines. */
export function formatZodError(err: z.ZodError, source: string): string {
  const lines = err.issues.slice(0, 5).map((iss) => {
    const path = iss.path.length ? iss.path.map(String).join('.') : '(root)';
    if (iss.code === 'unrecognized_keys') {
      const keys = iss.keys.map((k) => `"${k}"`).join(', ');
      return `${source}: unknown key${iss.keys.length > 1 ? 's' : ''} ${keys}${iss.path.length ? ` in ${path}` : ''}`;
    }
    return `${source}: ${path}: ${iss.message}`;
  });
  if (err.issues.length > 5) lines.push(`(${err.issues.length - 5} more)`);
  return lines.join('\n');
}

/** Parses `value` with `schema` or throws a UserError (exit 2) naming `source` and the bad key. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError(formatZodError(r.error, source), 2);
  return r.data;
}
