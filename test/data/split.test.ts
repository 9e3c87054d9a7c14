import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/errors.js';
import { splitDocuments, splitTokens } from '../../src/data/split.js';
import { loadCorpus } from '../../src/data/corpus.js';

const docs = Array.from({ length: 1000 }, (_, i) => `doc${i}`);

test('splitDocuments: deterministic, disjoint, covers everything, keeps order, fraction ≈ valFraction', () => {
  const a = splitDocuments(docs, { valFraction: 0.1, seed: 1 });
  assert.deepEqual(splitDocuments(docs, { valFraction: 0.1, seed: 1 }), a);
  assert.equal(a.train.length + a.val.length, docs.length);
  assert.deepEqual([...a.train, ...a.val].sort(), [...docs].sort());
  const idx = (d: string): number => Number(d.slice(3));
  assert.deepEqual(a.val.map(idx), [...a.val.map(idx)].sort((x, y) => x - y));
  assert.ok(Math.abs(a.val.length - 100) < 35, `val ${a.val.length}`);
  const b = splitDocuments(docs, { valFraction: 0.1, seed: 2 });
  assert.notDeepEqual(b.val, a.val);
});

test('splitDocuments: appending documents never moves existing ones to the other side', () => {
  const small = splitDocuments(docs.slice(0, 500), { valFraction: 0.2, seed: 7 });
  const big = splitDocuments(docs, { valFraction: 0.2, seed: 7 });
  const bigVal = new Set(big.val);
  for (const d of small.val) assert.ok(bigVal.has(d), d);
  for (const d of small.train) assert.ok(!bigVal.has(d), d);
});

test('splitDocuments: both sides non-empty for ≥ 2 docs; fraction 0 or 1 doc → all train; bad fraction → UserError', () => {
  for (let seed = 0; seed < 50; seed++) {
    const s = splitDocuments(['a', 'b', 'c'], { valFraction: 0.01, seed });
    assert.equal(s.val.length, 1);
    const t = splitDocuments(['a', 'b'], { valFraction: 0.99, seed });
    assert.equal(t.train.length, 1);
    assert.equal(t.val.length, 1);
  }
  assert.deepEqual(splitDocuments(['only'], { valFraction: 0.5, seed: 0 }), { train: ['only'], val: [] });
  assert.deepEqual(splitDocuments(['a', 'b'], { valFraction: 0, seed: 0 }), { train: ['a', 'b'], val: [] });
  for (const f of [-0.1, 1, 2, NaN]) assert.throws(() => splitDocuments(docs, { valFraction: f, seed: 0 }), UserError);
});

test('splitTokens: the last valFraction of the stream, as views', () => {
  const t = Int32Array.from({ length: 1000 }, (_, i) => i);
  const { train, val } = splitTokens(t, 0.1);
  assert.equal(train.length, 900);
  assert.equal(val.length, 100);
  assert.equal(val[0], 900);
  assert.equal(train.buffer, t.buffer);
  assert.equal(splitTokens(t, 0).val.length, 0);
  assert.equal(splitTokens(Int32Array.of(1, 2, 3), 0.5).train.length, 2); // ceil keeps train the larger side
  assert.throws(() => splitTokens(t, 1), UserError);
});

test('the embedded corpus splits into ~10% validation chapters', () => {
  const { train, val } = splitDocuments(loadCorpus({ kind: 'embedded', name: 'moby-dick' }), { valFraction: 0.1, seed: 0 });
  assert.equal(train.length + val.length, 139);
  assert.ok(val.length >= 5 && val.length <= 25, `${val.length} validation chapters`);
});
