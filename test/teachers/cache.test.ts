/**
 * The on-disk top-k teacher cache: round trip against the in-process LocalTeacher (ids exact, logprobs to
 * fp16 precision), resume after a real SIGKILL of a child process mid-build (no row lost or duplicated),
 * several teachers splitting the work (byte-identical result, a failing teacher dropped), aborts.
 * Corrupt caches, partial reads and the CLI command: cache-read.test.ts.
 *
 * Run with LMD_CACHE_CHILD set, this file is the child process of the kill test instead (no tests).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BatchLoader } from '../../src/data/loader.js';
import { packTokens, type PackedDataset } from '../../src/data/packing.js';
import { UserError } from '../../src/errors.js';
import { loadPretrained } from '../../src/models/registry.js';
import { CachedTeacher, datasetFingerprint, readManifest, type CacheManifest } from '../../src/teachers/cache.js';
import { buildTeacherCache } from '../../src/teachers/cache-build.js';
import { LocalTeacher } from '../../src/teachers/local.js';
import type { Teacher, TeacherBatch, TopK } from '../../src/teachers/teacher.js';
import { loadModelAndTokenizer } from '../../src/cli/model-folder.js';
import { startServer } from '../../src/serve/server.js';
import { OpenAITeacher } from '../../src/teachers/openai.js';
import { FIXTURES, rowLogSumExp } from '../helpers/fixtures.js';
import { englishText, writeTinyModelFolder } from '../serve/helpers.js';
import { batchOfRows, FakeTeacher, randomDataset, rowInput, sleep } from './cache-helpers.js';

const THIS_FILE = fileURLToPath(import.meta.url);
const HF = path.join(FIXTURES, 'hf', 'gpt2-tiny'); // V = 64, n_positions = 32

/** Wraps a teacher: counts calls, optionally sleeps per call or throws from call `failAt` on. */
class Wrapped implements Teacher {
  calls = 0;
  readonly dense: boolean;
  readonly vocabSize: number;
  constructor(private readonly inner: Teacher, readonly name: string, private readonly opts: { delayMs?: number; failAt?: number } = {}) {
    this.dense = inner.dense;
    this.vocabSize = inner.vocabSize;
  }
  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    const n = ++this.calls;
    if (this.opts.delayMs) await sleep(this.opts.delayMs);
    if (this.opts.failAt !== undefined && n >= this.opts.failAt) throw new Error(`${this.name}: connection reset`);
    return this.inner.topk(batch, k);
  }
  logits(batch: TeacherBatch): Promise<Float32Array> { return this.inner.logits(batch); }
  async close(): Promise<void> {}
}

// ------------------------------------------------------------------ child mode (kill test)
interface ChildArgs { dir: string; rows: number; T: number; seed: number; k: number; shardRecords: number; batchSize: number; delayMs: number }
const CHILD = process.env.LMD_CACHE_CHILD;
if (CHILD) {
  const a = JSON.parse(CHILD) as ChildArgs;
  const dataset = randomDataset(a.rows, a.T, 64, a.seed);
  const teacher = new Wrapped(new LocalTeacher(loadPretrained(HF), 'gpt2-tiny'), 'gpt2-tiny', { delayMs: a.delayMs });
  await buildTeacherCache({ teachers: [teacher], dataset, k: a.k, dir: a.dir, shardRecords: a.shardRecords, batchSize: a.batchSize, teacherName: 'gpt2-tiny' });
  process.stdout.write('done\n');
} else {
  registerTests();
}

// ------------------------------------------------------------------ checks
/** fp16 keeps 11 significant bits: |error| ≤ |x|·2^-11 (+ subnormal spacing); 2e-5 covers batch-size numerics. */
const fp16Close = (got: number, want: number): boolean => Math.abs(got - want) <= Math.abs(want) * 2 ** -11 + 2e-5;

/**
 * `got` [R, T, k] must equal the teacher's top-k of each row: ids exact (a swap is allowed only between
 * near-tied entries) and logprobs within fp16 precision. `truth(r)` gives the full sorted distribution [T, V].
 */
function assertRowsMatch(got: TopK, rows: number[], T: number, V: number, truth: (r: number) => TopK): void {
  const k = got.k;
  assert.equal(got.ids.length, rows.length * T * k);
  rows.forEach((r, i) => {
    const tr = truth(r);
    for (let t = 0; t < T; t++) {
      const lpOf = new Map<number, number>();
      for (let j = 0; j < V; j++) lpOf.set(tr.ids[t * V + j], tr.logprobs[t * V + j]);
      for (let j = 0; j < k; j++) {
        const o = (i * T + t) * k + j;
        const id = got.ids[o], want = tr.ids[t * V + j];
        if (id !== want) assert.ok(Math.abs(lpOf.get(id)! - tr.logprobs[t * V + j]) < 1e-5, `row ${r} t ${t} slot ${j}: id ${id} ≠ ${want} and not a near-tie`);
        assert.ok(fp16Close(got.logprobs[o], lpOf.get(id)!), `row ${r} t ${t} slot ${j}: logprob ${got.logprobs[o]} vs ${lpOf.get(id)}`);
      }
    }
  });
}

/** Every row is listed exactly once: shard indices 0..n-1 in order, contiguous row ranges covering [0, rows). */
function assertManifestCovers(m: CacheManifest): void {
  assert.equal(m.complete, true);
  let next = 0;
  m.shards.forEach((s, i) => {
    assert.equal(s.index, i);
    assert.equal(s.firstRow, next);
    next += s.count;
  });
  assert.equal(next, m.rows);
}

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.includes('.tmp-') || f === '.lock');

function registerTests(): void {
  let tmp: string;
  let local: LocalTeacher;
  const truthCache = new Map<string, TopK>();
  /** LocalTeacher's full sorted distribution of one row (batch of 1). */
  const truthOf = (d: PackedDataset) => (r: number): TopK => {
    const key = `${datasetFingerprint(d)}:${r}`;
    let t = truthCache.get(key);
    if (!t) {
      const logits = local.logitsSync({ input: rowInput(d, r), batchSize: 1, seqLen: d.seqLen });
      t = topkSync(logits, 64);
      truthCache.set(key, t);
    }
    return t;
  };
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-cache-'));
    local = new LocalTeacher(loadPretrained(HF), 'gpt2-tiny');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('round trip: cached top-k equals LocalTeacher (by row index and by content), format documented in the manifest', async () => {
    const d = randomDataset(29, 16, 64, 1);
    const dir = path.join(tmp, 'roundtrip');
    const res = await buildTeacherCache({ teachers: [local], dataset: d, k: 8, dir, shardRecords: 8, batchSize: 3 });
    assert.equal(res.rowsComputed, 29);
    const m = readManifest(dir);
    assertManifestCovers(m);
    assert.equal(m.shards.length, 4); // 8 + 8 + 8 + 5
    assert.deepEqual([m.k, m.vocabSize, m.seqLen, m.idBytes, m.recordBytes], [8, 64, 16, 2, 8 * 16 * 4]);
    assert.equal(m.teacher, 'gpt2-tiny');
    assert.equal(m.datasetFingerprint, datasetFingerprint(d));
    assert.deepEqual(leftovers(dir), []);

    const cache = CachedTeacher.open(dir, { dataset: d, verify: true });
    try {
      assert.equal(cache.bytesPerToken, 32); // k · (2 + 2)
      assert.equal(cache.dense, false);
      const all = Array.from({ length: 29 }, (_, i) => i);
      assertRowsMatch(cache.topkForRows(all), all, 16, 64, truthOf(d));
      // a prefix of the stored top-8 is the top-3
      const three = cache.topkForRows([5, 28], 3);
      const eight = cache.topkForRows([5, 28], 8);
      for (let p = 0; p < 2 * 16; p++) for (let j = 0; j < 3; j++) assert.equal(three.ids[p * 3 + j], eight.ids[p * 8 + j]);
      // the trainer's (shuffled) batches are found by content
      const loader = new BatchLoader(d, { batchSize: 5, seed: 7 });
      for (let i = 0; i < 3; i++) {
        const b = loader.next();
        const rows = Array.from(cache.lookupRows(b));
        assert.ok(rows.every((r) => r >= 0));
        for (let j = 0; j < 5; j++) assert.deepEqual(rowInput(d, rows[j]), b.input.subarray(j * 16, (j + 1) * 16));
        const viaContent = await cache.topk(b, 8);
        assert.deepEqual(viaContent, cache.topkForRows(rows, 8));
      }
      await assert.rejects(cache.topk(batchOfRows(randomDataset(1, 16, 64, 99), [0]), 8), (e: Error) => e instanceof UserError && /not in the teacher cache/.test(e.message));
      await assert.rejects(cache.topk(batchOfRows(d, [0]), 9), (e: Error) => e instanceof UserError && /holds the top 8/.test(e.message));
      await assert.rejects(cache.topk({ input: new Int32Array(8), batchSize: 1, seqLen: 8 }, 4), (e: Error) => e instanceof UserError && /sequences of 16 tokens/.test(e.message));
      await assert.rejects(cache.logits(batchOfRows(d, [0])), UserError);
      assert.throws(() => cache.topkForRows([29]), UserError);
    } finally {
      await cache.close();
    }
    // rerunning a finished build computes nothing
    const again = await buildTeacherCache({ teachers: [local], dataset: d, k: 8, dir, batchSize: 3 });
    assert.equal(again.rowsComputed, 0);
    assert.equal(again.resumedRows, 29);
  });

  test('uint32 ids (V > 65536) and records at odd offsets round-trip exactly', async () => {
    const V = 70_000, T = 5, k = 3; // T·k odd: uint32 ids start unaligned in most records
    const fake = new FakeTeacher(V);
    const d = randomDataset(13, T, V, 2);
    const dir = path.join(tmp, 'u32');
    await buildTeacherCache({ teachers: [fake], dataset: d, k, dir, shardRecords: 4, batchSize: 3 });
    const cache = CachedTeacher.open(dir, { dataset: d });
    try {
      assert.equal(cache.manifest.idBytes, 4);
      assert.equal(cache.bytesPerToken, 3 * (4 + 2));
      const rows = Array.from({ length: 13 }, (_, i) => i);
      const got = cache.topkForRows(rows);
      const want = await fake.topk(batchOfRows(d, rows), k);
      assert.deepEqual(got.ids, want.ids);
      for (let i = 0; i < want.logprobs.length; i++) assert.ok(fp16Close(got.logprobs[i], want.logprobs[i]), `${i}: ${got.logprobs[i]} vs ${want.logprobs[i]}`);
      assert.ok(want.ids.some((id) => id > 65535), 'the test exercises ids above uint16');
    } finally {
      await cache.close();
    }
  });

  test('SIGKILL of a child process mid-build (twice), then rerun: every row equals the teacher, none lost or duplicated', { timeout: 60_000 }, async () => {
    const args: ChildArgs = { dir: path.join(tmp, 'killed'), rows: 90, T: 16, seed: 3, k: 6, shardRecords: 5, batchSize: 2, delayMs: 12 };
    const d = randomDataset(args.rows, args.T, 64, args.seed);
    const env: NodeJS.ProcessEnv = { ...process.env, LMD_CACHE_CHILD: JSON.stringify(args) };
    delete env.NODE_TEST_CONTEXT;
    const shardsListed = (): number => {
      try { return (JSON.parse(fs.readFileSync(path.join(args.dir, 'manifest.json'), 'utf8')) as CacheManifest).shards.length; } catch { return 0; }
    };
    for (const [killAt, jitterMs] of [[2, 7], [7, 23]] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', THIS_FILE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          if (shardsListed() >= killAt) {
            clearInterval(timer);
            setTimeout(() => child.kill('SIGKILL'), jitterMs); // mid-batch, mid-write or mid-rename: anywhere
          }
        }, 3);
        child.on('exit', (code, signal) => {
          clearInterval(timer);
          if (signal === 'SIGKILL') resolve();
          else reject(new Error(`child finished before it was killed (code ${code}): ${stderr}`));
        });
      });
      const m = readManifest(args.dir); // always a valid manifest, listing only complete shards
      assert.ok(!m.complete && m.shards.length >= killAt, `killed after ${m.shards.length} shards`);
      const cache = CachedTeacher.open(args.dir, { dataset: d, verify: true, allowPartial: true });
      const rows = m.shards.flatMap((s) => Array.from({ length: s.count }, (_, i) => s.firstRow + i));
      assertRowsMatch(cache.topkForRows(rows), rows, args.T, 64, truthOf(d));
      await cache.close();
    }
    assert.ok(fs.existsSync(path.join(args.dir, '.lock')), 'the killed child left its lock behind (taken over below)');

    // the rerun (same arguments) finishes the job
    const counted = new Wrapped(local, 'gpt2-tiny');
    const res = await buildTeacherCache({ teachers: [counted], dataset: d, k: args.k, dir: args.dir, shardRecords: args.shardRecords, batchSize: args.batchSize, teacherName: 'gpt2-tiny' });
    assert.ok(res.resumedRows >= 35 && res.resumedRows < args.rows, `resumed ${res.resumedRows}`);
    assert.equal(res.resumedRows + res.rowsComputed, args.rows, 'each row computed once by the final run or kept from before');
    assert.equal(counted.calls, (res.rowsComputed / args.shardRecords) * 3, 'only the missing shards were asked for (3 batches each: 2 + 2 + 1 rows)');
    assertManifestCovers(readManifest(args.dir));
    assert.deepEqual(leftovers(args.dir), []);
    const cache = CachedTeacher.open(args.dir, { dataset: d, verify: true });
    const all = Array.from({ length: args.rows }, (_, i) => i);
    assertRowsMatch(cache.topkForRows(all), all, args.T, 64, truthOf(d));
    await cache.close();
  });

  test('crash between shard write and manifest update, stale temp files and lock: the rerun redoes exactly the unlisted shards', async () => {
    const d = randomDataset(20, 16, 64, 4);
    const dir = path.join(tmp, 'window');
    await buildTeacherCache({ teachers: [local], dataset: d, k: 4, dir, shardRecords: 4, batchSize: 4 });
    const full = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    const m = JSON.parse(full) as CacheManifest;
    // shard 3 written but not listed; shard 4 half-written under its final name; a temp file of shard 2
    m.shards = m.shards.filter((s) => s.index !== 3 && s.index !== 4);
    m.complete = false;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
    const s4 = path.join(dir, 'shard-000004.bin');
    fs.truncateSync(s4, 100);
    fs.writeFileSync(path.join(dir, 'shard-000002.bin.tmp-999-abc'), 'partial');
    fs.writeFileSync(path.join(dir, '.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname() }));
    const counted = new Wrapped(local, 'gpt2-tiny');
    const res = await buildTeacherCache({ teachers: [counted], dataset: d, k: 4, dir, batchSize: 4 });
    assert.equal(res.rowsComputed, 8);
    assert.equal(counted.calls, 2);
    assert.equal(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'), full, 'the same manifest as the uninterrupted build');
    assert.deepEqual(leftovers(dir), []);
    const cache = CachedTeacher.open(dir, { dataset: d, verify: true });
    const all = Array.from({ length: 20 }, (_, i) => i);
    assertRowsMatch(cache.topkForRows(all), all, 16, 64, truthOf(d));
    await cache.close();
  });

  test('several teachers split the work (work stealing, concurrency) with a byte-identical result; a failing teacher is dropped', async () => {
    const d = randomDataset(40, 16, 64, 5);
    const one = path.join(tmp, 'one'), many = path.join(tmp, 'many');
    await buildTeacherCache({ teachers: [local], dataset: d, k: 5, dir: one, shardRecords: 6, batchSize: 2, teacherName: 'gpt2-tiny' });
    const a = new Wrapped(local, 'a', { delayMs: 2 });
    const b = new Wrapped(new LocalTeacher(loadPretrained(HF)), 'b', { delayMs: 5 });
    const flaky = new Wrapped(local, 'flaky', { failAt: 3 });
    const logs: string[] = [];
    const progress: number[] = [];
    const res = await buildTeacherCache({
      teachers: [a, b, flaky], concurrency: [2, 1, 1], dataset: d, k: 5, dir: many, shardRecords: 6, batchSize: 2, teacherName: 'gpt2-tiny',
      onLog: (m) => logs.push(m), onProgress: (p) => progress.push(p.rowsDone),
    });
    assert.equal(res.rowsComputed, 40);
    assert.ok(a.calls > 0 && b.calls > 0, `both healthy teachers worked (a ${a.calls}, b ${b.calls})`);
    assert.equal(flaky.calls, 3, 'the flaky teacher was dropped at its first failure');
    assert.ok(logs.some((l) => /flaky failed and is dropped/.test(l)), logs.join('\n'));
    assert.deepEqual(progress, [...progress].sort((x, y) => x - y));
    assert.equal(progress.at(-1), 40);
    for (const f of fs.readdirSync(one)) assert.deepEqual(fs.readFileSync(path.join(many, f)), fs.readFileSync(path.join(one, f)), f);

    // every teacher failing: the error surfaces, committed shards stay
    const dead = path.join(tmp, 'dead');
    await assert.rejects(buildTeacherCache({ teachers: [new Wrapped(local, 'x', { failAt: 4 })], dataset: d, k: 5, dir: dead, shardRecords: 6, batchSize: 2 }),
      (e: Error) => e instanceof UserError && /connection reset/.test(e.message) && /rerun to resume/.test(e.message));
    assert.equal(readManifest(dead).shards.length, 1); // 3 batches of 2 rows = shard 0
    assert.deepEqual(leftovers(dead), []);
  });

  test('two OpenAI-compatible servers (lmdistill serve over loopback) split the work: same cache as the in-process teacher', { timeout: 30_000 }, async () => {
    const folder = writeTinyModelFolder();
    const { model, tokenizer } = loadModelAndTokenizer(folder);
    const servers = await Promise.all([0, 1].map(() => startServer(model, tokenizer, { modelName: 'tiny', port: 0, maxLogprobs: 64 })));
    try {
      const d = packTokens(Int32Array.from(tokenizer.encode(englishText(3000))), 16);
      const viaLocal = path.join(tmp, 'http-local'), viaHttp = path.join(tmp, 'http');
      await buildTeacherCache({ teachers: [new LocalTeacher(model)], dataset: d, k: 6, dir: viaLocal, shardRecords: 16, batchSize: 4, teacherName: 'tiny' });
      const clients = servers.map((s) => new OpenAITeacher({ baseURL: s.url, tokenizer, model: 'tiny', concurrency: 2 }));
      const res = await buildTeacherCache({ teachers: clients, concurrency: 2, dataset: d, k: 6, dir: viaHttp, shardRecords: 16, batchSize: 4, teacherName: 'tiny' });
      assert.equal(res.rowsComputed, d.length);
      await Promise.all(clients.map((c) => c.close()));
      const a = CachedTeacher.open(viaLocal, { dataset: d }), b = CachedTeacher.open(viaHttp, { dataset: d });
      const rows = Array.from({ length: d.length }, (_, i) => i);
      const ta = a.topkForRows(rows), tb = b.topkForRows(rows);
      for (let i = 0; i < ta.ids.length; i++) {
        // the server computes in its own batches: allow near-ties to swap and one fp16 step
        if (ta.ids[i] !== tb.ids[i]) assert.ok(Math.abs(ta.logprobs[i] - tb.logprobs[i]) < 1e-3, `id at ${i}`);
        assert.ok(fp16Close(tb.logprobs[i], ta.logprobs[i]) || Math.abs(tb.logprobs[i] - ta.logprobs[i]) <= Math.abs(ta.logprobs[i]) * 2 ** -10, `logprob at ${i}`);
      }
      await a.close();
      await b.close();
    } finally {
      await Promise.all(servers.map((s) => s.close()));
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  test('abort: the shards already started are finished and committed (no teacher call wasted), the rerun does the rest', async () => {
    const d = randomDataset(60, 8, 64, 12);
    const dir = path.join(tmp, 'abort');
    const fake = new FakeTeacher(64);
    const t = new Wrapped(fake, 'fake', { delayMs: 1 });
    const ac = new AbortController();
    const res = await buildTeacherCache({
      teachers: [t], concurrency: 3, dataset: d, k: 4, dir, shardRecords: 10, batchSize: 4, signal: ac.signal,
      onProgress: (p) => { if (p.shardsDone >= 1) ac.abort(); },
    });
    const m = res.manifest;
    assert.ok(!m.complete && m.shards.length >= 1 && m.shards.length < 6, `${m.shards.length} shards committed`);
    assert.equal(t.calls, m.shards.length * 3, 'every batch asked for belongs to a committed shard (3 batches per shard: 4 + 4 + 2 rows)');
    assert.deepEqual(leftovers(dir), []);
    const rest = await buildTeacherCache({ teachers: [fake], dataset: d, k: 4, dir, batchSize: 4 });
    assert.equal(rest.rowsComputed + rest.resumedRows, 60);
    assertManifestCovers(rest.manifest);
  });

}

/** Sorted full distribution [T, V] from logits [T, V] (as topkFromLogits with k = V). */
function topkSync(logits: Float32Array, V: number): TopK {
  const T = logits.length / V;
  const ids = new Int32Array(T * V), logprobs = new Float32Array(T * V);
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    const lse = rowLogSumExp(row);
    const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => row[b] - row[a] || a - b);
    order.forEach((id, j) => { ids[t * V + j] = id; logprobs[t * V + j] = row[id] - lse; });
  }
  return { k: V, ids, logprobs };
}
