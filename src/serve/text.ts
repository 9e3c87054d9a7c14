/**
 * From token ids to what the API returns: each token's display string for logprobs, and the
 * completion text with stop sequences applied, incrementally (for streaming) and with character offsets.
 *
 * Token strings: byte-level BPE tokens are byte strings, not always valid UTF-8 on their own (a
 * multi-byte character can be split across tokens). A token whose bytes are valid UTF-8 is shown as
 * that text; otherwise as `bytes:\xe2\x80` (OpenAI's convention), so every token string maps back
 * to exactly one token. With vLLM's `return_tokens_as_token_ids` every token is shown as `token_id:123`.
 * Ids the model has but the tokenizer lacks (padded vocabularies) are always `token_id:N`.
 */
import type { BpeTokenizer } from '../tokenizer/index.js';
import { tokenToBytes } from '../tokenizer/bytes.js';

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Renders token ids as API token strings (cached per id). */
export class TokenRenderer {
  private readonly texts: (string | undefined)[] = [];
  private readonly bytes: (Uint8Array | undefined)[] = [];

  constructor(private readonly tokenizer: BpeTokenizer) {}

  /** The token's bytes (empty for an id the tokenizer lacks). */
  bytesOf(id: number): Uint8Array {
    let b = this.bytes[id];
    if (b === undefined) {
      const tok = this.tokenizer.idToToken(id);
      b = tok === undefined ? new Uint8Array(0) : tokenToBytes(tok);
      this.bytes[id] = b;
    }
    return b;
  }

  /** The token's display string; `asIds` renders `token_id:<id>`. */
  render(id: number, asIds: boolean): string {
    if (asIds) return `token_id:${id}`;
    let s = this.texts[id];
    if (s === undefined) {
      if (this.tokenizer.idToToken(id) === undefined) s = `token_id:${id}`;
      else {
        const b = this.bytesOf(id);
        try {
          s = fatalUtf8.decode(b);
        } catch {
          s = 'bytes:' + Array.from(b, (x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
        }
      }
      this.texts[id] = s;
    }
    return s;
  }
}

/** Result of adding one token to a `TextTracker`. */
export interface TextStep {
  /** text that became final with this token (may be empty while a stop sequence might be forming) */
  delta: string;
  /** character offset of this token's start within the tracker's text (after `base`) */
  offset: number;
  /** true when a stop sequence was completed: the caller stops generating */
  stopped: boolean;
}

/**
 * Accumulates generated tokens into text. Stop sequences end the text before their first character
 * (not included, as OpenAI); text that could still be the start of a stop sequence is held back
 * from `delta` until it is decided. Incomplete UTF-8 at the end is held back by the streaming decoder.
 */
export class TextTracker {
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private text = '';
  private emitted = 0;
  private done = false;
  private readonly skip: ReadonlySet<number>;

  /**
   * `base`: offset of this text within the full returned text (the echoed prompt's length).
   * `skipIds`: tokens that end generation without contributing text (EOS).
   * `trimStart`: drop leading whitespace (chat replies after the template's "Assistant:").
   */
  constructor(
    private readonly renderer: TokenRenderer,
    private readonly stops: readonly string[],
    private readonly base = 0,
    skipIds: readonly number[] = [],
    private readonly trimStart = false,
  ) {
    this.skip = new Set(skipIds);
  }

  push(id: number): TextStep {
    const offset = this.base + this.text.length;
    if (this.done) return { delta: '', offset, stopped: true };
    if (!this.skip.has(id)) this.text += this.decoder.decode(this.renderer.bytesOf(id), { stream: true });
    if (this.trimStart && this.emitted === 0) this.text = this.text.trimStart();
    let cut = -1;
    for (const s of this.stops) {
      // held-back text guarantees a new occurrence starts at or after (emitted − s.length + 1)
      const at = this.text.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    const stopped = cut >= 0;
    if (stopped) {
      this.text = this.text.slice(0, cut);
      this.done = true;
    }
    const safe = stopped ? this.text.length : this.text.length - this.heldBack();
    const delta = safe > this.emitted ? this.text.slice(this.emitted, safe) : '';
    this.emitted = Math.max(this.emitted, safe);
    return { delta, offset, stopped };
  }

  /** Ends the text (max tokens, EOS): flushes held-back characters. Returns the last delta. */
  finish(): string {
    if (!this.done) {
      this.text += this.decoder.decode();
      if (this.trimStart && this.emitted === 0) this.text = this.text.trimStart();
      this.done = true;
    }
    const delta = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return delta;
  }

  /** The text so far (complete after `finish`). */
  get value(): string {
    return this.text;
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop sequence. */
  private heldBack(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let l = Math.min(s.length - 1, this.text.length); l > hold; l--) {
        if (this.text.endsWith(s.slice(0, l))) { hold = l; break; }
      }
    }
    return Math.min(hold, this.text.length - this.emitted);
  }
}

/** Character offsets of each token's start in the decoding of `ids` (streaming UTF-8 decode). */
export function tokenOffsets(renderer: TokenRenderer, ids: ArrayLike<number>, base = 0): number[] {
  const dec = new TextDecoder('utf-8', { ignoreBOM: true });
  const out: number[] = [];
  let len = base;
  for (let i = 0; i < ids.length; i++) {
    out.push(len);
    len += dec.decode(renderer.bytesOf(ids[i]!), { stream: true }).length;
  }
  return out;
}
