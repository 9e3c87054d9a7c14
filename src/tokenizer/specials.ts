/**
 * Splitting text on special (added) tokens before pre-tokenization. Matching is leftmost-longest,
 * as in Hugging Face's AddedVocabulary: scanning left to right, at the first position where any
 * special token starts, the longest one that matches there wins.
 */

/** One piece of text: either ordinary text or exactly one special token (`special` is its content). */
export interface TextPiece {
  text: string;
  special?: string;
}

/**
 * Finds special tokens in text. A plain first-character index rather than one big RegExp: it needs
 * no escaping and has no pattern-size limits however many (or however odd) the tokens of a file are.
 */
export class SpecialTokenMatcher {
  /** First UTF-16 unit → tokens starting with it, longest first. */
  private readonly byFirst = new Map<number, string[]>();

  constructor(specials: readonly string[]) {
    for (const s of specials) {
      if (s.length === 0) continue; // an empty token would match everywhere; validation rejects it earlier
      const c = s.charCodeAt(0);
      const list = this.byFirst.get(c);
      if (list === undefined) this.byFirst.set(c, [s]);
      else list.push(s);
    }
    for (const list of this.byFirst.values()) list.sort((a, b) => b.length - a.length);
  }

  /** The leftmost-longest match at or after `from`: its start index and token, or `null`. */
  find(text: string, from: number): { index: number; token: string } | null {
    for (let i = from; i < text.length; i++) {
      const list = this.byFirst.get(text.charCodeAt(i));
      if (list === undefined) continue;
      for (const tok of list) if (text.startsWith(tok, i)) return { index: i, token: tok };
    }
    return null;
  }
}

/** A matcher for `specials`, or `null` when there are none. */
export function specialTokenMatcher(specials: readonly string[]): SpecialTokenMatcher | null {
  return specials.length === 0 ? null : new SpecialTokenMatcher(specials);
}

/** Splits `text` into ordinary pieces and special-token pieces, in order; empty ordinary pieces are dropped. */
export function splitOnSpecials(text: string, matcher: SpecialTokenMatcher | null): TextPiece[] {
  if (matcher === null) return text.length > 0 ? [{ text }] : [];
  const out: TextPiece[] = [];
  let last = 0;
  for (let m = matcher.find(text, 0); m !== null; m = matcher.find(text, last)) {
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push({ text: m.token, special: m.token });
    last = m.index + m.token.length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when `s` contains an unpaired UTF-16 surrogate (not representable in UTF-8, so invalid in a vocab). */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}
