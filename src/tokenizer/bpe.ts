/**
 * `BpeTokenizer`: byte-level BPE (GPT-2 style) with Hugging Face `tokenizer.json` interop.
 *
 * Encoding: split out special/added tokens (leftmost-longest), pre-tokenize the rest with the GPT-2
 * regex, map each word's UTF-8 bytes to byte symbols, and apply merges lowest rank first
 * (`merge.ts`). Decoding: each token's bytes (Hugging Face ByteLevel decoder rule, `bytes.ts`),
 * concatenated and UTF-8 decoded with invalid sequences replaced by U+FFFD.
 */
import { UserError } from '../errors.js';
import { BYTE_TO_UNICODE, textToByteSymbols, tokenToBytes } from './bytes.js';
import {
  GPT2_EOT,
  parseGpt2Files,
  parseTokenizerJson,
  toTokenizerJson,
  type AddedTokenSpec,
  type BpeSpec,
} from './format.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readJsonFile, readTextFileCapped, stringifyReadable } from './io.js';
import { applyMerges, buildMergeTable, type MergeTable } from './merge.js';
import { pretokenize } from './pretokenize.js';
import { specialTokenMatcher, splitOnSpecials, type SpecialTokenMatcher } from './specials.js';
import { trainBpe, type BpeTrainOptions } from './train.js';
import { INVALID_INPUT } from './validate.js';

/** Distinct words whose encodings are cached; the cache is cleared when it fills, bounding memory. */
const WORD_CACHE_LIMIT = 1 << 16;

/** A byte-level BPE tokenizer. Build one with `train`, `load`, `fromJSON` or `fromGpt2Files`. */
export class BpeTokenizer {
  private readonly spec: BpeSpec;
  /** id → token string (model vocab and added tokens); holes are `undefined`. */
  private readonly idToTok: Array<string | undefined>;
  /** Model vocab plus added tokens. */
  private readonly tokToId: Map<string, number>;
  private readonly table: MergeTable;
  /** Token id of each byte's symbol, or -1 when the vocab lacks it. */
  private readonly byteIds: Int32Array;
  private readonly unkId: number;
  private readonly addedIds: Map<string, number>;
  private readonly specialMatcher: SpecialTokenMatcher | null;
  private readonly wordCache = new Map<string, number[]>();
  private readonly tokenBytes: Array<Uint8Array | undefined> = [];

  private constructor(spec: BpeSpec) {
    this.spec = spec;
    this.tokToId = new Map(spec.vocab);
    for (const t of spec.added) this.tokToId.set(t.content, t.id);
    let size = 0;
    for (const id of this.tokToId.values()) size = Math.max(size, id + 1);
    this.idToTok = new Array<string | undefined>(size);
    for (const [t, id] of this.tokToId) this.idToTok[id] = t;
    this.table = buildMergeTable(
      spec.merges.map(([a, b]) => [spec.vocab.get(a)!, spec.vocab.get(b)!, spec.vocab.get(a + b)!] as const),
      Math.max(size, 1),
    );
    this.byteIds = Int32Array.from(BYTE_TO_UNICODE, (c) => spec.vocab.get(c) ?? -1);
    this.unkId = spec.unkToken === null ? -1 : spec.vocab.get(spec.unkToken)!;
    this.addedIds = new Map(spec.added.map((t) => [t.content, t.id]));
    this.specialMatcher = specialTokenMatcher(spec.added.map((t) => t.content));
  }

  /**
   * Trains a tokenizer on `texts` (see `train.ts` for the algorithm and the deterministic tie-break:
   * highest count, then smallest (left id, right id)). Special tokens get ids 0..k-1, bytes the next
   * 256 ids. `onProgress(done, total)` reports vocab size so far against `opts.vocabSize`.
   */
  static train(
    texts: Iterable<string>,
    opts: BpeTrainOptions,
    onProgress?: (done: number, total: number) => void,
  ): BpeTokenizer {
    const trained = trainBpe(texts, opts, onProgress);
    const vocab = new Map(trained.tokens.map((t, i) => [t, i]));
    const added: AddedTokenSpec[] = trained.specialTokens.map((content, id) => ({ id, content, special: true }));
    return new BpeTokenizer({
      vocab,
      merges: trained.merges,
      added,
      addPrefixSpace: false,
      trimOffsets: true,
      useRegex: true,
      unkToken: null,
      fuseUnk: false,
      ignoreMerges: false,
    });
  }

  /** Builds a tokenizer from a parsed `tokenizer.json` object; `source` names it in error messages. */
  static fromJSON(obj: unknown, source = 'tokenizer.json'): BpeTokenizer {
    return new BpeTokenizer(parseTokenizerJson(obj, source));
  }

  /** Builds a tokenizer from the original GPT-2 files: parsed `encoder.json` and the text of `vocab.bpe`. */
  static fromGpt2Files(
    encoderJson: object,
    vocabBpe: string,
    sources: { encoder: string; merges: string } = { encoder: 'encoder.json', merges: 'vocab.bpe' },
  ): BpeTokenizer {
    return new BpeTokenizer(parseGpt2Files(encoderJson, vocabBpe, sources));
  }

  /** Loads GPT-2's `encoder.json` and `vocab.bpe` from disk. */
  static loadGpt2Files(encoderPath: string, vocabBpePath: string): BpeTokenizer {
    const encoder = readJsonFile(encoderPath);
    if (typeof encoder !== 'object' || encoder === null || Array.isArray(encoder)) {
      throw new UserError(`${encoderPath}: expected a JSON object mapping tokens to ids`, INVALID_INPUT);
    }
    return BpeTokenizer.fromGpt2Files(encoder, readTextFileCapped(vocabBpePath), { encoder: encoderPath, merges: vocabBpePath });
  }

  /** Loads a Hugging Face `tokenizer.json`. Every problem with the file is a `UserError` naming it. */
  static load(path: string): BpeTokenizer {
    return BpeTokenizer.fromJSON(readJsonFile(path), path);
  }

  /** Saves as Hugging Face `tokenizer.json`, atomically (temp file, fsync, rename); I/O failures are a `UserError`. */
  save(path: string): void {
    writeFileAtomic(path, `${stringifyReadable(this.toJSON())}\n`);
  }

  /** The Hugging Face `tokenizer.json` object for this tokenizer (merges as `[["a","b"], ...]`). */
  toJSON(): Record<string, unknown> {
    return toTokenizerJson(this.spec);
  }

  /** One past the largest token id (the embedding rows a model needs), counting added tokens. */
  get vocabSize(): number {
    return this.idToTok.length;
  }

  /** Merges in rank order, as token strings in byte-symbol form. */
  get merges(): ReadonlyArray<readonly [string, string]> {
    return this.spec.merges;
  }

  /** Id of a token (byte-symbol form for model tokens, raw content for added tokens), if present. */
  tokenToId(token: string): number | undefined {
    return this.tokToId.get(token);
  }

  /** Token string for `id`, or `undefined` when `id` is not a token id. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToTok[id] : undefined;
  }

  /** Contents of the added tokens flagged special, in id order. */
  get specialTokens(): string[] {
    return this.spec.added
      .filter((t) => t.special)
      .sort((a, b) => a.id - b.id)
      .map((t) => t.content);
  }

  /** Id of the special token with this content, if any. */
  specialTokenId(content: string): number | undefined {
    const t = this.spec.added.find((x) => x.special && x.content === content);
    return t?.id;
  }

  /** Id of `<|endoftext|>` when it is a special token (GPT-2's end-of-text / document separator). */
  get eosId(): number | undefined {
    return this.specialTokenId(GPT2_EOT);
  }

  /**
   * Token ids for `text`. Added/special tokens occurring in `text` map to their ids; no BOS/EOS is
   * added. Bytes whose symbol is missing from the vocab become `unk_token` when the file sets one
   * and are dropped otherwise (both as in Hugging Face).
   */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const piece of splitOnSpecials(text, this.specialMatcher)) {
      if (piece.special !== undefined) {
        out.push(this.addedIds.get(piece.special)!);
        continue;
      }
      // Hugging Face's ByteLevel prefix space applies to each piece between added tokens.
      const t = this.spec.addPrefixSpace && !piece.text.startsWith(' ') ? ` ${piece.text}` : piece.text;
      const words = this.spec.useRegex ? pretokenize(t) : [t];
      for (const w of words) for (const id of this.encodeWord(w)) out.push(id);
    }
    return out;
  }

  private encodeWord(word: string): number[] {
    const cached = this.wordCache.get(word);
    if (cached !== undefined) return cached;
    let ids: number[] | undefined;
    if (this.spec.ignoreMerges) {
      const whole = this.spec.vocab.get(textToByteSymbols(word));
      if (whole !== undefined) ids = [whole];
    }
    ids ??= applyMerges(this.byteSymbolIds(word), this.table);
    if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
    this.wordCache.set(word, ids);
    return ids;
  }

  private byteSymbolIds(word: string): number[] {
    const symbols: number[] = [];
    let prevUnk = false;
    for (const b of Buffer.from(word, 'utf8')) {
      const id = this.byteIds[b]!;
      if (id >= 0) {
        symbols.push(id);
        prevUnk = false;
      } else if (this.unkId >= 0) {
        if (!(this.spec.fuseUnk && prevUnk)) symbols.push(this.unkId);
        prevUnk = true;
      }
    }
    return symbols;
  }

  /**
   * Text for token ids. Byte sequences that are not valid UTF-8 (e.g. a multi-byte character cut
   * in half) decode to U+FFFD, as in Hugging Face. Special tokens are included verbatim.
   * Throws `UserError` for an id that is not a token id.
   */
  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      const bytes = this.bytesOf(id);
      parts.push(bytes);
      total += bytes.length;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    // ignoreBOM keeps a leading U+FEFF in the text instead of silently stripping it.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all);
  }

  private bytesOf(id: number): Uint8Array {
    const cached = Number.isInteger(id) && id >= 0 ? this.tokenBytes[id] : undefined;
    if (cached !== undefined) return cached;
    const tok = this.idToToken(id);
    if (tok === undefined) {
      throw new UserError(`decode: ${id} is not a token id of this tokenizer (vocab size ${this.vocabSize})`, INVALID_INPUT);
    }
    const bytes = tokenToBytes(tok);
    this.tokenBytes[id] = bytes;
    return bytes;
  }
}
