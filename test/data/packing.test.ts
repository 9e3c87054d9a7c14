import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/errors.js';
import { PackedDataset, joinDocuments, packDocuments, packTokens } from '../../src/data/packing.js';

test('joinDocuments puts EOS between documents only, skipping empty ones', () => {
  assert.deepEqual([...joinDocuments([[1, 2], [], Int32Array.of(3), [4, 5]], 0)], [1, 2, 0, 3, 0, 4, 5]);
  assert.deepEqual([...joinDocuments([[1, 2], [3]])], [1, 2, 3]);
  assert.equal(joinDocuments([]).length, 0);
});

test('packTokens: rows of T+1 with stride T; every transition appears exactly once; tail dropped', () => {
  const stream = Int32Array.from({ length: 23 }, (_, i) => 100 + i);
  const ds = packTokens(stream, 5); // floor(22 / 5) = 4 rows
  assert.equal(ds.length, 4);
  assert.equal(ds.seqLen, 5);
  assert.equal(ds.data.length, 4 * 6);
  assert.deepEqual([...ds.get(0)], [100, 101, 102, 103, 104, 105]);
  assert.deepEqual([...ds.get(1)], [105, 106, 107, 108, 109, 110]);
  const pairs = new Set<string>();
  for (let i = 0; i < ds.length; i++) {
    const r = ds.get(i);
    for (let t = 0; t < 5; t++) {
      const key = `${r[t]}>${r[t + 1]}`;
      assert.ok(!pairs.has(key), key);
      pairs.add(key);
    }
  }
  assert.equal(pairs.size, 20); // transitions 100>101 … 119>120; 120>121 and beyond are in the dropped tail
  assert.throws(() => ds.get(4), RangeError);
  assert.equal(packTokens(Int32Array.from({ length: 6 }), 5).length, 1); // exactly T+1 tokens → 1 row
});

test('packDocuments = pack(join(docs, eos)); too little data and bad seqLen are UserErrors', () => {
  const ds = packDocuments([[1, 2, 3], [4, 5, 6]], { seqLen: 3, eosId: 9 });
  assert.deepEqual([...ds.data], [1, 2, 3, 9, 9, 4, 5, 6]);
  assert.throws(() => packDocuments([[1, 2]], { seqLen: 4 }), (e: unknown) => e instanceof UserError && /2 tokens; packing needs at least seqLen \+ 1 = 5/.test(e.message));
  assert.throws(() => packTokens(Int32Array.of(1, 2, 3), 0), UserError);
  assert.throws(() => packTokens(new Int32Array(0), 4), UserError);
});

test('PackedDataset wraps existing rows and validates their size', () => {
  const ds = new PackedDataset(Int32Array.from({ length: 12 }, (_, i) => i), 2);
  assert.equal(ds.length, 4);
  assert.deepEqual([...ds.get(3)], [9, 10, 11]);
  assert.throws(() => new PackedDataset(new Int32Array(10), 2), RangeError);
});
