/**
 * Applying learned BPE merges to one pre-tokenized word.
 *
 * Semantics (identical to Hugging Face `tokenizers` and, for well-formed merge lists, to GPT-2's
 * reference `bpe()`): repeatedly merge the adjacent pair with the lowest merge rank, taking the
 * leftmost occurrence when that pair occurs several times, until no adjacent pair has a rank.
 */
import { PairHeap } from './heap.js';

/** Merge ranks by token-id pair, plus the id each merge produces. */
export interface MergeTable {
  /** `left * stride + right` → rank (0 = first merge learned). */
  readonly ranks: ReadonlyMap<number, number>;
  /** Greater than every token id, so pair keys are unique (ids < 2^21 keep keys below 2^53). */
  readonly stride: number;
  /** `results[rank]` is the id of the token that merge `rank` produces. */
  readonly results: Int32Array;
}

/** Builds a table from merges given as `[leftId, rightId, resultId]` in rank order; later duplicates are ignored. */
export function buildMergeTable(merges: ReadonlyArray<readonly [number, number, number]>, stride: number): MergeTable {
  const ranks = new Map<number, number>();
  const results = new Int32Array(merges.length);
  merges.forEach(([l, r, res], rank) => {
    const key = l * stride + r;
    if (!ranks.has(key)) ranks.set(key, rank);
    results[rank] = res;
  });
  return { ranks, stride, results };
}

/** Words longer than this use the O(n log n) heap strategy; shorter ones the O(n²) scan, which is faster there. */
const SCAN_MAX_LENGTH = 48;

/**
 * Merges `symbols` (token ids of one word's byte symbols) and returns the resulting token ids;
 * the input is not modified.
 * `strategy` exists so tests can check the two implementations agree; callers use `'auto'`.
 */
export function applyMerges(
  symbols: readonly number[],
  table: MergeTable,
  strategy: 'auto' | 'scan' | 'heap' = 'auto',
): number[] {
  const useHeap = strategy === 'heap' || (strategy === 'auto' && symbols.length > SCAN_MAX_LENGTH);
  return useHeap ? mergeWithHeap(symbols, table) : mergeByScan(symbols, table);
}

function mergeByScan(symbols: readonly number[], table: MergeTable): number[] {
  const s = symbols.slice();
  const { ranks, stride, results } = table;
  while (s.length > 1) {
    let best = Infinity;
    let bestPos = -1;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = ranks.get(s[i]! * stride + s[i + 1]!);
      if (r !== undefined && r < best) {
        best = r;
        bestPos = i;
      }
    }
    if (bestPos < 0) break;
    s[bestPos] = results[best]!;
    s.splice(bestPos + 1, 1);
  }
  return s;
}

function mergeWithHeap(symbols: readonly number[], table: MergeTable): number[] {
  const n = symbols.length;
  const { ranks, stride, results } = table;
  // Doubly linked list over original positions; a merged pair lives on at its left position.
  const ids = Int32Array.from(symbols);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new PairHeap();
  const pushPair = (pos: number): void => {
    if (pos < 0) return;
    const q = next[pos]!;
    if (q < 0) return;
    const r = ranks.get(ids[pos]! * stride + ids[q]!);
    if (r !== undefined) heap.push(r, pos);
  };
  for (let i = 0; i + 1 < n; i++) pushPair(i);
  while (heap.size > 0) {
    const rank = heap.peekPrimary();
    const pos = heap.peekSecondary();
    heap.pop();
    const q = next[pos]!;
    // Stale entry: the left symbol was absorbed, it has no right neighbour, or the pair changed.
    if (ids[pos] === -1 || q < 0 || ranks.get(ids[pos]! * stride + ids[q]!) !== rank) continue;
    ids[pos] = results[rank]!;
    ids[q] = -1;
    const after = next[q]!;
    next[pos] = after;
    if (after >= 0) prev[after] = pos;
    pushPair(prev[pos]!);
    pushPair(pos);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0 && i < n; i = next[i]!) out.push(ids[i]!);
  return out;
}
