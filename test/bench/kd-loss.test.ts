/** The bench's local KD objective: the properties that make it the loss it claims to be. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kdTokenLosses } from '../../bench/kd-loss.js';
import { crossEntropyPerToken } from '../../src/nn/functional.js';
import { tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const N = 5, V = 7;
const rng = new Rng(3);
const rand = (scale: number) => tensor(Array.from({ length: N * V }, () => rng.normal() * scale), [N, V]);
const targets = Int32Array.from({ length: N }, () => rng.int(V));
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `[${i}] ${a[i]} vs ${b[i]}`);
};

test('alpha = 0 is plain cross-entropy on the unsoftened student, whatever tau', () => {
  const zs = rand(2);
  for (const tau of [1, 3]) close(kdTokenLosses(zs, rand(2), targets, { alpha: 0, tau }).data, crossEntropyPerToken(zs, targets).losses.data);
});

test('KL term is zero when teacher = student and positive otherwise', () => {
  const zs = rand(2);
  close(kdTokenLosses(zs, zs, targets, { alpha: 1, tau: 1 }).data, new Float32Array(N), 1e-6);
  const kl = kdTokenLosses(zs, rand(2), targets, { alpha: 1, tau: 2 }).data;
  for (const v of kl) assert.ok(v > 0);
});

test('the mix is (1 − α)·CE + α·τ²·KL', () => {
  const zs = rand(1.5), zt = rand(1.5);
  const ce = kdTokenLosses(zs, zt, targets, { alpha: 0, tau: 2 }).data;
  const kl = kdTokenLosses(zs, zt, targets, { alpha: 1, tau: 2 }).data;
  const mix = kdTokenLosses(zs, zt, targets, { alpha: 0.3, tau: 2 }).data;
  close(mix, ce.map((c, i) => 0.7 * c + 0.3 * kl[i]));
});
