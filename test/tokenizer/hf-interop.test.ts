/**
 * Hugging Face interop of tokenizers we train: the committed fixture (our 512-token tokenizer + the ids
 * Python `tokenizers` produced with it), a staleness check that retrains it, the JS
 * `@huggingface/tokenizers` on the same JSON, and — when LMDISTILL_PYTHON is set — a live Python run
 * on a freshly trained tokenizer, on option variants (add_prefix_space, ignore_merges, unk_token) and
 * on the GPT-2 vocab.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { BYTE_TO_UNICODE, BpeTokenizer } from '../../src/tokenizer/index.js';
import {
  FIXTURE_HF_IDS,
  FIXTURE_TOKENIZER,
  FIXTURE_TRAIN_OPTIONS,
  fixtureCheckLines,
  fixtureTrainingTexts,
  gpt2CheckLines,
} from '../../tools/tokenizer/fixture.js';
import { EDGE_CASES, GPT2_DIR, REPO_ROOT, hfJsComparable, mobyDickLines } from './helpers.js';

interface HfIds {
  lines: string[];
  ids: number[][];
  text_ids: number[];
}

type Json = Record<string, unknown>;

/** Option variants of a tokenizer.json that exercise code paths training never produces. */
function variants(base: Json): Array<[string, Json]> {
  const model = base['model'] as Json & { vocab: Record<string, number>; merges: Array<[string, string]> };
  const withPrefix = { ...(base['pre_tokenizer'] as Json), add_prefix_space: true };
  // Drop byte symbols no merge uses (control bytes 0x00..0x08), then map them to <unk>.
  const dropped = BYTE_TO_UNICODE.slice(0, 9).filter((c) => !model.merges.some(([a, b]) => a === c || b === c));
  const vocab = Object.fromEntries(Object.entries(model.vocab).filter(([t]) => !dropped.includes(t)));
  const maxId = Math.max(...Object.values(model.vocab), ...(base['added_tokens'] as Array<{ id: number }>).map((t) => t.id));
  const unkVocab = { ...vocab, '<unk>': maxId + 1 };
  return [
    ['add_prefix_space', { ...base, pre_tokenizer: withPrefix }],
    ['ignore_merges', { ...base, model: { ...model, ignore_merges: true } }],
    ['missing bytes, no unk', { ...base, model: { ...model, vocab } }],
    ['unk_token', { ...base, model: { ...model, vocab: unkVocab, unk_token: '<unk>' } }],
    ['unk_token + fuse_unk', { ...base, model: { ...model, vocab: unkVocab, unk_token: '<unk>', fuse_unk: true } }],
  ];
}

const VARIANT_LINES = [
  'Call me Ishmael.',
  ' already has a space',
  'x<|endoftext|>y <|endoftext|> z',
  'control \u0001\u0002\u0003 bytes \u0004x\u0005',
  'whale whales whaling',
];

describe('Hugging Face interop of trained tokenizers', () => {
  let committed: Json;
  let fixtureTok: BpeTokenizer;
  let hfIds: HfIds;
  let tmp: string;

  before(() => {
    committed = JSON.parse(readFileSync(FIXTURE_TOKENIZER, 'utf8')) as Json;
    fixtureTok = BpeTokenizer.load(FIXTURE_TOKENIZER);
    hfIds = JSON.parse(readFileSync(FIXTURE_HF_IDS, 'utf8')) as HfIds;
    tmp = mkdtempSync(path.join(tmpdir(), 'lmdistill-tok-hf-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('encodes the fixture lines to exactly the ids Python tokenizers produced', () => {
    assert.equal(hfIds.lines.length, hfIds.ids.length);
    assert.ok(hfIds.lines.length > 100);
    hfIds.lines.forEach((line, i) => assert.deepEqual(fixtureTok.encode(line), hfIds.ids[i], `line ${i}: ${JSON.stringify(line)}`));
    assert.deepEqual(fixtureTok.encode(hfIds.lines.join('\n') + '\n'), hfIds.text_ids);
  });

  it('retraining with the fixture recipe reproduces the committed tokenizer.json and lines (fixture not stale)', () => {
    const fresh = BpeTokenizer.train(fixtureTrainingTexts(), FIXTURE_TRAIN_OPTIONS);
    assert.deepEqual(fresh.toJSON(), committed, 'retrain differs: run node --import tsx tools/tokenizer/make_fixtures.ts');
    assert.deepEqual(hfIds.lines, fixtureCheckLines());
  });

  it('@huggingface/tokenizers (JS) loads our trained JSON and encodes identically', () => {
    const hf = new Tokenizer(committed, {});
    let compared = 0;
    hfIds.lines.forEach((line, i) => {
      if (!hfJsComparable(line)) return;
      assert.deepEqual(hf.encode(line).ids, hfIds.ids[i], `line ${i}`);
      compared++;
    });
    assert.ok(compared > 100);
    for (const text of EDGE_CASES.filter(hfJsComparable)) {
      const ours = fixtureTok.encode(text);
      assert.deepEqual(hf.encode(text).ids, ours, JSON.stringify(text));
      if (ours.length > 0) assert.equal(hf.decode(ours, { skip_special_tokens: false }), fixtureTok.decode(ours));
    }
  });

  it('@huggingface/tokenizers (JS) agrees on option variants (prefix space, ignore_merges, unk)', () => {
    for (const [name, json] of variants(committed)) {
      const ours = BpeTokenizer.fromJSON(json, name);
      const hf = new Tokenizer(json, {});
      for (const line of VARIANT_LINES) assert.deepEqual(ours.encode(line), hf.encode(line).ids, `${name}: ${JSON.stringify(line)}`);
    }
  });

  it('Python tokenizers (live) agrees on a freshly trained tokenizer, option variants and GPT-2', (t) => {
    const python = process.env['LMDISTILL_PYTHON'];
    if (!python) {
      t.skip('set LMDISTILL_PYTHON to a Python with `tokenizers` (e.g. .venv/bin/python) to run this check');
      return;
    }
    const script = path.join(REPO_ROOT, 'tools', 'tokenizer', 'check_hf_tokenizer.py');
    const lines = mobyDickLines();
    const fresh = BpeTokenizer.train(lines.slice(3000, 6000), { vocabSize: 700, specialTokens: ['<|endoftext|>', '<pad>'] });
    const cases: Array<[string, Json, string[]]> = [
      ['fresh', fresh.toJSON(), [...lines.slice(6000, 6300), ...EDGE_CASES.filter((s) => !s.includes('\n')), 'a<pad><|endoftext|>b']],
      ...variants(fresh.toJSON()).map(([name, json]): [string, Json, string[]] => [name, json, VARIANT_LINES]),
      ['gpt2', BpeTokenizer.loadGpt2Files(path.join(GPT2_DIR, 'encoder.json'), path.join(GPT2_DIR, 'vocab.bpe')).toJSON(), [...lines.slice(0, 300), ...gpt2CheckLines()]],
    ];
    for (const [name, json, checkLines] of cases) {
      const tokFile = path.join(tmp, `${name.replace(/\W+/g, '_')}.json`);
      const textFile = path.join(tmp, 'lines.txt');
      const outFile = path.join(tmp, 'out.json');
      writeFileSync(tokFile, JSON.stringify(json));
      writeFileSync(textFile, checkLines.join('\n') + '\n');
      execFileSync(python, [script, tokFile, textFile, outFile], { stdio: ['ignore', 'ignore', 'inherit'] });
      const out = JSON.parse(readFileSync(outFile, 'utf8')) as HfIds;
      assert.deepEqual(out.lines, checkLines);
      const ours = BpeTokenizer.load(tokFile);
      checkLines.forEach((line, i) => assert.deepEqual(ours.encode(line), out.ids[i], `${name}: ${JSON.stringify(line)}`));
      assert.deepEqual(ours.encode(checkLines.join('\n') + '\n'), out.text_ids, `${name}: whole text`);
    }
  });

  it('Python tokenizers (live): we load a byte-level BPE that Hugging Face trained and saved, and encode identically', (t) => {
    const python = process.env['LMDISTILL_PYTHON'];
    if (!python) {
      t.skip('set LMDISTILL_PYTHON to a Python with `tokenizers` (e.g. .venv/bin/python) to run this check');
      return;
    }
    const hfFile = path.join(tmp, 'hf-trained.json');
    const trainText = path.join(tmp, 'train.txt');
    writeFileSync(trainText, mobyDickLines().slice(0, 3000).join('\n'));
    const code = [
      'import sys',
      'from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, trainers',
      'tk = Tokenizer(models.BPE())',
      'tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)',
      'tk.decoder = decoders.ByteLevel()',
      'tk.post_processor = processors.ByteLevel(trim_offsets=False)',
      "tr = trainers.BpeTrainer(vocab_size=800, special_tokens=['<|endoftext|>'], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())",
      'tk.train([sys.argv[1]], tr)',
      'tk.save(sys.argv[2])',
    ].join('\n');
    execFileSync(python, ['-c', code, trainText, hfFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    const lines = [...mobyDickLines().slice(5000, 5200), ...EDGE_CASES.filter((x) => !x.includes('\n'))];
    const textFile = path.join(tmp, 'hf-lines.txt');
    const outFile = path.join(tmp, 'hf-out.json');
    writeFileSync(textFile, lines.join('\n') + '\n');
    execFileSync(python, [path.join(REPO_ROOT, 'tools', 'tokenizer', 'check_hf_tokenizer.py'), hfFile, textFile, outFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    const out = JSON.parse(readFileSync(outFile, 'utf8')) as HfIds;
    const ours = BpeTokenizer.load(hfFile);
    assert.equal(ours.vocabSize, 800);
    lines.forEach((line, i) => assert.deepEqual(ours.encode(line), out.ids[i], JSON.stringify(line)));
    for (const line of lines) assert.equal(ours.decode(ours.encode(line)), line);
  });
});
