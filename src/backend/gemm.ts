/**
 * Reference fp32 GEMM in pure TypeScript: operands are packed into 4-row / 4-column panels (which also
 * absorbs transposition, so all four variants run the same micro-kernel) and a 4×4 register-blocked
 * micro-kernel accumulates in doubles-free float math. Columns are processed in L2-sized chunks.
 * This is the fallback when the native addon is unavailable, so it is written for speed.
 *
 * With `bf16` the packed operands are rounded to bfloat16 (roundBf16) right after packing — the same
 * place the native kernels round — and the micro-kernel accumulates them in fp32 as usual.
 */
import type { MatmulArgs } from './backend.js';

const MR = 4;
const NR = 4;
let packA: Float32Array = new Float32Array(0);
let packB: Float32Array = new Float32Array(0);

// One float viewed as its bits: rounding works on the integer representation.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The nearest bfloat16 to x (round to nearest, ties to even), as a float32 value: add 0x7FFF plus the
 * lowest kept bit and drop the low 16 bits (a carry into the exponent gives ±Inf, as IEEE rounding
 * does). NaN keeps its top bits with the quiet bit set (adding would carry it into Inf).
 * native/src/gemm_impl.h round_bf16 is the same function.
 */
export function roundBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = (u & 0x7fffffff) > 0x7f800000 ? (u | 0x00400000) & 0xffff0000 : (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return f32[0];
}

/** Rounds buf[0, n) to bfloat16 in place (integer ops on a Uint32Array view, no per-element calls). */
function roundBf16InPlace(buf: Float32Array, n: number): void {
  const u = new Uint32Array(buf.buffer, buf.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = u[i];
    u[i] = (x & 0x7fffffff) > 0x7f800000 ? (x | 0x00400000) & 0xffff0000 : (x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000;
  }
}

function ensure(buf: Float32Array, n: number): Float32Array {
  return buf.length >= n ? buf : new Float32Array(Math.max(n, buf.length * 2));
}

/** Packs op(A) (m×k) into row panels: panel ib holds rows ib*4..ib*4+3, laid out [k][4]. */
function packRows(a: Float32Array, off: number, m: number, k: number, trans: boolean, out: Float32Array): void {
  const panels = Math.ceil(m / MR);
  for (let ib = 0; ib < panels; ib++) {
    const base = ib * k * MR;
    for (let r = 0; r < MR; r++) {
      const i = ib * MR + r;
      if (i >= m) {
        for (let p = 0; p < k; p++) out[base + p * MR + r] = 0;
      } else if (trans) {
        for (let p = 0; p < k; p++) out[base + p * MR + r] = a[off + p * m + i];
      } else {
        const ro = off + i * k;
        for (let p = 0; p < k; p++) out[base + p * MR + r] = a[ro + p];
      }
    }
  }
}

/** Packs op(B) (k×n) into column panels: panel jb holds columns jb*4..jb*4+3, laid out [k][4]. */
function packCols(b: Float32Array, off: number, k: number, n: number, trans: boolean, out: Float32Array): void {
  const panels = Math.ceil(n / NR);
  for (let jb = 0; jb < panels; jb++) {
    const base = jb * k * NR;
    for (let c = 0; c < NR; c++) {
      const j = jb * NR + c;
      if (j >= n) {
        for (let p = 0; p < k; p++) out[base + p * NR + c] = 0;
      } else if (trans) {
        const ro = off + j * k;
        for (let p = 0; p < k; p++) out[base + p * NR + c] = b[ro + p];
      } else {
        for (let p = 0; p < k; p++) out[base + p * NR + c] = b[off + p * n + j];
      }
    }
  }
}

function kernel(
  ap: Float32Array, ao: number, bp: Float32Array, bo: number, k: number,
  c: Float32Array, co: number, ldc: number, rows: number, cols: number, acc: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < k; p++) {
    const a0 = ap[ao], a1 = ap[ao + 1], a2 = ap[ao + 2], a3 = ap[ao + 3];
    const b0 = bp[bo], b1 = bp[bo + 1], b2 = bp[bo + 2], b3 = bp[bo + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    ao += 4;
    bo += 4;
  }
  if (rows === 4 && cols === 4) {
    if (acc) {
      c[co] += c00; c[co + 1] += c01; c[co + 2] += c02; c[co + 3] += c03; co += ldc;
      c[co] += c10; c[co + 1] += c11; c[co + 2] += c12; c[co + 3] += c13; co += ldc;
      c[co] += c20; c[co + 1] += c21; c[co + 2] += c22; c[co + 3] += c23; co += ldc;
      c[co] += c30; c[co + 1] += c31; c[co + 2] += c32; c[co + 3] += c33;
    } else {
      c[co] = c00; c[co + 1] = c01; c[co + 2] = c02; c[co + 3] = c03; co += ldc;
      c[co] = c10; c[co + 1] = c11; c[co + 2] = c12; c[co + 3] = c13; co += ldc;
      c[co] = c20; c[co + 1] = c21; c[co + 2] = c22; c[co + 3] = c23; co += ldc;
      c[co] = c30; c[co + 1] = c31; c[co + 2] = c32; c[co + 3] = c33;
    }
    return;
  }
  const v = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const o = co + r * ldc + q;
      c[o] = acc ? c[o] + v[r * 4 + q] : v[r * 4 + q];
    }
  }
}

/** Column chunk so that a chunk of packed B (k × NC floats) stays within ~256 KiB of cache. */
function columnChunk(k: number): number {
  const nc = Math.floor((256 * 1024) / 4 / Math.max(1, k));
  return Math.max(NR, nc - (nc % NR));
}

export function gemmRef(a: Float32Array, b: Float32Array, c: Float32Array, args: MatmulArgs): void {
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride, bias } = args;
  let accumulate = args.accumulate;
  const bf16 = args.bf16 === true;
  if (m === 0 || n === 0) return;
  if (bias) {
    // C (+)= bias first, then accumulate the product onto it
    if (bias.length < n) throw new RangeError(`matmul: bias has ${bias.length} values, expected n = ${n}`);
    for (let r = 0; r < batch * m; r++) {
      const o = r * n;
      if (accumulate) for (let j = 0; j < n; j++) c[o + j] += bias[j];
      else c.set(bias.subarray(0, n), o);
    }
    accumulate = true;
  }
  if (k === 0) {
    if (!accumulate) c.fill(0, 0, batch * m * n);
    return;
  }
  const mPanels = Math.ceil(m / MR);
  const nPanels = Math.ceil(n / NR);
  packA = ensure(packA, mPanels * MR * k);
  packB = ensure(packB, nPanels * NR * k);
  const nc = columnChunk(k);
  let lastB = -1;
  for (let bt = 0; bt < batch; bt++) {
    packRows(a, bt * aBatchStride, m, k, transA, packA);
    if (bf16) roundBf16InPlace(packA, mPanels * MR * k);
    const bOff = bt * bBatchStride;
    if (bOff !== lastB || bt === 0) {
      packCols(b, bOff, k, n, transB, packB);
      if (bf16) roundBf16InPlace(packB, nPanels * NR * k);
    }
    lastB = bOff;
    const cOff = bt * m * n;
    for (let j0 = 0; j0 < n; j0 += nc) {
      const j1 = Math.min(n, j0 + nc);
      for (let ib = 0; ib < mPanels; ib++) {
        const rows = Math.min(MR, m - ib * MR);
        for (let j = j0; j < j1; j += NR) {
          const cols = Math.min(NR, n - j);
          kernel(packA, ib * k * MR, packB, (j / NR) * k * NR, k, c, cOff + ib * MR * n + j, n, rows, cols, accumulate);
        }
      }
    }
  }
}
