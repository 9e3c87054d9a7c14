/**
 * Byte-level BPE training.
 *
 * Vocab layout (the Hugging Face `BpeTrainer` convention): special tokens first (ids 0..k-1, in the
 * order given), then the 256 byte symbols in byte order (ids k..k+255), then one token per merge.
 *
 * Algorithm: count pre-tokenized words once, then repeatedly merge the most frequent adjacent pair.
 * Pair counts are updated incrementally: an index from each pair to the words containing it means a
 * merge only touches the words it changes, and a lazy max-heap (stale entries are skipped on pop)
 * finds the next pair. Counts are of adjacent pairs within a word, weighted by word frequency
 * (overlapping pairs such as the two `aa` in `aaa` both count, as in Hugging Face).
 *
 * Tie-break (deterministic, independent of hash/Map order): among pairs with the highest count, the
 * one with the smallest (left id, right id) wins. Ids are assigned deterministically, so the same
 * texts and options always give the same merges.
 */
import { UserError } from '../errors.js';
import { BYTE_TO_UNICODE } from './bytes.js';
import { PairHeap } from './heap.js';
import { pretokenize } from './pretokenize.js';
import { hasLoneSurrogate, splitOnSpecials, specialTokenMatcher } from './specials.js';

/** Largest vocab `trainBpe` accepts; pair keys are `left * vocabSize + right`, which must stay exact. */
export const MAX_TRAIN_VOCAB = 1 << 20;

/** Options for `trainBpe` / `BpeTokenizer.train`. */
export interface BpeTrainOptions {
  /** Final vocab size including special tokens and the 256 byte symbols. */
  vocabSize: number;
  /** A pair must occur at least this often (weighted by word frequency) to be merged. Default 2. */
  minFrequency?: number;
  /** Tokens matched verbatim before pre-tokenization; they get ids 0..k-1 and are never learned from text. */
  specialTokens?: string[];
}

/** Result of training: the vocab (index = id) and merges as pairs of token strings in rank order. */
export interface TrainedBpe {
  tokens: string[];
  merges: Array<[string, string]>;
  specialTokens: string[];
}

function validateOptions(opts: BpeTrainOptions): { vocabSize: number; minFrequency: number; specials: string[] } {
  const specials = opts.specialTokens ?? [];
  const seen = new Set<string>();
  const byteSymbols = new Set(BYTE_TO_UNICODE);
  for (const s of specials) {
    if (typeof s !== 'string' || s.length === 0 || hasLoneSurrogate(s)) {
      throw new UserError('tokenizer training: special tokens must be non-empty, valid Unicode strings', 2);
    }
    if (seen.has(s)) throw new UserError(`tokenizer training: special token ${JSON.stringify(s)} is listed twice`, 2);
    if (byteSymbols.has(s)) {
      throw new UserError(`tokenizer training: special token ${JSON.stringify(s)} is a single byte symbol and would collide with it`, 2);
    }
    seen.add(s);
  }
  const minVocab = 256 + specials.length;
  const { vocabSize } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < minVocab || vocabSize > MAX_TRAIN_VOCAB) {
    throw new UserError(
      `tokenizer training: vocabSize is ${vocabSize}; expected an integer from ${minVocab} ` +
        `(256 byte symbols + ${specials.length} special tokens) to ${MAX_TRAIN_VOCAB}`,
      2,
    );
  }
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new UserError(`tokenizer training: minFrequency is ${minFrequency}; expected an integer >= 1`, 2);
  }
  return { vocabSize, minFrequency, specials };
}

/** Frequency of every distinct pre-tokenized word (raw text, not yet byte-encoded). */
function countWords(texts: Iterable<string>, specials: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const matcher = specialTokenMatcher(specials);
  for (const text of texts) {
    for (const piece of splitOnSpecials(text, matcher)) {
      if (piece.special !== undefined) continue;
      for (const w of pretokenize(piece.text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Trains byte-level BPE merges on `texts` (see the module comment for the algorithm and tie-break).
 * Training stops early, with a smaller vocab, when no pair occurs `minFrequency` times.
 * `onProgress(done, total)` reports the current vocab size against `opts.vocabSize` after each merge.
 */
export function trainBpe(
  texts: Iterable<string>,
  opts: BpeTrainOptions,
  onProgress?: (done: number, total: number) => void,
): TrainedBpe {
  const { vocabSize, minFrequency, specials } = validateOptions(opts);
  const tokens: string[] = [...specials, ...BYTE_TO_UNICODE];
  const idOf = new Map<string, number>();
  tokens.forEach((t, i) => idOf.set(t, i));
  const byteBase = specials.length;
  const stride = vocabSize;

  const encoder = new TextEncoder();
  const words: number[][] = [];
  const wordCount: number[] = [];
  for (const [w, c] of countWords(texts, specials)) {
    words.push(Array.from(encoder.encode(w), (b) => byteBase + b));
    wordCount.push(c);
  }

  const pairCount = new Map<number, number>();
  // Words that contain (or once contained) each pair; stale and repeated entries are filtered when used.
  const pairWords = new Map<number, number[]>();
  const note = (key: number, w: number): void => {
    const list = pairWords.get(key);
    if (list === undefined) pairWords.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w]!;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i]! * stride + s[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + wordCount[w]!);
      note(key, w);
    }
  }
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(-c, key);

  const merges: Array<[string, string]> = [];
  const visited = new Int32Array(words.length).fill(-1);
  const delta = new Map<number, number>();
  while (tokens.length < vocabSize && heap.size > 0) {
    const count = -heap.peekPrimary();
    const key = heap.peekSecondary();
    heap.pop();
    if (pairCount.get(key) !== count) continue; // stale: a newer entry holds the current count
    if (count < minFrequency) break; // the heap top is the maximum, so nothing else qualifies
    const left = Math.floor(key / stride);
    const right = key - left * stride;
    const merged = tokens[left]! + tokens[right]!;
    let id = idOf.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    merges.push([tokens[left]!, tokens[right]!]);
    const iteration = merges.length;

    delta.clear();
    for (const w of pairWords.get(key) ?? []) {
      if (visited[w] === iteration) continue;
      visited[w] = iteration;
      const s = words[w]!;
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          out.push(id);
          i++;
        } else out.push(s[i]!);
      }
      if (out.length === s.length) continue; // index entry was stale
      const c = wordCount[w]!;
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i]! * stride + s[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) - c);
      }
      for (let i = 0; i + 1 < out.length; i++) {
        const k = out[i]! * stride + out[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) + c);
        if (out[i] === id || out[i + 1] === id) note(k, w);
      }
      words[w] = out;
    }
    pairWords.delete(key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const c = (pairCount.get(k) ?? 0) + d;
      if (c > 0) {
        pairCount.set(k, c);
        heap.push(-c, k);
      } else pairCount.delete(k);
    }
    onProgress?.(tokens.length, vocabSize);
  }
  return { tokens, merges, specialTokens: specials };
}
