/**
 * File input for tokenizer files: bounded reads that turn every failure into a `UserError`; plus the
 * readable JSON layout we save with. Atomic writes live in `src/io/atomic.ts`.
 */
import * as fs from 'node:fs';
import { UserError } from '../errors.js';
import { INVALID_INPUT } from './validate.js';

/**
 * Largest tokenizer file we read. Real tokenizer.json files are at most a few tens of MB; V8 strings
 * top out near 512 M UTF-16 units, and JSON.parse needs several times the text size, so 256 MiB
 * keeps a hostile or mistaken file (e.g. a checkpoint passed as a tokenizer) from exhausting memory.
 */
export const MAX_TOKENIZER_FILE_BYTES = 256 * 1024 * 1024;

function errnoMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Reads `file` as UTF-8 text, failing with a `UserError` when missing, too large or not valid UTF-8. */
export function readTextFileCapped(file: string, maxBytes = MAX_TOKENIZER_FILE_BYTES): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new UserError(`${file}: cannot open (${errnoMessage(e)})`, INVALID_INPUT);
  }
  let buf: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${file}: is not a regular file`, INVALID_INPUT);
    if (st.size > maxBytes) throw new UserError(`${file}: is ${st.size} bytes; expected at most ${maxBytes}`, INVALID_INPUT);
    // Read at most maxBytes + 1 even if the file grows after fstat.
    buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break;
    }
    if (n > maxBytes) throw new UserError(`${file}: is larger than ${maxBytes} bytes`, INVALID_INPUT);
    buf = buf.subarray(0, n);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${file}: cannot read (${errnoMessage(e)})`, INVALID_INPUT);
  } finally {
    fs.closeSync(fd);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new UserError(`${file}: is not valid UTF-8 text`, INVALID_INPUT);
  }
}

/** Reads and parses a JSON file, failing with a `UserError` naming the file on any problem. */
export function readJsonFile(file: string): unknown {
  const text = readTextFileCapped(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    // SyntaxError for malformed text; RangeError is possible for pathological input. Either way the file is at fault.
    const detail = errnoMessage(e);
    throw new UserError(`${file}: is not valid JSON (${detail.length > 200 ? `${detail.slice(0, 200)}…` : detail})`, INVALID_INPUT);
  }
}

/**
 * JSON text that stays readable and diffable for large vocabs: containers whose compact form is
 * short, and arrays of numbers, go on one line; larger containers get one item per line (so a
 * vocab is one token per line and merges one pair per line). Only for our own trusted objects: it recurses.
 */
export function stringifyReadable(value: unknown, indent = ''): string {
  const compact = JSON.stringify(value);
  if (value === null || typeof value !== 'object' || compact.length <= 80) return compact;
  // A list of numbers (e.g. token ids) reads best on one line however long.
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return compact;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + stringifyReadable(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stringifyReadable(v, inner)}`);
  return `{\n${entries.join(',\n')}\n${indent}}`;
}
