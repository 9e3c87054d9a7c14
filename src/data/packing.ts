/**
 * Packing token streams into fixed-length training sequences.
 *
 * Documents are concatenated (with an optional EOS id between consecutive documents) into one stream, cut
 * into rows of `seqLen + 1` tokens with stride `seqLen`: row i = stream[i*seqLen, i*seqLen + seqLen + 1).
 * Input = row[0, seqLen), target = row[1, seqLen + 1). Consecutive rows share one boundary token, so every
 * next-token transition in the stream is trained exactly once (a stride of seqLen + 1 would silently drop
 * one transition per row). The tail that does not fill a row is dropped.
 */
import { UserError } from '../errors.js';

/** Fixed-length sequences held in one Int32Array of shape [length, seqLen + 1]. */
export class PackedDataset {
  /** Number of sequences. */
  readonly length: number;
  /** Tokens per input (and per target) sequence, T. */
  readonly seqLen: number;
  /** All rows back to back: [length, seqLen + 1]. */
  readonly data: Int32Array;

  /**
   * Optional loss mask [length, seqLen]: 0 where a target is not trained on (prompt tokens, padding of
   * prompt/response examples); the loader turns those targets into -100. Packed raw text has none.
   */
  readonly mask: Uint8Array | null;

  /** Wraps existing packed rows; `data.length` must be a multiple of `seqLen + 1`. */
  constructor(data: Int32Array, seqLen: number, mask: Uint8Array | null = null) {
    if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new UserError(`seqLen must be a positive integer, got ${seqLen}`, 2);
    if (data.length % (seqLen + 1) !== 0) {
      throw new RangeError(`PackedDataset: ${data.length} tokens is not a multiple of seqLen + 1 = ${seqLen + 1}`);
    }
    this.data = data;
    this.seqLen = seqLen;
    this.length = data.length / (seqLen + 1);
    if (mask && mask.length !== this.length * seqLen) throw new RangeError(`PackedDataset: mask has ${mask.length} entries; expected ${this.length * seqLen}`);
    this.mask = mask;
  }

  /** Loss mask of row `i` [seqLen] (1 = trained target), or null when every target counts. */
  maskRow(i: number): Uint8Array | null {
    return this.mask ? this.mask.subarray(i * this.seqLen, (i + 1) * this.seqLen) : null;
  }

  /** Row `i` as a view (no copy): [seqLen + 1] tokens; input = [0, T), target = [1, T + 1). */
  get(i: number): Int32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`PackedDataset index ${i} out of range [0, ${this.length})`);
    const w = this.seqLen + 1;
    return this.data.subarray(i * w, (i + 1) * w);
  }
}

/**
 * Concatenates documents into one stream [Σ len + (docs - 1 if eosId given)], with `eosId` between
 * consecutive documents (not after the last one). Empty documents are skipped (no double EOS).
 */
export function joinDocuments(docs: readonly ArrayLike<number>[], eosId?: number): Int32Array {
  const nonEmpty = docs.filter((d) => d.length > 0);
  const sep = eosId === undefined ? 0 : 1;
  const total = nonEmpty.reduce((a, d) => a + d.length, 0) + Math.max(0, nonEmpty.length - 1) * sep;
  const out = new Int32Array(total);
  let o = 0;
  nonEmpty.forEach((d, k) => {
    if (k > 0 && eosId !== undefined) out[o++] = eosId;
    out.set(d, o);
    o += d.length;
  });
  return out;
}

/**
 * Packs a token stream [n] into floor((n - 1) / seqLen) rows of seqLen + 1 tokens (stride seqLen, see module
 * comment). Throws `UserError` if the stream is too short for even one row.
 */
export function packTokens(stream: Int32Array, seqLen: number): PackedDataset {
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new UserError(`seqLen must be a positive integer, got ${seqLen}`, 2);
  const rows = stream.length > 0 ? Math.floor((stream.length - 1) / seqLen) : 0;
  if (rows === 0) {
    throw new UserError(`corpus has ${stream.length} tokens; packing needs at least seqLen + 1 = ${seqLen + 1} (use more text or a shorter seqLen)`);
  }
  const w = seqLen + 1;
  const data = new Int32Array(rows * w); // [rows, T + 1]
  for (let r = 0; r < rows; r++) data.set(stream.subarray(r * seqLen, r * seqLen + w), r * w);
  return new PackedDataset(data, seqLen);
}

/** `packTokens(joinDocuments(docs, eosId), seqLen)`. */
export function packDocuments(docs: readonly ArrayLike<number>[], opts: { seqLen: number; eosId?: number }): PackedDataset {
  return packTokens(joinDocuments(docs, opts.eosId), opts.seqLen);
}

/**
 * Prompt/response examples → one row each: [prompt, response, eos] truncated or padded (with `padId`)
 * to seqLen + 1 tokens. Only response tokens (and the closing eos) are trained targets; prompt and
 * padding positions are masked. A prompt longer than seqLen − 1 keeps its last tokens (the response
 * needs at least one position); examples whose response is cut off are kept, truncated.
 * Returns the dataset and the prompt length of each row.
 */
export function packExamples(
  examples: readonly { prompt: ArrayLike<number>; response: ArrayLike<number> }[],
  opts: { seqLen: number; eosId?: number; padId: number },
): { dataset: PackedDataset; promptLens: Int32Array } {
  const T = opts.seqLen, w = T + 1;
  if (examples.length === 0) throw new UserError('no prompt/response examples', 2);
  const data = new Int32Array(examples.length * w).fill(opts.padId);
  const mask = new Uint8Array(examples.length * T);
  const promptLens = new Int32Array(examples.length);
  examples.forEach((ex, r) => {
    let prompt = Array.from(ex.prompt);
    if (prompt.length === 0) prompt = opts.eosId !== undefined ? [opts.eosId] : [opts.padId];
    if (prompt.length > T) prompt = prompt.slice(prompt.length - T);
    const resp = [...Array.from(ex.response), ...(opts.eosId !== undefined ? [opts.eosId] : [])];
    const seq = [...prompt, ...resp].slice(0, w);
    data.set(seq, r * w);
    // target t is seq[t + 1]: trained when it is a response token
    for (let t = prompt.length - 1; t < seq.length - 1; t++) mask[r * T + t] = 1;
    promptLens[r] = prompt.length;
  });
  return { dataset: new PackedDataset(data, T, mask), promptLens };
}
