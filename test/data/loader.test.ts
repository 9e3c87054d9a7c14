import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/errors.js';
import { BatchLoader, type Batch } from '../../src/data/loader.js';
import { packTokens, type PackedDataset } from '../../src/data/packing.js';
import { loadCorpus } from '../../src/data/corpus.js';

/** Dataset whose row i starts with token i*1000, so a batch reveals which rows it holds. */
function dataset(rows: number, T = 4): PackedDataset {
  const stream = new Int32Array(rows * T + 1);
  for (let r = 0; r < rows; r++) for (let t = 0; t < T; t++) stream[r * T + t] = r * 1000 + t;
  stream[rows * T] = -1;
  return packTokens(stream, T);
}
const rowsOf = (b: Batch): number[] => Array.from({ length: b.batchSize }, (_, i) => b.input[i * b.seqLen] / 1000);
const clone = (b: Batch): Batch => ({ ...b, input: b.input.slice(), target: b.target.slice() });

test('batches are [B*T] input/target with target = input shifted by one', () => {
  const ds = dataset(10, 4);
  const b = new BatchLoader(ds, { batchSize: 3, seed: 1 }).next();
  assert.equal(b.batchSize, 3);
  assert.equal(b.seqLen, 4);
  assert.equal(b.input.length, 12);
  for (let i = 0; i < 3; i++) {
    const r = ds.get(rowsOf(b)[i]);
    assert.deepEqual([...b.input.subarray(i * 4, i * 4 + 4)], [...r.subarray(0, 4)]);
    assert.deepEqual([...b.target.subarray(i * 4, i * 4 + 4)], [...r.subarray(1)]);
  }
});

test('each epoch is a new permutation covering every row once (dropLast drops the remainder)', () => {
  const loader = new BatchLoader(dataset(10), { batchSize: 3, seed: 5 });
  assert.equal(loader.batchesPerEpoch, 3);
  const epochs: number[][] = [];
  for (let e = 0; e < 4; e++) {
    const seen: number[] = [];
    for (let k = 0; k < 3; k++) seen.push(...rowsOf(loader.next()));
    assert.equal(loader.epoch, e);
    assert.equal(new Set(seen).size, 9);
    epochs.push(seen);
  }
  assert.ok(new Set(epochs.map((e) => e.join())).size > 1, 'permutation should change between epochs');
  const orders = [new BatchLoader(dataset(10), { batchSize: 3, seed: 5 }), new BatchLoader(dataset(10), { batchSize: 3, seed: 6 })].map((l) => rowsOf(l.next()).join());
  assert.notEqual(orders[0], orders[1]);
});

test('no shuffle + keep last: sequential order and a final partial batch (validation use)', () => {
  const loader = new BatchLoader(dataset(7), { batchSize: 3, shuffle: false, dropLast: false });
  assert.equal(loader.batchesPerEpoch, 3);
  assert.deepEqual([loader.next(), loader.next(), loader.next()].map(rowsOf), [[0, 1, 2], [3, 4, 5], [6]]);
  assert.deepEqual(rowsOf(loader.next()), [0, 1, 2]);
  assert.equal(loader.epoch, 1);
});

test('resume: 7 batches, save state (through JSON), 5 more == restore into a fresh loader → the same 5', () => {
  for (const [rows, B] of [[10, 3], [40, 4], [9, 3]] as const) {
    const ds = dataset(rows);
    const a = new BatchLoader(ds, { batchSize: B, seed: 42 });
    for (let i = 0; i < 7; i++) a.next(); // crosses epoch boundaries for the small datasets
    const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<BatchLoader['state']>;
    const want = Array.from({ length: 5 }, () => clone(a.next()));
    const b = new BatchLoader(ds, { batchSize: B, seed: 999 }); // seed is irrelevant once restored
    b.restore(saved);
    const got = Array.from({ length: 5 }, () => b.next());
    assert.deepEqual(got, want, `rows=${rows} B=${B}`);
    assert.deepEqual(b.state(), a.state());
  }
});

test('resume at every position of several epochs matches an uninterrupted run', () => {
  const ds = dataset(11);
  const ref = new BatchLoader(ds, { batchSize: 2, seed: 3 });
  const all = Array.from({ length: 40 }, () => rowsOf(ref.next()).join());
  for (let k = 0; k < 30; k++) {
    const a = new BatchLoader(ds, { batchSize: 2, seed: 3 });
    for (let i = 0; i < k; i++) a.next();
    const b = new BatchLoader(ds, { batchSize: 2, seed: 0 });
    b.restore(a.state());
    for (let i = k; i < 40; i++) assert.equal(rowsOf(b.next()).join(), all[i], `resumed after ${k}, batch ${i}`);
  }
});

test('restore rejects malformed or mismatched states; too-small datasets are UserErrors', () => {
  const l = new BatchLoader(dataset(10), { batchSize: 2, seed: 1 });
  const good = l.state();
  assert.throws(() => l.restore({ ...good, datasetLength: 11 }), (e: unknown) => e instanceof UserError && /saved for a dataset of 11 sequences, but this one has 10/.test(e.message));
  assert.throws(() => l.restore({ ...good, rng: [0, 0, 0, 0] }), UserError);
  assert.throws(() => l.restore({ ...good, index: -1 }), UserError);
  assert.throws(() => l.restore({ ...good, index: 11 }), UserError);
  assert.throws(() => l.restore(null as unknown as typeof good), UserError);
  assert.throws(() => new BatchLoader(dataset(3), { batchSize: 4 }), (e: unknown) => e instanceof UserError && /3 sequences .* fewer than one batch of 4/.test(e.message));
  assert.throws(() => new BatchLoader(dataset(3), { batchSize: 0 }), UserError);
});

test('end to end on the embedded corpus: bytes as tokens → packed → batches', () => {
  const text = loadCorpus({ kind: 'embedded', name: 'moby-dick' }).join('\n');
  const tokens = Int32Array.from(Buffer.from(text, 'utf8'));
  const ds = packTokens(tokens, 256);
  assert.ok(ds.length > 4000);
  const loader = new BatchLoader(ds, { batchSize: 16, seed: 0 });
  const b = loader.next();
  assert.equal(b.input.length, 16 * 256);
  assert.ok(b.input.every((t) => t >= 0 && t < 256));
});
