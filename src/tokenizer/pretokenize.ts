/**
 * GPT-2 pre-tokenization: split text into "words" that BPE merges never cross.
 *
 * The pattern is GPT-2's
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with one deliberate change: `\s` is spelled `\p{White_Space}`. Hugging Face `tokenizers` compiles
 * the pattern with Oniguruma, whose Unicode `\s` is exactly the White_Space property; JavaScript's
 * `\s` differs on two characters (it adds U+FEFF and lacks U+0085). We follow the Rust library;
 * `@huggingface/tokenizers` (JS) and `gpt-3-encoder` keep JavaScript's `\s`, so they split text with
 * those characters differently. Remaining known difference: `\p{L}`/`\p{N}` follow the Unicode
 * version of Node's ICU, which may classify a few recently added characters differently.
 */

/** The GPT-2 split pattern in the exact form Hugging Face writes and reads (Oniguruma syntax). */
export const GPT2_SPLIT_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const WS = '\\p{White_Space}';
const NOT_WS = '\\P{White_Space}';
/** The same pattern for JavaScript `RegExp` with the `u` flag (see the module comment). */
const JS_SOURCE = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!${NOT_WS})|${WS}+`;

/** A fresh global regex (global regexes carry `lastIndex`, so callers must not share one across re-entrant use). */
export function gpt2SplitRegex(): RegExp {
  return new RegExp(JS_SOURCE, 'gu');
}

const SPLIT = gpt2SplitRegex();

/**
 * Splits `text` into GPT-2 pre-tokens. The pieces concatenate back to `text` exactly (the last
 * alternative `\s+` and the punctuation class together cover every character).
 */
export function pretokenize(text: string): string[] {
  const out: string[] = [];
  SPLIT.lastIndex = 0;
  for (let m = SPLIT.exec(text); m !== null; m = SPLIT.exec(text)) out.push(m[0]);
  return out;
}
