/**
 * Smoke test of the benchmark harness: bench/run.ts on tiny custom cases (1 timed step) with --json must
 * print one JSON line per case whose numbers are present and finite — for our side always, for the
 * PyTorch peers when an interpreter with torch is installed (otherwise the line must say how to get one).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerBench } from '../../src/cli/bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TINY_KD = { name: 'tiny-kd', kind: 'kd', vocab: 48, seq: 8, batch: 2, student: { d: 16, layers: 1, heads: 2 }, teacher: { d: 24, layers: 1, heads: 2 } };
const TINY_GEMM = { name: 'tiny-gemm', kind: 'gemm', m: 32, n: 16, k: 8 };

type Rec = Record<string, unknown>;

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function jsonLines(stdout: string): Rec[] {
  const lines = stdout.trim().split('\n');
  for (const l of lines) assert.ok(l.startsWith('{'), `--json prints only JSON lines, got: ${l.slice(0, 80)}`);
  return lines.map((l) => JSON.parse(l) as Rec);
}

function assertFinite(rec: Rec, keys: string[], who: string): void {
  for (const k of keys) {
    assert.equal(typeof rec[k], 'number', `${who}.${k} missing (got ${JSON.stringify(rec[k])})`);
    assert.ok(Number.isFinite(rec[k] as number) && (rec[k] as number) >= 0, `${who}.${k} = ${String(rec[k])} is not finite`);
  }
}

const COMMON = ['ms_per_step', 'ms_mean', 'ms_min', 'ms_max', 'cpu_ms_per_step', 'minflt_per_step', 'peak_rss_mb', 'rss_start_mb', 'steps', 'warmup'];

test('ours only: one finite JSON line per tiny case', async () => {
  const r = await runBench(['--json', '--no-peers', '--steps', '1', '--warmup', '0', '--case', JSON.stringify(TINY_KD), '--case', JSON.stringify(TINY_GEMM)]);
  assert.equal(r.code, 0, r.stderr);
  const [kd, gemm] = jsonLines(r.stdout);
  assert.equal(kd.case, 'tiny-kd');
  assert.equal(gemm.case, 'tiny-gemm');
  for (const line of [kd, gemm]) {
    const ours = line.ours as Rec;
    assert.ok(ours.backend === 'ref' || ours.backend === 'native', `backend ${String(ours.backend)}`);
    assertFinite(ours, COMMON, `${String(line.case)}.ours`);
    assert.equal(line.peer, null);
    assert.deepEqual(line.peers, []);
    assert.ok((line.notes as string[]).some((n) => n.includes('--no-peers')));
    assert.equal(typeof (line.machine as Rec).cores, 'number');
  }
  assertFinite(kd.ours as Rec, ['tokens_per_s', 'loss_first', 'loss_last'], 'kd.ours');
  assertFinite(gemm.ours as Rec, ['gflops'], 'gemm.ours');
});

test('with the PyTorch peers: every peer setting reported, the best one picked, ratios finite', async (t) => {
  const r = await runBench(['--json', '--malloc', 'tunables', '--steps', '1', '--warmup', '0', '--case', JSON.stringify(TINY_KD)]);
  assert.equal(r.code, 0, r.stderr);
  const [line] = jsonLines(r.stdout);
  assertFinite(line.ours as Rec, [...COMMON, 'tokens_per_s'], 'ours');
  const peers = line.peers as Rec[];
  if (!peers.length) {
    const notes = (line.notes as string[]).join(' ');
    assert.match(notes, /apt-get install -y python3-torch libopenblas0-pthread/);
    t.diagnostic(`no PyTorch peer on this machine, peer part skipped: ${notes}`);
    return;
  }
  for (const p of peers) {
    assert.equal(p.ok, true, `peer ${String(p.label)} failed: ${String(p.error)}`);
    assertFinite(p, [...COMMON, 'tokens_per_s', 'loss_first', 'torch_threads'], String(p.label));
    assert.equal(p.malloc_tunables, true);
    assert.equal(typeof p.torch, 'string');
    assert.equal(typeof (p.threads as Rec).torch_threads, 'number');
    assert.equal(typeof p.unset_env, 'object');
  }
  const best = line.peer as Rec;
  assert.ok(peers.some((p) => p.label === best.label));
  assertFinite(best, ['tokens_per_s', 'ms_per_step', 'peak_rss_mb'], 'best peer');
  assertFinite(line.ratios as Rec, ['tokens_per_s', 'ms_per_step', 'peak_rss_mb'], 'ratios');
  // same init scheme and objective on random tokens: both first losses sit near 0.5·ln V (KL ≈ 0 at init)
  const bestEntry = peers.find((p) => p.label === best.label)!;
  for (const loss of [(line.ours as Rec).loss_first as number, bestEntry.loss_first as number]) {
    assert.ok(Math.abs(loss - 0.5 * Math.log(TINY_KD.vocab)) < 0.2, `first loss ${loss} vs 0.5·ln V = ${0.5 * Math.log(TINY_KD.vocab)}`);
  }
});

test('an unknown case name or a bad --case is a usage error (exit 2)', async () => {
  const r1 = await runBench(['no-such-case', '--no-peers']);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /unknown case "no-such-case"; known: kd-small, kd-wide, gemm/);
  const r2 = await runBench(['--no-peers', '--case', '{"name":"x","kind":"gemm","m":4,"n":4}']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--case #1: k/);
});

test('registerBench adds `lmdistill bench` with the documented options', () => {
  const program = new Command('lmdistill');
  registerBench(program);
  const bench = program.commands.find((c) => c.name() === 'bench');
  assert.ok(bench);
  const flags = bench.options.map((o) => o.long);
  for (const f of ['--json', '--steps', '--backend', '--warmup', '--no-peers']) assert.ok(flags.includes(f), `missing ${f}`);
});
