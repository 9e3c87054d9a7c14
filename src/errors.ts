/**
 * An error the user can cause and fix (bad config, corrupt file, wrong shape in their data, unreachable
 * teacher). The CLI prints only its message — no stack trace — and exits with `exitCode`.
 * Internal bugs throw ordinary `Error`s and keep their stack.
 */
export class UserError extends Error {
  /** Process exit code the CLI uses for this error (2 = invalid input/config, 1 = other). */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** Throws a `UserError` with `message` unless `cond` holds. */
export function userAssert(cond: unknown, message: string | (() => string), exitCode = 1): asserts cond {
  if (!cond) throw new UserError(typeof message === 'function' ? message() : message, exitCode);
}
