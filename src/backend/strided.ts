/**
 * Strided iteration shared by the reference kernels: an N-d loop over `shape` whose innermost
 * dimension is run as a tight loop. Dimensions are first coalesced (size-1 axes dropped, adjacent axes
 * merged when every operand is contiguous across them) so that e.g. a bias add over [B, T, C] + [C]
 * becomes B·T rows of length C and a same-shape add becomes one flat loop.
 */
export interface Coalesced {
  shape: number[];
  strides: number[][];
}

export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): Coalesced {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[d] * shape[d])) {
      dims[last] *= shape[d];
      for (let k = 0; k < strides.length; k++) st[k][last] = strides[k][d];
    } else {
      dims.push(shape[d]);
      for (let k = 0; k < strides.length; k++) st[k].push(strides[k][d]);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    for (const s of st) s.push(0);
  }
  return { shape: dims, strides: st };
}

/**
 * Calls `row(offsets, len, innerStrides)` once per innermost row. `offsets[k]` is operand k's start;
 * the callback owns the inner loop. `offsets` is reused between calls.
 */
export function forEachRow(
  c: Coalesced,
  row: (offsets: Int32Array | number[], len: number, inner: number[]) => void,
  base?: number[],
): void {
  const rank = c.shape.length;
  const nOps = c.strides.length;
  const len = c.shape[rank - 1];
  const inner = c.strides.map((s) => s[rank - 1]);
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) outer *= c.shape[d];
  const idx = new Array<number>(rank).fill(0);
  const off = base ? base.slice() : new Array<number>(nOps).fill(0);
  for (let o = 0; o < outer; o++) {
    row(off, len, inner);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < nOps; k++) off[k] += c.strides[k][d];
      if (idx[d] < c.shape[d]) break;
      for (let k = 0; k < nOps; k++) off[k] -= c.strides[k][d] * c.shape[d];
      idx[d] = 0;
    }
  }
}
