/**
 * The native thread pool's idle spin (LMDISTILL_SPIN_US): workers and a caller waiting for the last tasks
 * spin for a while before blocking, because waking a blocked thread costs tens of µs in a VM. Checked in
 * real child processes: the setting is read and reported (invalid values fall back to the default), and
 * jobs that arrive while the workers spin, right after they block, and long after give the same results
 * as one thread, with spinning off, default and very long.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { nativeInfo } from '../../src/backend/native.js';

const native = nativeInfo();
const skip = native.available ? false : `native addon not built: ${native.reason}`;

const CHILD = `
const { nativeBackend, nativeInfo, setNativeThreads } = await import('./src/backend/native.ts');
const be = nativeBackend;
const m = 192, n = 160, k = 200;
let s = 7;
const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
const a = Float32Array.from({ length: m * k }, rnd), b = Float32Array.from({ length: k * n }, rnd);
const args = { batch: 1, m, n, k, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: false };
const x = Float32Array.from({ length: 1 << 18 }, rnd);
const run = () => {
  const c = new Float32Array(m * n), y = new Float32Array(x.length);
  be.matmul(a, b, c, args);
  be.unary('gelu', x, y);
  return [...c.subarray(0, 64), ...y.subarray(0, 64), c.reduce((p, q) => p + q, 0), y.reduce((p, q) => p + q, 0)];
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = [];
for (const gap of [0, 0.05, 1, 20]) { // back to back, inside the spin window, just after, long after
  results.push(run());
  if (gap) await sleep(gap);
  results.push(run());
}
const { spinUs, threads } = nativeInfo();
setNativeThreads(1);
const single = run();
console.log(JSON.stringify({ spinUs, threads, results, single }));
`;

function child(env: Record<string, string>): { spinUs: number; threads: number; results: number[][]; single: number[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    encoding: 'utf8', env: { ...process.env, LMDISTILL_THREADS: '2', ...env }, cwd: new URL('../..', import.meta.url).pathname,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { spinUs: number; threads: number; results: number[][]; single: number[] };
}

test('native pool: LMDISTILL_SPIN_US is read and reported; results equal one thread whatever the spin and the gaps between jobs', { skip }, () => {
  const runs: { env: Record<string, string>; spin: number }[] = [
    { env: {}, spin: 300 },
    { env: { LMDISTILL_SPIN_US: '0' }, spin: 0 },
    { env: { LMDISTILL_SPIN_US: '50000' }, spin: 50000 },
    { env: { LMDISTILL_SPIN_US: 'lots' }, spin: 300 },
    { env: { LMDISTILL_SPIN_US: '-5' }, spin: 300 },
  ];
  let reference: number[] | null = null;
  for (const { env, spin } of runs) {
    const out = child(env);
    assert.equal(out.spinUs, spin, `LMDISTILL_SPIN_US=${JSON.stringify(env)}`);
    assert.equal(out.threads, 2);
    reference ??= out.single;
    assert.deepEqual(out.single, reference, 'the single-thread results do not depend on the setting');
    out.results.forEach((r, i) => assert.deepEqual(r, reference, `job ${i} with ${JSON.stringify(env)}`));
  }
});
