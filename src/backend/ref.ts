/**
 * The reference backend: every kernel in plain TypeScript over Float32Array. It is the specification
 * the native backend is tested against, and the fallback wherever the addon cannot build.
 */
import type { Backend, BinaryOp, ReduceOp, UnaryOp } from './backend.js';
import { gemmRef } from './gemm.js';
import { rowLossesRef } from './ref-rowloss.js';
import { attentionBackward, attentionForward, normBackward, normForward } from './ref-fused.js';
import { coalesce, forEachRow } from './strided.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

function unary(op: UnaryOp, x: Float32Array, out: Float32Array): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]; break;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); break;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); break;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); break;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); break;
    case 'sigmoid': for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-x[i])); break;
    case 'relu': for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0; break;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); break;
    case 'silu': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v / (1 + Math.exp(-v)); } break;
    case 'gelu': // tanh approximation (GPT-2's gelu_new, PyTorch approximate="tanh")
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
      }
      break;
  }
}

function unaryBackward(op: UnaryOp, x: Float32Array, y: Float32Array, gy: Float32Array, gx: Float32Array): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) gx[i] = -gy[i]; break;
    case 'exp': for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i]; break;
    case 'log': for (let i = 0; i < n; i++) gx[i] = gy[i] / x[i]; break;
    case 'sqrt': for (let i = 0; i < n; i++) gx[i] = (0.5 * gy[i]) / y[i]; break;
    case 'tanh': for (let i = 0; i < n; i++) gx[i] = gy[i] * (1 - y[i] * y[i]); break;
    case 'sigmoid': for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1 - y[i]); break;
    case 'relu': for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : 0; break;
    case 'abs': for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0; break;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const s = 1 / (1 + Math.exp(-x[i]));
        gx[i] = gy[i] * s * (1 + x[i] * (1 - s));
      }
      break;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const u = SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
        const t = Math.tanh(u);
        const du = SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v);
        gx[i] = gy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
      }
      break;
  }
}

function binary(op: BinaryOp, a: Float32Array, as: number[], b: Float32Array, bs: number[], out: Float32Array, shape: number[]): void {
  const outStrides = contiguousStrides(shape);
  const c = coalesce(shape, [as, bs, outStrides]);
  forEachRow(c, (off, len, inner) => {
    let ia = off[0], ib = off[1], io = off[2];
    const sa = inner[0], sb = inner[1], so = inner[2];
    switch (op) {
      case 'add': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] + b[ib]; break;
      case 'sub': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] - b[ib]; break;
      case 'mul': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] * b[ib]; break;
      case 'div': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] / b[ib]; break;
      case 'maximum': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] >= b[ib] ? a[ia] : b[ib]; break;
      case 'pow': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = Math.pow(a[ia], b[ib]); break;
      case 'eq': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] === b[ib] ? 1 : 0; break;
      case 'lt': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] < b[ib] ? 1 : 0; break;
      case 'gt': for (let i = 0; i < len; i++, io += so, ia += sa, ib += sb) out[io] = a[ia] > b[ib] ? 1 : 0; break;
    }
  });
}

function where(cond: Float32Array, cs: number[], a: Float32Array, as: number[], b: Float32Array, bs: number[], out: Float32Array, shape: number[]): void {
  const c = coalesce(shape, [cs, as, bs, contiguousStrides(shape)]);
  forEachRow(c, (off, len, inner) => {
    let ic = off[0], ia = off[1], ib = off[2], io = off[3];
    for (let i = 0; i < len; i++, ic += inner[0], ia += inner[1], ib += inner[2], io += inner[3]) {
      out[io] = cond[ic] !== 0 ? a[ia] : b[ib];
    }
  });
}

function reduce(op: ReduceOp, x: Float32Array, shape: number[], out: Float32Array, outStrides: number[]): void {
  // Accumulate in float64 and round once, so long sums do not drift from PyTorch's pairwise sums.
  const acc = new Float64Array(out.length).fill(op === 'sum' ? 0 : -Infinity);
  const c = coalesce(shape, [contiguousStrides(shape), outStrides]);
  forEachRow(c, (off, len, inner) => {
    let ix = off[0], io = off[1];
    const sx = inner[0], so = inner[1];
    if (so === 0) {
      let s = acc[io];
      if (op === 'sum') for (let i = 0; i < len; i++, ix += sx) s += x[ix];
      else for (let i = 0; i < len; i++, ix += sx) { const v = x[ix]; if (v > s || v !== v) s = v; }
      acc[io] = s;
    } else if (op === 'sum') {
      for (let i = 0; i < len; i++, ix += sx, io += so) acc[io] += x[ix];
    } else {
      for (let i = 0; i < len; i++, ix += sx, io += so) { const v = x[ix]; if (v > acc[io] || v !== v) acc[io] = v; }
    }
  });
  for (let i = 0; i < out.length; i++) out[i] = acc[i];
}

function copyStrided(x: Float32Array, offset: number, strides: number[], out: Float32Array, shape: number[]): void {
  const c = coalesce(shape, [strides, contiguousStrides(shape)]);
  forEachRow(c, (off, len, inner) => {
    let ix = off[0], io = off[1];
    const sx = inner[0], so = inner[1];
    if (sx === 1 && so === 1) out.set(x.subarray(ix, ix + len), io);
    else for (let i = 0; i < len; i++, ix += sx, io += so) out[io] = x[ix];
  }, [offset, 0]);
}

function softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > mx) mx = x[o + j];
    if (mx === -Infinity) mx = 0; // a fully masked row stays -inf/NaN-free up to the caller's mask
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - mx);
    if (log) {
      const lse = mx + Math.log(s);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - lse;
    } else {
      const inv = 1 / s;
      for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j] - mx) * inv;
    }
  }
}

function softmaxBackward(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    if (log) {
      for (let j = 0; j < cols; j++) s += gy[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = gy[o + j] - Math.exp(y[o + j]) * s;
    } else {
      for (let j = 0; j < cols; j++) s += gy[o + j] * y[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = y[o + j] * (gy[o + j] - s);
    }
  }
}

function gather(table: Float32Array, ids: Int32Array, d: number, out: Float32Array): void {
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * d, ids[i] * d + d), i * d);
}

function scatterAdd(src: Float32Array, ids: Int32Array, d: number, out: Float32Array): void {
  for (let i = 0; i < ids.length; i++) {
    const o = ids[i] * d, s = i * d;
    for (let j = 0; j < d; j++) out[o + j] += src[s + j];
  }
}

function adamw(w: Float32Array, g: Float32Array | null, m: Float32Array, v: Float32Array, a: { beta1: number; beta2: number; eps: number; decay: number; stepSize: number; sqrtBc2: number }): void {
  const { beta1: b1, beta2: b2, eps, decay, stepSize, sqrtBc2 } = a;
  for (let j = 0; j < w.length; j++) {
    const gj = g ? g[j] : 0;
    const mj = (m[j] = b1 * m[j] + (1 - b1) * gj);
    const vj = (v[j] = b2 * v[j] + (1 - b2) * gj * gj);
    w[j] = w[j] * decay - (stepSize * mj) / (Math.sqrt(vj) / sqrtBc2 + eps);
  }
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

export const refBackend: Backend = {
  name: 'ref',
  unary, unaryBackward, binary, where, reduce, copyStrided,
  matmul: gemmRef,
  softmax, softmaxBackward, gather, scatterAdd,
  normForward, normBackward, adamw,
  sumSquares: (x) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return s;
  },
  attention: (q, k, v, out, lse, d) => attentionForward(q, k, v, out, lse, d),
  attentionBackward: (q, k, v, out, lse, g, gq, gk, gv, d) => attentionBackward(q, k, v, out, lse, g, gq, gk, gv, d),
  rowLosses: rowLossesRef,
};
