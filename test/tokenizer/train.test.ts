/**
 * Training: correctness against a naive reference trainer (full recount every merge), round-trips,
 * compression, determinism, save/load, special tokens, options and speed on the full Moby Dick.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import { BYTE_TO_UNICODE, BpeTokenizer, pretokenize } from '../../src/tokenizer/index.js';
import { EDGE_CASES, mobyDickLines, mobyDickText } from './helpers.js';

/**
 * Textbook BPE training, written independently of src/tokenizer/train.ts: recount every adjacent pair
 * of every word after each merge; pick the highest count, ties to the smallest (left id, right id).
 */
function naiveTrain(texts: string[], vocabSize: number, minFrequency: number): Array<[string, string]> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of pretokenize(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const tokens = [...BYTE_TO_UNICODE];
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const words = [...counts].map(([w, c]) => ({ syms: [...Buffer.from(w, 'utf8')], c }));
  const merges: Array<[string, string]> = [];
  while (tokens.length < vocabSize) {
    const pairs = new Map<string, { l: number; r: number; c: number }>();
    for (const { syms, c } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]},${syms[i + 1]}`;
        const e = pairs.get(k) ?? { l: syms[i]!, r: syms[i + 1]!, c: 0 };
        e.c += c;
        pairs.set(k, e);
      }
    }
    let best: { l: number; r: number; c: number } | undefined;
    for (const e of pairs.values()) {
      if (!best || e.c > best.c || (e.c === best.c && (e.l < best.l || (e.l === best.l && e.r < best.r)))) best = e;
    }
    if (!best || best.c < minFrequency) break;
    const s = tokens[best.l]! + tokens[best.r]!;
    let id = ids.get(s);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(s);
      ids.set(s, id);
    }
    merges.push([tokens[best.l]!, tokens[best.r]!]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (w.syms[i] === best.l && w.syms[i + 1] === best.r) {
          out.push(id);
          i++;
        } else out.push(w.syms[i]!);
      }
      w.syms = out;
    }
  }
  return merges;
}

describe('BPE training', () => {
  let lines: string[];
  let trainLines: string[];
  let heldOut: string[];
  let tok: BpeTokenizer;
  let tmp: string;

  before(() => {
    lines = mobyDickLines();
    trainLines = lines.slice(0, Math.floor(lines.length * 0.8));
    heldOut = lines.slice(Math.floor(lines.length * 0.8));
    tok = BpeTokenizer.train(trainLines, { vocabSize: 1000, specialTokens: ['<|endoftext|>'] });
    tmp = mkdtempSync(path.join(tmpdir(), 'lmdistill-tok-train-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('learns exactly the merges of a naive full-recount trainer (incremental counts and tie-break)', () => {
    const small = lines.slice(0, 600);
    for (const [vocabSize, minFrequency] of [[420, 2], [380, 1], [300, 50]] as const) {
      const ours = BpeTokenizer.train(small, { vocabSize, minFrequency });
      assert.deepEqual(ours.merges, naiveTrain(small, vocabSize, minFrequency), `vocab ${vocabSize}, minFrequency ${minFrequency}`);
    }
  });

  it('has the requested vocab: specials first, then the 256 bytes, then unique merged tokens', () => {
    assert.equal(tok.vocabSize, 1000);
    assert.equal(tok.eosId, 0);
    assert.equal(tok.tokenToId('<|endoftext|>'), 0);
    BYTE_TO_UNICODE.forEach((c, b) => assert.equal(tok.tokenToId(c), 1 + b));
    const seen = new Set<string>();
    for (let id = 0; id < tok.vocabSize; id++) {
      const t = tok.idToToken(id);
      assert.ok(t !== undefined && !seen.has(t), `id ${id}`);
      seen.add(t);
      assert.equal(tok.tokenToId(t), id);
    }
  });

  it('round-trips held-out lines and edge cases', () => {
    for (const line of heldOut) assert.equal(tok.decode(tok.encode(line)), line);
    for (const text of EDGE_CASES) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
    const joined = heldOut.slice(0, 300).join('\n');
    assert.equal(tok.decode(tok.encode(joined)), joined);
  });

  it('compresses held-out English text (fewer tokens than bytes, and better than 2 bytes per token)', () => {
    const text = heldOut.join('\n');
    const bytes = Buffer.byteLength(text, 'utf8');
    const n = tok.encode(text).length;
    assert.ok(n < bytes / 2, `${n} tokens for ${bytes} bytes`);
  });

  it('maps special tokens in text to their ids and never learns merges from them', () => {
    const ids = tok.encode('Call me<|endoftext|>Ishmael.');
    assert.equal(ids.filter((i) => i === tok.eosId).length, 1);
    assert.equal(tok.decode(ids), 'Call me<|endoftext|>Ishmael.');
    // Training on text with separators must equal training on the pieces between them.
    const withSeparators = lines.slice(0, 400).join('<|endoftext|>');
    const opts = { vocabSize: 400, specialTokens: ['<|endoftext|>'] };
    const a = BpeTokenizer.train([withSeparators], opts);
    const b = BpeTokenizer.train(withSeparators.split('<|endoftext|>'), opts);
    assert.deepEqual(a.merges, b.merges);
    assert.ok(!a.merges.some(([l, r]) => (l + r).includes('|>') || (l + r).includes('<|')));
  });

  it('is deterministic: two trainings give identical merges and JSON', () => {
    const again = BpeTokenizer.train(trainLines, { vocabSize: 1000, specialTokens: ['<|endoftext|>'] });
    assert.deepEqual(again.merges, tok.merges);
    assert.deepEqual(again.toJSON(), tok.toJSON());
  });

  it('saves atomically and loads back a tokenizer that encodes identically', () => {
    const file = path.join(tmp, 'tok.json');
    tok.save(file);
    assert.deepEqual(readdirSync(tmp), ['tok.json'], 'no temp file left behind');
    const loaded = BpeTokenizer.load(file);
    assert.deepEqual(loaded.toJSON(), tok.toJSON());
    for (const line of [...heldOut.slice(0, 500), ...EDGE_CASES]) assert.deepEqual(loaded.encode(line), tok.encode(line));
    tok.save(file); // overwriting an existing file also works
    assert.deepEqual(BpeTokenizer.load(file).merges, tok.merges);
  });

  it('decodes invalid UTF-8 (half a character) to U+FFFD and rejects unknown ids', () => {
    const [lead] = Buffer.from('é', 'utf8'); // 0xC3, a lead byte with its continuation missing
    const leadId = tok.tokenToId(BYTE_TO_UNICODE[lead!]!)!;
    assert.equal(tok.decode([leadId]), '\ufffd');
    assert.equal(tok.decode([...tok.encode('ab'), leadId, ...tok.encode('cd')]), 'ab\ufffdcd');
    assert.throws(() => tok.decode([tok.vocabSize]), UserError);
    assert.throws(() => tok.decode([-1]), UserError);
    assert.throws(() => tok.decode([1.5]), UserError);
  });

  it('stops early when no pair reaches minFrequency, and reports progress up to the vocab size', () => {
    const small = BpeTokenizer.train(['abab abab cdcd'], { vocabSize: 1000, minFrequency: 2 });
    assert.ok(small.vocabSize < 1000 && small.vocabSize > 256);
    const seen: number[] = [];
    BpeTokenizer.train(lines.slice(0, 300), { vocabSize: 400 }, (done, total) => {
      assert.equal(total, 400);
      seen.push(done);
    });
    assert.ok(seen.length > 0 && seen.every((d, i) => i === 0 || d > seen[i - 1]!));
    assert.equal(seen[seen.length - 1], 400);
  });

  it('rejects invalid options with a UserError', () => {
    const bad = [
      { vocabSize: 100 },
      { vocabSize: 256.5 },
      { vocabSize: 256, specialTokens: ['<s>'] },
      { vocabSize: 300, specialTokens: ['x', 'x'] },
      { vocabSize: 300, specialTokens: [''] },
      { vocabSize: 300, specialTokens: ['a'] },
      { vocabSize: 300, minFrequency: 0 },
    ];
    for (const opts of bad) assert.throws(() => BpeTokenizer.train(['text'], opts), UserError, JSON.stringify(opts));
  });

  it('trains a 4096 vocab on the full Moby Dick (1.2 MB) quickly and round-trips the whole book', () => {
    const text = mobyDickText();
    const t0 = performance.now();
    const big = BpeTokenizer.train([text], { vocabSize: 4096, specialTokens: ['<|endoftext|>'] });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(big.vocabSize, 4096);
    process.stderr.write(`# BPE training on Moby Dick at vocab 4096: ${seconds.toFixed(1)} s\n`);
    const ids = big.encode(text);
    assert.equal(big.decode(ids), text);
    assert.ok(ids.length < Buffer.byteLength(text) / 3);
  });
});
