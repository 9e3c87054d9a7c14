/** Commander argument parsers that fail with a clear message (exit 2). */
import { InvalidArgumentError } from 'commander';

export function intArg(name: string, min = 1): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} expects an integer >= ${min}, got "${v}"`);
    return n;
  };
}

export function floatArg(name: string, min = -Infinity, max = Infinity): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} expects a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
}
