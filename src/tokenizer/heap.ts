/**
 * A binary min-heap of (primary, secondary) number pairs ordered lexicographically; ties on both are
 * impossible to observe because equal entries are interchangeable. Used by BPE training (most frequent
 * pair first: primary = -count, secondary = pair key) and by encoding long words (lowest merge rank
 * first, leftmost position on ties). Plain arrays: no per-entry objects, so millions of pushes stay cheap.
 */
export class PairHeap {
  private a: number[] = [];
  private b: number[] = [];

  /** Number of entries. */
  get size(): number {
    return this.a.length;
  }

  /** Inserts the entry (primary, secondary). */
  push(primary: number, secondary: number): void {
    const a = this.a;
    const b = this.b;
    let i = a.length;
    a.push(primary);
    b.push(secondary);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! < primary || (a[p] === primary && b[p]! <= secondary)) break;
      a[i] = a[p]!;
      b[i] = b[p]!;
      i = p;
    }
    a[i] = primary;
    b[i] = secondary;
  }

  /** Primary of the smallest entry; only valid when `size > 0`. */
  peekPrimary(): number {
    return this.a[0]!;
  }

  /** Secondary of the smallest entry; only valid when `size > 0`. */
  peekSecondary(): number {
    return this.b[0]!;
  }

  /** Removes the smallest entry (no-op when empty). Read it first with `peekPrimary`/`peekSecondary`. */
  pop(): void {
    const a = this.a;
    const b = this.b;
    const lastA = a.pop();
    const lastB = b.pop();
    const n = a.length;
    if (n === 0 || lastA === undefined || lastB === undefined) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (a[r]! < a[l]! || (a[r] === a[l] && b[r]! < b[l]!))) c = r;
      if (lastA < a[c]! || (lastA === a[c] && lastB <= b[c]!)) break;
      a[i] = a[c]!;
      b[i] = b[c]!;
      i = c;
    }
    a[i] = lastA;
    b[i] = lastB;
  }
}
