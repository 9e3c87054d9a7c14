import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { recoverDir, writeDirAtomic, writeFileAtomic } from '../../src/io/atomic.js';
import { Rng } from '../../src/util/rng.js';
import { payload } from './atomic-child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-atomic-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Returns the version if `b` is a complete payload of `bytes` bytes, else throws. */
function checkPayload(b: Uint8Array, bytes: number, what: string): number {
  assert.equal(b.byteLength, bytes, `${what}: partial (${b.byteLength} of ${bytes} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  for (let i = 4; i < b.length; i += 4093) assert.equal(b[i], v % 251, `${what}: mixed contents at byte ${i}`);
  assert.equal(b[b.length - 1], v % 251, `${what}: mixed contents at the last byte`);
  return v;
}

function startChild(mode: 'file' | 'dir', target: string, bytes: number): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'atomic-child.ts'), mode, target, String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  return { child, ready };
}

const kill = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('writeFileAtomic writes bytes, strings and chunk lists, replaces, and leaves no temp files', () => {
  const d = fs.mkdtempSync(path.join(tmp, 'f-'));
  const p = path.join(d, 'a.bin');
  writeFileAtomic(p, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...fs.readFileSync(p)], [1, 2, 3]);
  writeFileAtomic(p, 'héllo');
  assert.equal(fs.readFileSync(p, 'utf8'), 'héllo');
  writeFileAtomic(p, [Uint8Array.of(9), new Uint8Array(0), Uint8Array.of(8, 7)]);
  assert.deepEqual([...fs.readFileSync(p)], [9, 8, 7]);
  assert.deepEqual(fs.readdirSync(d), ['a.bin']);
});

test('writeFileAtomic into a missing folder is a UserError naming the path, and cleans up', () => {
  const p = path.join(tmp, 'no-such-dir', 'x.bin');
  assert.throws(() => writeFileAtomic(p, 'x'), (e: unknown) => e instanceof UserError && e.message.includes(p) && /ENOENT/.test(e.message));
});

test('writeDirAtomic creates and replaces a directory (removed files disappear), nested names, no leftovers', () => {
  const d = fs.mkdtempSync(path.join(tmp, 'd-'));
  const ck = path.join(d, 'ckpt');
  writeDirAtomic(ck, { 'a.txt': 'one', 'old.txt': 'gone soon', 'sub/deep/b.bin': Uint8Array.of(1) });
  assert.equal(fs.readFileSync(path.join(ck, 'sub/deep/b.bin'))[0], 1);
  writeDirAtomic(ck, { 'a.txt': 'two' });
  assert.deepEqual(fs.readdirSync(ck), ['a.txt']);
  assert.equal(fs.readFileSync(path.join(ck, 'a.txt'), 'utf8'), 'two');
  assert.deepEqual(fs.readdirSync(d), ['ckpt']);
  for (const bad of ['../escape', '/abs', 'a/../b', '', 'x//y']) {
    assert.throws(() => writeDirAtomic(ck, { [bad]: 'x' }), UserError, bad);
  }
  assert.equal(fs.readFileSync(path.join(ck, 'a.txt'), 'utf8'), 'two');
});

test('recoverDir finishes or undoes an interrupted swap, and removes stale builds', () => {
  const d = fs.mkdtempSync(path.join(tmp, 'r-'));
  const ck = path.join(d, 'ckpt');
  const mk = (p: string, v: string): void => {
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, 'v'), v);
  };
  // Crash between "rename old away" and "rename new in": the new build is complete → rolled forward.
  mk(`${ck}.old-1-aa`, 'old');
  mk(`${ck}.tmp-1-aa`, 'new');
  recoverDir(ck);
  assert.equal(fs.readFileSync(path.join(ck, 'v'), 'utf8'), 'new');
  assert.deepEqual(fs.readdirSync(d), ['ckpt']);
  // Only the old one survived (new build was removed) → restored.
  fs.rmSync(ck, { recursive: true });
  mk(`${ck}.old-2-bb`, 'old');
  recoverDir(ck);
  assert.equal(fs.readFileSync(path.join(ck, 'v'), 'utf8'), 'old');
  // Crash mid-build: the target is intact, the half-built temp dir is deleted.
  mk(`${ck}.tmp-3-cc`, 'half');
  recoverDir(ck);
  assert.equal(fs.readFileSync(path.join(ck, 'v'), 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(d), ['ckpt']);
  recoverDir(path.join(tmp, 'missing-parent', 'x')); // nothing to do, no throw
});

test('a reader never observes a partial file while another process keeps replacing it', async () => {
  const bytes = 1 << 21;
  const p = path.join(tmp, 'live.bin');
  writeFileAtomic(p, payload(0, bytes));
  const { child, ready } = startChild('file', p, bytes);
  try {
    await ready;
    const seen = new Set<number>();
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      seen.add(checkPayload(fs.readFileSync(p), bytes, 'concurrent read'));
      await sleep(0); // let the child's exit/error events through
    }
    assert.ok(seen.size > 3, `saw only versions ${[...seen]}: the writer did not overlap the reads`);
  } finally {
    await kill(child);
  }
});

test('SIGKILL at random instants leaves the old or the new file/checkpoint, never a partial one', async () => {
  const rng = new Rng(5);
  const bytes = 1 << 22;
  let killedMidWrite = 0;
  for (const mode of ['file', 'dir'] as const) {
    for (let round = 0; round < 5; round++) {
      const target = path.join(tmp, `kill-${mode}-${round}`);
      if (mode === 'file') writeFileAtomic(target, payload(0, bytes));
      else writeDirAtomic(target, { 'model.bin': payload(0, bytes), 'sub/state.json': JSON.stringify({ version: 0 }) });
      const { child, ready } = startChild(mode, target, bytes);
      await ready;
      await sleep(rng.int(60));
      await kill(child);
      const leftovers = fs.readdirSync(tmp).filter((e) => e.startsWith(`kill-${mode}-${round}.`));
      if (leftovers.length) killedMidWrite++;
      if (mode === 'file') {
        checkPayload(fs.readFileSync(target), bytes, `${mode} round ${round}`);
      } else {
        recoverDir(target);
        const v = checkPayload(fs.readFileSync(path.join(target, 'model.bin')), bytes, `${mode} round ${round}`);
        assert.deepEqual(JSON.parse(fs.readFileSync(path.join(target, 'sub/state.json'), 'utf8')), { version: v });
        assert.deepEqual(fs.readdirSync(tmp).filter((e) => e.startsWith(`kill-${mode}-${round}.`)), []);
      }
    }
  }
  // Not asserted (timing-dependent), but normally most kills land mid-write; useful when debugging.
  if (process.env.LMDISTILL_DEBUG) process.stderr.write(`killed mid-write in ${killedMidWrite}/10 rounds\n`);
});
