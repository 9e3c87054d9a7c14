/**
 * Reading a teacher cache: corrupt, truncated or mismatched caches are UserErrors naming the file; reads
 * touch only the records asked for; and the `lmdistill teacher-cache` command end to end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { UserError } from '../../src/errors.js';
import { createModel, savePretrained } from '../../src/models/registry.js';
import { CachedTeacher, readManifest } from '../../src/teachers/cache.js';
import { buildTeacherCache } from '../../src/teachers/cache-build.js';
import { Rng } from '../../src/util/rng.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { batchOfRows, FakeTeacher, randomDataset } from './cache-helpers.js';

const HF = path.join(FIXTURES, 'hf', 'gpt2-tiny'); // V = 64, n_positions = 32
let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-cache-read-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('corrupt or mismatched caches are UserErrors naming the file', async () => {
  const V = 64, d = randomDataset(12, 8, V, 6);
  const src = path.join(tmp, 'pristine');
  await buildTeacherCache({ teachers: [new FakeTeacher(V)], dataset: d, k: 4, dir: src, shardRecords: 5, batchSize: 5 });
  let n = 0;
  const copy = (): string => {
    const dir = path.join(tmp, `corrupt${n++}`);
    fs.cpSync(src, dir, { recursive: true });
    return dir;
  };
  const shard1 = (dir: string): string => path.join(dir, 'shard-000001.bin');
  const rejects = (f: () => unknown, re: RegExp): void => assert.throws(f, (e: Error) => e instanceof UserError && re.test(e.message), String(re));

  let dir = copy();
  fs.truncateSync(shard1(dir), fs.statSync(shard1(dir)).size - 3);
  rejects(() => CachedTeacher.open(dir), /shard-000001\.bin: \d+ bytes, expected \d+ \(truncated/);

  dir = copy();
  fs.rmSync(shard1(dir));
  rejects(() => CachedTeacher.open(dir), /shard-000001\.bin: cannot open \(ENOENT\)/);

  dir = copy(); // a flipped bit inside a record: caught by its CRC on read, and by sha256 with verify
  const fd = fs.openSync(shard1(dir), 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, 64 + 20); // record 0 of shard 1 = row 5
  byte[0] ^= 0x10;
  fs.writeSync(fd, byte, 0, 1, 64 + 20);
  fs.closeSync(fd);
  rejects(() => CachedTeacher.open(dir, { verify: true }), /shard-000001\.bin is corrupt \(sha256 mismatch\)/);
  const c = CachedTeacher.open(dir);
  assert.equal(c.topkForRows([4, 9]).k, 4); // other shards and records are fine
  rejects(() => c.topkForRows([5]), /shard-000001\.bin is corrupt \(record of row 5 fails its CRC-32\)/);
  await c.close();

  dir = copy(); // a header from another cache
  const f = fs.openSync(shard1(dir), 'r+');
  fs.writeSync(f, Buffer.from([9]), 0, 1, 12);
  fs.closeSync(f);
  rejects(() => CachedTeacher.open(dir), /shard-000001\.bin: header does not match/);

  dir = copy();
  fs.writeFileSync(path.join(dir, 'manifest.json'), '{"format": "lmdistill-topk-cache", "vers');
  rejects(() => CachedTeacher.open(dir), /manifest\.json is corrupt \(invalid JSON/);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...readManifest(src), k: 0 }));
  rejects(() => CachedTeacher.open(dir), /manifest\.json is not a valid teacher-cache manifest: k:/);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...readManifest(src), recordBytes: 7 }));
  rejects(() => CachedTeacher.open(dir), /manifest\.json is inconsistent: recordBytes/);
  fs.rmSync(path.join(dir, 'manifest.json'));
  rejects(() => CachedTeacher.open(dir), /is not a teacher cache \(no manifest\.json\)/);

  // wrong dataset, incomplete cache, resuming with other settings
  rejects(() => CachedTeacher.open(src, { dataset: randomDataset(12, 8, V, 7) }), /built for a different dataset \(12 rows of 8 tokens.*with different tokens/);
  rejects(() => CachedTeacher.open(src, { dataset: randomDataset(13, 8, V, 6) }), /built for a different dataset/);
  dir = copy();
  const m = readManifest(dir);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...m, shards: m.shards.slice(0, 1), complete: false }));
  rejects(() => CachedTeacher.open(dir), /is incomplete \(1\/3 shards\): rerun/);
  const partial = CachedTeacher.open(dir, { allowPartial: true });
  rejects(() => partial.topkForRows([7]), /row 7 is not in the teacher cache .* yet/);
  await partial.close();
  await assert.rejects(buildTeacherCache({ teachers: [new FakeTeacher(V)], dataset: d, k: 3, dir: src, batchSize: 5 }), (e: Error) => e instanceof UserError && /another k \(4 there, 3 here\)/.test(e.message));
  await assert.rejects(buildTeacherCache({ teachers: [new FakeTeacher(V)], dataset: randomDataset(12, 8, V, 8), k: 4, dir: src }), (e: Error) => e instanceof UserError && /another dataset/.test(e.message));
  await assert.rejects(buildTeacherCache({ teachers: [new FakeTeacher(V, 'other')], dataset: d, k: 4, dir: src }), (e: Error) => e instanceof UserError && /teacher \("fake" there, "other" here/.test(e.message));
  await assert.rejects(buildTeacherCache({ teachers: [new FakeTeacher(32)], dataset: d, k: 4, dir: path.join(tmp, 'vocab') }), (e: Error) => e instanceof UserError && /vocabulary has 32 tokens/.test(e.message));
});

test('reading touches only the records asked for (never whole shards)', async () => {
  const d = randomDataset(400, 16, 64, 9);
  const dir = path.join(tmp, 'big');
  await buildTeacherCache({ teachers: [new FakeTeacher(64)], dataset: d, k: 8, dir, shardRecords: 400, batchSize: 50 });
  const m = readManifest(dir);
  const shardBytes = m.shards[0].bytes; // ≈ 210 KB
  const cache = CachedTeacher.open(dir, { dataset: d });
  try {
    assert.equal(cache.stats.bytesRead, 0, 'open reads headers only (through a separate check)');
    cache.topkForRows([5, 200, 399]);
    assert.equal(cache.stats.bytesRead, 3 * m.recordBytes + 4 * 400, 'three records + the CRC table');
    await cache.topk(batchOfRows(d, [17, 300]), 8);
    assert.equal(cache.stats.bytesRead, 5 * m.recordBytes + 4 * 400 + 8 * 400, '+ two records + the row-key table');
    assert.ok(cache.stats.bytesRead < shardBytes / 10, `${cache.stats.bytesRead} of ${shardBytes} bytes`);
    assert.equal(cache.stats.records, 5);
  } finally {
    await cache.close();
  }
});

describe('lmdistill teacher-cache', () => {
  test('scores a config\'s split with a model folder, resumes as a no-op, and rejects a teacher with a smaller vocabulary', async () => {
    const { registerTeacherCache } = await import('../../src/cli/teacher-cache.js');
    const root = path.join(tmp, 'cli');
    const dataDir = path.join(root, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    const words = 'the whale ship sea captain ahab white boat harpoon water deep ocean'.split(' ');
    const rng = new Rng(11);
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(dataDir, `d${i}.txt`), Array.from({ length: 150 }, () => words[rng.int(words.length)]).join(' '));
    const teacherDir = path.join(root, 'teacher');
    savePretrained(createModel({ model_type: 'gpt2', vocab_size: 280, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, 1), teacherDir);
    const cacheDir = path.join(root, 'cache');
    const cfg = path.join(root, 'distill.yaml');
    fs.writeFileSync(cfg, [
      `out_dir: ${JSON.stringify(path.join(root, 'run'))}`,
      `data: { source: { dir: ${JSON.stringify(dataDir)} }, seq_len: 8, val_fraction: 0.3 }`,
      'tokenizer: { vocab_size: 270 }',
      'model: { model_type: gpt2, n_embd: 16, n_layer: 1, n_head: 2 }',
      `distill: { teacher: { cache: ${JSON.stringify(cacheDir)} }, top_k: 4 }`,
    ].join('\n') + '\n');
    const run = async (args: string[]): Promise<string> => {
      const program = new Command().exitOverride();
      registerTeacherCache(program);
      const out: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      const errWrite = process.stderr.write.bind(process.stderr);
      process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
      process.stderr.write = (() => true) as typeof process.stderr.write; // progress lines
      try {
        await program.parseAsync(['teacher-cache', ...args], { from: 'user' });
      } finally {
        process.stdout.write = write;
        process.stderr.write = errWrite;
      }
      return out.join('');
    };
    const first = JSON.parse(await run(['--config', cfg, '--teacher', teacherDir, '--shard-records', '16', '--json'])) as Record<string, number | string | boolean>;
    assert.equal(first.complete, true);
    assert.equal(first.k, 4); // from distill.top_k
    assert.equal(first.dir, cacheDir); // from distill.teacher.cache
    assert.equal(first.bytes_per_token, 16);
    assert.equal(first.rows_computed, first.rows);
    const m = readManifest(cacheDir);
    assert.equal(m.teacher, `local:${teacherDir}`);
    assert.match(m.tokenizer ?? '', /^sha256:[0-9a-f]{64}$/);
    const second = JSON.parse(await run(['--config', cfg, '--teacher', teacherDir, '--json'])) as Record<string, number>;
    assert.equal(second.rows_computed, 0);
    assert.equal(second.rows_resumed, first.rows);
    const val = await run(['--config', cfg, '--teacher', teacherDir, '--split', 'val', '--out', path.join(root, 'valcache'), '--k', '2']);
    assert.match(val, /wrote .*valcache.*manifest\.json: \d+ sequences × 8 tokens, top-2, 8 B\/token/);
    await assert.rejects(run(['--config', cfg, '--teacher', HF]), (e: Error) => e instanceof UserError && /has 64 tokens but the tokenizer/.test(e.message));
    await assert.rejects(run(['--config', cfg, '--teacher', path.join(root, 'missing')]), (e: Error) => e instanceof UserError && /no such file or directory/.test(e.message));
  });
});
