// Tests for src/util/rng.ts (kept beside the data tests: the loader's exact-resume guarantee rests on it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, hash32 } from '../../src/util/rng.js';

test('xoshiro128** matches the reference C implementation from state [1, 2, 3, 4]', () => {
  const r = Rng.fromState([1, 2, 3, 4]);
  const first = Array.from({ length: 8 }, () => r.nextU32());
  assert.deepEqual(first, [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849]);
  for (let i = 0; i < 992; i++) r.nextU32();
  assert.equal(r.nextU32(), 136054147); // 1001st output, from the C reference
});

test('same seed → same stream; state()/setState() resumes exactly; state is JSON', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32());
  assert.notEqual(new Rng(43).nextU32(), new Rng(42).nextU32());
  assert.notEqual(new Rng(2 ** 32).nextU32(), new Rng(0).nextU32()); // high bits of the seed matter
  a.normal();
  const saved = JSON.parse(JSON.stringify(a.state())) as number[];
  const want = [a.nextU32(), a.nextFloat(), a.normal(), a.int(7)];
  const c = Rng.fromState(saved);
  assert.deepEqual([c.nextU32(), c.nextFloat(), c.normal(), c.int(7)], want);
  assert.throws(() => c.setState([0, 0, 0, 0]), RangeError);
  assert.throws(() => c.setState([1, 2, 3]), RangeError);
  assert.throws(() => c.setState([1, 2, 3, 2 ** 32]), RangeError);
});

test('nextFloat in [0,1), int(n) unbiased and in range, normal has mean 0 / std 1', () => {
  const r = new Rng(1);
  const counts = new Array(6).fill(0);
  let sum = 0;
  let sq = 0;
  const N = 60000;
  for (let i = 0; i < N; i++) {
    const f = r.nextFloat();
    assert.ok(f >= 0 && f < 1);
    counts[r.int(6)]++;
    const z = r.normal();
    sum += z;
    sq += z * z;
  }
  for (const c of counts) assert.ok(Math.abs(c - N / 6) < 5 * Math.sqrt(N / 6), `counts ${counts}`);
  assert.ok(Math.abs(sum / N) < 0.03, `mean ${sum / N}`);
  assert.ok(Math.abs(sq / N - 1) < 0.03, `var ${sq / N}`);
  assert.equal(r.int(1), 0);
  const big = r.int(2 ** 32);
  assert.ok(Number.isInteger(big) && big >= 0 && big < 2 ** 32);
  assert.throws(() => r.int(0), RangeError);
  assert.throws(() => r.int(1.5), RangeError);
});

test('shuffle is a permutation, deterministic per seed, and roughly uniform', () => {
  const perm = new Rng(9).shuffle(Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...perm].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(new Rng(9).shuffle(Array.from({ length: 50 }, (_, i) => i)), perm);
  const typed = new Rng(9).shuffle(Uint32Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...typed], perm);
  // Position of element 0 after shuffling 4 items: uniform over 4 slots.
  const r = new Rng(3);
  const pos = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) pos[r.shuffle([0, 1, 2, 3]).indexOf(0)]++;
  for (const p of pos) assert.ok(Math.abs(p - 5000) < 300, `positions ${pos}`);
});

test('hash32 is deterministic, seed-dependent and spread over [0, 2^32)', () => {
  assert.equal(hash32(1, 2), hash32(1, 2));
  assert.notEqual(hash32(1, 2), hash32(2, 2));
  let below = 0;
  for (let i = 0; i < 10000; i++) {
    const h = hash32(7, i);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
    if (h < 2 ** 31) below++;
  }
  assert.ok(Math.abs(below - 5000) < 300, `below half: ${below}`);
});
