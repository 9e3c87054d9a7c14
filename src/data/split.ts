/**
 * Deterministic train/validation splits.
 *
 * Two strategies, because corpora come in two shapes:
 *  - `splitDocuments`: many documents (a folder, JSONL, the 139 Moby Dick chapters). Each document goes to
 *    validation iff `hash32(seed, index) / 2^32 < valFraction`. A per-document hash (rather than shuffling
 *    and cutting) keeps every document's side fixed when documents are appended to the corpus, and no text
 *    is shared between the sides, so validation loss measures generalisation to unseen documents.
 *  - `splitTokens`: one long stream (a single text file). The last `valFraction` of the tokens is held
 *    out as one contiguous block: a random choice of windows would leak, because packed training windows
 *    overlap any validation window placed between them; a tail block touches training data at one point only.
 */
import { UserError } from '../errors.js';
import { hash32 } from '../util/rng.js';

function checkFraction(valFraction: number): void {
  if (!(typeof valFraction === 'number' && valFraction >= 0 && valFraction < 1)) {
    throw new UserError(`validation fraction must be in [0, 1), got ${valFraction}`, 2);
  }
}

/**
 * Splits documents by a seeded hash of their index (see module comment). With `valFraction > 0` and at
 * least 2 documents, both sides are guaranteed non-empty: if the hash leaves one side empty, the document
 * with the smallest (resp. largest) hash moves over. Order within each side follows the input order.
 */
export function splitDocuments<T>(docs: readonly T[], opts: { valFraction: number; seed: number }): { train: T[]; val: T[] } {
  checkFraction(opts.valFraction);
  if (opts.valFraction === 0 || docs.length < 2) return { train: [...docs], val: [] };
  const threshold = opts.valFraction * 4294967296;
  const hashes = docs.map((_, i) => hash32(opts.seed, i));
  const isVal = hashes.map((h) => h < threshold);
  const argBy = (better: (a: number, b: number) => boolean): number =>
    hashes.reduce((best, h, i) => (better(h, hashes[best]) ? i : best), 0);
  if (!isVal.includes(true)) isVal[argBy((a, b) => a < b)] = true;
  if (!isVal.includes(false)) isVal[argBy((a, b) => a > b)] = false;
  return { train: docs.filter((_, i) => !isVal[i]), val: docs.filter((_, i) => isVal[i]) };
}

/**
 * Splits one token stream: `train` = first `ceil((1 - valFraction) * n)` tokens, `val` = the rest.
 * Both are views (subarrays) of `tokens`, no copy. Shapes: tokens [n] → train [n_train], val [n - n_train].
 */
export function splitTokens(tokens: Int32Array, valFraction: number): { train: Int32Array; val: Int32Array } {
  checkFraction(valFraction);
  const nTrain = Math.ceil((1 - valFraction) * tokens.length);
  return { train: tokens.subarray(0, nTrain), val: tokens.subarray(nTrain) };
}
