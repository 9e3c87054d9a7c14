/**
 * The native addon tells glibc's malloc to keep freed blocks (no mmap per large block, no trimming), so
 * re-allocating a freed activation-sized buffer touches pages that are already mapped. Checked in real
 * child processes by counting minor page faults (not time): with the default (retain) a second 32 MiB
 * buffer costs almost no faults; with LMDISTILL_MALLOC=system every one of its 8,192 pages faults again.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { nativeInfo } from '../../src/backend/native.js';

const native = nativeInfo();
const skip = native.available ? false : `native addon not built: ${native.reason}`;

const CHILD = `
const { nativeInfo } = await import('./src/backend/native.ts');
const { uninit } = await import('./src/tensor/tensor.ts');
const n = 8 << 20; // 32 MiB of floats
let a = uninit(n); a.fill(1); a = null; globalThis.gc(); globalThis.gc();
const f0 = process.resourceUsage().minorPageFault;
const b = uninit(n); b.fill(2);
const faults = process.resourceUsage().minorPageFault - f0;
console.log(JSON.stringify({ faults, retain: nativeInfo().mallocRetain, sum: b[0] + b[n - 1] }));
`;

function run(env: Record<string, string>): { faults: number; retain: boolean; sum: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', CHILD], {
    encoding: 'utf8', env: { ...process.env, ...env }, cwd: new URL('../..', import.meta.url).pathname,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { faults: number; retain: boolean; sum: number };
}

test('native addon: freed large buffers are reused without new page faults; LMDISTILL_MALLOC=system restores the default', { skip }, () => {
  const pages = (8 << 20) * 4 / 4096;
  const retain = run({});
  const system = run({ LMDISTILL_MALLOC: 'system' });
  assert.equal(retain.retain, true);
  assert.equal(system.retain, false);
  assert.equal(retain.sum, 4);
  assert.ok(system.faults > pages / 2, `system malloc: expected ~${pages} faults for a fresh 32 MiB block, got ${system.faults}`);
  assert.ok(retain.faults < pages / 8, `retained malloc: expected few faults re-using a freed 32 MiB block, got ${retain.faults}`);
});
