/**
 * Reference implementations of the fused kernels: LayerNorm/RMSNorm forward+backward and causal
 * attention (flash-style: only the per-row log-sum-exp is kept for backward, which recomputes the
 * probabilities). Float64 accumulation inside norm rows.
 */
import type { AttentionDims, HeadLayout } from './backend.js';
import { gemmRef } from './gemm.js';

export function normForward(
  x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array,
  mean: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number, rms: boolean,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mu = 0;
    if (!rms) {
      for (let j = 0; j < cols; j++) mu += x[o + j];
      mu /= cols;
    }
    let ss = 0;
    for (let j = 0; j < cols; j++) { const d = x[o + j] - mu; ss += d * d; }
    const rs = 1 / Math.sqrt(ss / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    if (b) for (let j = 0; j < cols; j++) out[o + j] = (x[o + j] - mu) * rs * w[j] + b[j];
    else for (let j = 0; j < cols; j++) out[o + j] = (x[o + j] - mu) * rs * w[j];
  }
}

/** gx = rstd·(g − mean(g)·[LN] − x̂·mean(g·x̂)) with g = gy·w; gw += Σ gy·x̂; gb += Σ gy. */
export function normBackward(
  x: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array, gy: Float32Array,
  gx: Float32Array, gw: Float32Array, gb: Float32Array | null, rows: number, cols: number, rms: boolean,
): void {
  const gwAcc = new Float64Array(cols);
  const gbAcc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols, mu = mean[r], rs = rstd[r];
    let sg = 0, sgx = 0;
    for (let j = 0; j < cols; j++) {
      const xh = (x[o + j] - mu) * rs;
      const g = gy[o + j] * w[j];
      sg += g;
      sgx += g * xh;
      gwAcc[j] += gy[o + j] * xh;
      gbAcc[j] += gy[o + j];
    }
    const mg = rms ? 0 : sg / cols, mgx = sgx / cols;
    for (let j = 0; j < cols; j++) {
      const xh = (x[o + j] - mu) * rs;
      gx[o + j] = rs * (gy[o + j] * w[j] - mg - xh * mgx);
    }
  }
  for (let j = 0; j < cols; j++) {
    gw[j] += gwAcc[j];
    if (gb) gb[j] += gbAcc[j];
  }
}

/** Keys visible to query t: 0..last(t). */
const lastKey = (d: AttentionDims, t: number): number => (d.causal ? d.S - d.T + t : d.S - 1);

let scratchA: Float32Array = new Float32Array(0);
let scratchB: Float32Array = new Float32Array(0);
function scratch(n: number): [Float32Array, Float32Array] {
  if (scratchA.length < n) { scratchA = new Float32Array(n); scratchB = new Float32Array(n); }
  return [scratchA.subarray(0, n), scratchB.subarray(0, n)];
}
/** The GEMM the fused attention runs on (a backend passes its own, e.g. the native one). */
export type Gemm = typeof gemmRef;
type Mm = (a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean, accumulate: boolean) => void;
const mmWith = (g: Gemm): Mm => (a, b, c, m, n, k, transA, transB, accumulate) =>
  g(a, b, c, { batch: 1, m, n, k, transA, transB, aBatchStride: 0, bBatchStride: 0, accumulate });

/** P = softmax(scale·q·kᵀ + mask) for one head into p [T, S] (masked entries 0), using lse when given. */
function headProbs(mm: Mm, q: Float32Array, k: Float32Array, p: Float32Array, d: AttentionDims, lse: Float32Array | null, lseOut: Float32Array | null): void {
  const { T, S, D, scale } = d;
  mm(q, k, p, T, S, D, false, true, false); // [T, S]
  for (let t = 0; t < T; t++) {
    const o = t * S, last = lastKey(d, t);
    let m = -Infinity;
    for (let s = 0; s <= last; s++) { p[o + s] *= scale; if (p[o + s] > m) m = p[o + s]; }
    let L: number;
    if (lse) L = lse[t];
    else {
      let l = 0;
      for (let s = 0; s <= last; s++) l += Math.exp(p[o + s] - m);
      L = m + Math.log(l);
      if (lseOut) lseOut[t] = L;
    }
    for (let s = 0; s <= last; s++) p[o + s] = Math.exp(p[o + s] - L);
    for (let s = last + 1; s < S; s++) p[o + s] = 0;
  }
}

/**
 * Per (batch, head): P = softmax(q·kᵀ·scale) in a reused scratch buffer (only one head's [T, S] exists at
 * a time; nothing is kept for backward but the row log-sum-exp), out = P·v. The GEMMs make this as fast
 * as the unfused composition without its memory.
 */
export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, d: AttentionDims, gemm: Gemm = gemmRef): void {
  if (d.layout) {
    const { B, H, Hkv, T, S, D } = d, L = d.layout;
    const o = new Float32Array(B * H * T * D);
    attentionForward(gatherHeads(q, L.q, B, H, T, D), gatherHeads(k, L.k, B, Hkv, S, D), gatherHeads(v, L.v, B, Hkv, S, D), o, lse, { ...d, layout: undefined }, gemm);
    scatterHeads(o, out, L.out, B, H, T, D);
    return;
  }
  const mm = mmWith(gemm);
  const { B, H, Hkv, T, S, D } = d;
  const rep = H / Hkv;
  const [p] = scratch(T * S);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / rep);
    const qo = (b * H + h) * T * D, ko = (b * Hkv + kvh) * S * D, lo = (b * H + h) * T;
    headProbs(mm, q.subarray(qo, qo + T * D), k.subarray(ko, ko + S * D), p, d, null, lse.subarray(lo, lo + T));
    mm(p, v.subarray(ko, ko + S * D), out.subarray(qo, qo + T * D), T, D, S, false, false, false);
  }
}

/**
 * Recomputes P from lse, then dV += Pᵀ·dO; dP = dO·vᵀ; dS = P∘(dP − rowsum(dO∘O))·scale;
 * dQ = dS·k; dK += dSᵀ·q. gq, gk, gv are overwritten (query heads sharing a kv head accumulate).
 */
export function attentionBackward(
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array,
  gq: Float32Array, gk: Float32Array, gv: Float32Array, d: AttentionDims, gemm: Gemm = gemmRef,
): void {
  if (d.layout) {
    const { B, H, Hkv, T, S, D } = d, L = d.layout;
    const dq = new Float32Array(B * H * T * D), dk = new Float32Array(B * Hkv * S * D), dv = new Float32Array(dk.length);
    attentionBackward(
      gatherHeads(q, L.q, B, H, T, D), gatherHeads(k, L.k, B, Hkv, S, D), gatherHeads(v, L.v, B, Hkv, S, D),
      gatherHeads(out, L.out, B, H, T, D), lse, gatherHeads(gOut, L.out, B, H, T, D), dq, dk, dv, { ...d, layout: undefined }, gemm,
    );
    scatterHeads(dq, gq, L.q, B, H, T, D);
    scatterHeads(dk, gk, L.k, B, Hkv, S, D);
    scatterHeads(dv, gv, L.v, B, Hkv, S, D);
    return;
  }
  const mm = mmWith(gemm);
  const { B, H, Hkv, T, S, D, scale } = d;
  const rep = H / Hkv;
  gk.fill(0);
  gv.fill(0);
  const [p, dp] = scratch(T * S);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / rep);
    const qo = (b * H + h) * T * D, ko = (b * Hkv + kvh) * S * D, lo = (b * H + h) * T;
    const qh = q.subarray(qo, qo + T * D), kh = k.subarray(ko, ko + S * D), vh = v.subarray(ko, ko + S * D);
    const go = gOut.subarray(qo, qo + T * D), oh = out.subarray(qo, qo + T * D);
    headProbs(mm, qh, kh, p, d, lse.subarray(lo, lo + T), null);
    mm(p, go, gv.subarray(ko, ko + S * D), S, D, T, true, false, true); // dV += Pᵀ·dO
    mm(go, vh, dp, T, S, D, false, true, false); // dP = dO·vᵀ
    for (let t = 0; t < T; t++) {
      let rowDot = 0;
      for (let i = 0; i < D; i++) rowDot += go[t * D + i] * oh[t * D + i];
      const o = t * S;
      for (let s = 0; s < S; s++) dp[o + s] = p[o + s] * (dp[o + s] - rowDot) * scale; // dS
    }
    mm(dp, kh, gq.subarray(qo, qo + T * D), T, D, S, false, false, false); // dQ = dS·k
    mm(dp, qh, gk.subarray(ko, ko + S * D), S, D, T, true, false, true); // dK += dSᵀ·q
  }
}

/** Copies the heads a layout describes into a dense [B, heads, rows, D] array. */
export function gatherHeads(src: Float32Array, L: HeadLayout, B: number, heads: number, rows: number, D: number): Float32Array {
  const out = new Float32Array(B * heads * rows * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let t = 0; t < rows; t++) {
    const s = L.offset + b * L.sB + h * L.sH + t * L.sT;
    out.set(src.subarray(s, s + D), ((b * heads + h) * rows + t) * D);
  }
  return out;
}

/** Writes a dense [B, heads, rows, D] array into the positions a layout describes. */
export function scatterHeads(dense: Float32Array, dst: Float32Array, L: HeadLayout, B: number, heads: number, rows: number, D: number): void {
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let t = 0; t < rows; t++) {
    const o = ((b * heads + h) * rows + t) * D;
    dst.set(dense.subarray(o, o + D), L.offset + b * L.sB + h * L.sH + t * L.sT);
  }
}
