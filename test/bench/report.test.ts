/**
 * The bench's case line with several rounds: besides each side's fastest round (the main ratios), the
 * median of every side's rounds and the peer setting with the lowest median — the fair comparison when
 * the peers as a group get more draws from a noisy machine than we do. Numbers below are made up so
 * that the two statistics pick different peers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PeerConfig } from '../../bench/peers.js';
import type { ChildResult } from '../../bench/proc.js';
import { bestOfRounds } from '../../bench/proc.js';
import { caseLine, formatTable, type Machine } from '../../bench/report.js';

const machine: Machine = { cpu: 'test', cores: 2, simd: [], node: process.version, date: '2026-01-01' };
const spec = { name: 'gemm-test', kind: 'gemm' as const, m: 8, n: 8, k: 8, seed: 0 };
const load = { before: 0, after: 0 };
const rounds = (ms: number[]): ChildResult => bestOfRounds(ms.map((m) => ({ ok: true, record: { ms_per_step: m, gflops: 1000 / m, cpu_ms_per_step: 2 * m, peak_rss_mb: 10 }, load })));
const cfg = (label: string): PeerConfig => ({ label, py: { name: 'py', python: 'python3', torch: '2.0', torchFile: 'torch/__init__.py', blas: 'other' }, torchThreads: 2, mallocTunables: false });

test('bench case line: best-of-rounds ratios and the round-median comparison', () => {
  const line = caseLine(spec, machine, rounds([10, 12, 11]), [
    { cfg: cfg('steady'), unset: {}, result: rounds([10.5, 10.6, 10.4]) },
    { cfg: cfg('lucky'), unset: {}, result: rounds([14, 9, 13]) }, // one fast round, slow typically
  ], []);
  const peer = line.peer as Record<string, unknown>;
  assert.equal(peer.label, 'lucky', 'fastest single round');
  assert.equal((line.ratios as Record<string, number>).ms_per_step, 10 / 9);
  const rm = line.round_medians as Record<string, unknown>;
  assert.deepEqual(rm, { rounds: 3, ours_ms: 11, peer: 'steady', peer_ms: 10.5, speed: 10.5 / 11 });
  const table = formatTable([line]);
  assert.match(table, /median of 3 rounds: ours 11\.00 ms vs steady 10\.50 ms: speed ×0\.955/);
});

test('bench case line: one round has no round-median comparison', () => {
  const line = caseLine(spec, machine, rounds([10]), [{ cfg: cfg('p'), unset: {}, result: rounds([9]) }], []);
  assert.equal(line.round_medians, null);
  assert.doesNotMatch(formatTable([line]), /median of/);
});
