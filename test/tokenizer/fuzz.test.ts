/**
 * Fuzz: thousands of corrupted tokenizer.json files — byte flips, truncation, deleted/duplicated/renamed
 * keys, wrong types, absurd numbers, huge arrays, deep nesting, non-JSON — written as real files and
 * loaded. Each must either load (and then encode/decode without crashing) or throw a UserError whose
 * message starts with the file path. Seeded, so a failure reproduces: the message gives seed and case.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import { BpeTokenizer, MAX_MERGES, MAX_TOKEN_ID } from '../../src/tokenizer/index.js';
import { stringifyReadable } from '../../src/tokenizer/io.js';
import { mobyDickLines, seededRandom } from './helpers.js';

const SEED = 20240601;
const CASES = 3000;
const SAMPLE = 'Call me Ishmael.<|endoftext|> Some years ago — naïve 😀\n\t<pad>end';

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

function deepArray(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const KEY_NAMES = ['type', 'vocab', 'merges', 'model', 'id', 'content', 'special', 'added_tokens', 'pre_tokenizer', 'decoder', 'unk_token', 'use_regex', '__proto__', 'constructor', ''];

function weirdValue(r: Rand): unknown {
  switch (int(r, 22)) {
    case 0: return null;
    case 1: return true;
    case 2: return false;
    case 3: return 0;
    case 4: return -1;
    case 5: return 1.5;
    case 6: return 2 ** 31;
    case 7: return 2 ** 53 + 2;
    case 8: return 1e308;
    case 9: return MAX_TOKEN_ID;
    case 10: return MAX_TOKEN_ID - 1;
    case 11: return '';
    case 12: return pick(r, ['x', 'Ġt', 'a b', 'BPE', 'ByteLevel', '1.0', '<|endoftext|>', '\u0000', '\ud800']);
    case 13: return [];
    case 14: return {};
    case 15: return [[]];
    case 16: return { type: pick(r, ['BPE', 'ByteLevel', 'NFC', 'Sequence']) };
    case 17: return 'x'.repeat(20_000);
    case 18: return new Array<number>(20_000).fill(0);
    case 19: return deepArray(100 + int(r, 400)); // deeper nesting: see the dedicated test below
    case 20: return ['a', 'b'];
    default: return [pick(r, ['Ġ', 'h', 'e', 't']), pick(r, ['t', 'he', 'e', 'zz'])];
  }
}

/** Every container path in `v` (objects and arrays), bounded so huge vocabs don't dominate. */
function containers(v: unknown, out: unknown[] = [], depth = 0): unknown[] {
  if (v === null || typeof v !== 'object' || depth > 6) return out;
  out.push(v);
  const children = Array.isArray(v) ? v : Object.values(v);
  for (const c of children.slice(0, 40)) containers(c, out, depth + 1);
  return out;
}

function mutateStructure(r: Rand, doc: unknown): string {
  const targets = containers(doc);
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const t = pick(r, targets);
    if (Array.isArray(t)) {
      const op = int(r, 4);
      if (op === 0 && t.length > 0) t.splice(int(r, t.length), 1);
      else if (op === 1 && t.length > 0) t.push(t[int(r, t.length)]); // duplicate an element
      else if (op === 2 && t.length > 0) t[int(r, t.length)] = weirdValue(r);
      else t.splice(int(r, t.length + 1), 0, weirdValue(r));
    } else {
      const o = t as Record<string, unknown>;
      const keys = Object.keys(o);
      const key = keys.length > 0 ? pick(r, keys) : 'x';
      const op = int(r, 5);
      if (op === 0) delete o[key];
      else if (op === 1) o[key] = weirdValue(r);
      else if (op === 2) {
        Object.defineProperty(o, pick(r, KEY_NAMES), { value: o[key], enumerable: true, configurable: true, writable: true });
        delete o[key]; // renamed
      } else if (op === 3 && keys.length > 1) o[key] = o[pick(r, keys)]; // value from a sibling (e.g. an id collision)
      else o[pick(r, keys.length > 0 ? keys : KEY_NAMES)] = weirdValue(r);
    }
  }
  const text = r() < 0.5 ? JSON.stringify(doc) : stringifyReadable(doc);
  if (r() < 0.3) {
    // Duplicate a key at the text level (JSON.parse keeps the last occurrence).
    const keyAt = [...text.matchAll(/"([^"\\]{0,20})":/g)];
    if (keyAt.length > 0) {
      const m = pick(r, keyAt);
      return `${text.slice(0, m.index)}"${m[1]}":${JSON.stringify(weirdValue(r))},${text.slice(m.index)}`;
    }
  }
  return text;
}

function mutateBytes(r: Rand, text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  switch (int(r, 5)) {
    case 0: { // flip some bytes
      const n = 1 + int(r, 8);
      for (let i = 0; i < n; i++) b[int(r, b.length)] = int(r, 256);
      return b;
    }
    case 1: return b.subarray(0, int(r, b.length)); // truncate
    case 2: { // delete a range
      const s = int(r, b.length);
      return Buffer.concat([b.subarray(0, s), b.subarray(s + 1 + int(r, 200))]);
    }
    case 3: { // duplicate a chunk
      const s = int(r, b.length);
      const e = Math.min(b.length, s + 1 + int(r, 300));
      return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
    }
    default: { // random garbage or a tiny non-object document
      if (r() < 0.5) return Buffer.from(Array.from({ length: int(r, 300) }, () => int(r, 256)));
      return Buffer.from(pick(r, ['', ' ', 'null', '0', '[]', '"x"', '{}', '{"model":{}}', '\ufeff{}', '['.repeat(100_000)]));
    }
  }
}

describe('tokenizer.json fuzz', () => {
  let tmp: string;
  let seeds: string[];

  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'lmdistill-tok-fuzz-'));
    const tok = BpeTokenizer.train(mobyDickLines().slice(0, 400), { vocabSize: 300, specialTokens: ['<|endoftext|>', '<pad>'] });
    const json = tok.toJSON();
    const model = json['model'] as { merges: Array<[string, string]> };
    const legacy = { ...json, model: { ...model, merges: model.merges.map(([a, b]) => `${a} ${b}`) } };
    seeds = [JSON.stringify(json), stringifyReadable(json), JSON.stringify(legacy)];
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** Loads `file`; returns 'loaded' or 'rejected', and fails the test on any other outcome. */
  function check(file: string, what: string): 'loaded' | 'rejected' {
    let tok: BpeTokenizer;
    try {
      tok = BpeTokenizer.load(file);
    } catch (e) {
      if (e instanceof UserError && e.message.startsWith(`${file}: `)) return 'rejected';
      assert.fail(`${what}: expected a UserError naming the file, got ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
    }
    const ids = tok.encode(SAMPLE);
    tok.decode(ids);
    return 'loaded';
  }

  it(`${CASES} mutated files each load or fail with a UserError naming the file (seed ${SEED})`, { timeout: 120_000 }, () => {
    const r = seededRandom(SEED);
    const outcome = { loaded: 0, rejected: 0 };
    const t0 = performance.now();
    let slowest = 0;
    for (let i = 0; i < CASES; i++) {
      const seedText = pick(r, seeds);
      const content = r() < 0.5 ? mutateStructure(r, JSON.parse(seedText)) : mutateBytes(r, seedText);
      const file = path.join(tmp, `case-${i}.json`);
      writeFileSync(file, content);
      const c0 = performance.now();
      outcome[check(file, `seed ${SEED} case ${i}`)]++;
      slowest = Math.max(slowest, performance.now() - c0);
      rmSync(file);
    }
    const seconds = (performance.now() - t0) / 1000;
    // Not vacuous: the mutations must both break files and leave some loadable.
    assert.ok(outcome.rejected > CASES * 0.5, JSON.stringify(outcome));
    assert.ok(outcome.loaded > CASES * 0.02, JSON.stringify(outcome));
    // Speed is measured, not asserted (a loaded CI machine is slow); hangs are caught by the test timeout.
    process.stderr.write(`# tokenizer fuzz: ${seconds.toFixed(1)} s, slowest case ${slowest.toFixed(0)} ms\n`);
  });

  it('rejects over-limit sizes quickly: huge merges array, out-of-range id, deep nesting', () => {
    const base = JSON.parse(seeds[0]!) as Record<string, unknown> & { model: Record<string, unknown> };
    const deep = '['.repeat(100_000) + ']'.repeat(100_000); // built as text: JSON.stringify would recurse
    const cases: Array<[string, string]> = [
      ['merges over the cap', JSON.stringify({ ...base, model: { ...base.model, merges: new Array<number>(MAX_MERGES + 1).fill(0) } })],
      ['id at the cap', JSON.stringify({ ...base, model: { ...base.model, vocab: { ...(base.model['vocab'] as object), huge: MAX_TOKEN_ID } } })],
      ['deeply nested vocab', JSON.stringify({ ...base, model: { ...base.model, vocab: '@' } }).replace('"@"', deep)],
      ['deeply nested unknown key', JSON.stringify({ ...base, nested: '@' }).replace('"@"', deep)],
      ['deeply nested document', deep],
    ];
    for (const [name, text] of cases) {
      const file = path.join(tmp, `${name.replace(/\W+/g, '-')}.json`);
      writeFileSync(file, text);
      assert.equal(check(file, name), 'rejected', name);
    }
    // The largest legal id loads (the id table is bounded by MAX_TOKEN_ID).
    const legal = path.join(tmp, 'legal-max-id.json');
    writeFileSync(legal, JSON.stringify({ ...base, model: { ...base.model, vocab: { ...(base.model['vocab'] as object), huge: MAX_TOKEN_ID - 1 } } }));
    assert.equal(check(legal, 'legal max id'), 'loaded');
    assert.equal(BpeTokenizer.load(legal).vocabSize, MAX_TOKEN_ID);
  });
});
