/**
 * Forward implementations of the primitives (see primitives.ts). Each allocates its output, runs a
 * backend kernel and records a graph node; gradient rules live in autodiff.ts.
 */
import type { AttentionDims, BinaryOp, UnaryOp } from '../backend/backend.js';
import { matmulBf16 } from './precision.js';
import { getBackend, record, scalar, Tensor, uninit } from './tensor.js';
import { broadcastShapes, broadcastStrides, fmtShape, normAxis, numel, shapeEq, stridesOf, type Shape } from './shape.js';

type TensorLike = Tensor | number;
const asTensor = (x: TensorLike): Tensor => (typeof x === 'number' ? scalar(x) : x);

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = uninit(x.size);
  getBackend().unary(op, x.data, out);
  return record(new Tensor(out, x.shape), op, [x], {});
}
export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
/** GELU, tanh approximation (GPT-2 "gelu_new"). */
export const gelu = (x: Tensor): Tensor => unaryOp('gelu', x);
/** SiLU / swish: x·σ(x). */
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);

/** x ** exponent for a scalar exponent. */
export function pow(x: Tensor, exponent: number): Tensor {
  const out = uninit(x.size);
  getBackend().binary('pow', x.data, stridesOf(x.shape), Float32Array.of(exponent), x.shape.map(() => 0), out, x.shape);
  return record(new Tensor(out, x.shape), 'pow', [x], { exponent });
}

/** Raw broadcast binary kernel call (no graph). */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = uninit(numel(shape));
  getBackend().binary(op, a.data, broadcastStrides(a.shape, shape), b.data, broadcastStrides(b.shape, shape), out, shape);
  return new Tensor(out, shape);
}
function binaryOp(op: 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'eq' | 'lt' | 'gt', a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(binaryRaw(op, ta, tb), op, [ta, tb], {});
}
export const add = (a: TensorLike, b: TensorLike): Tensor => binaryOp('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binaryOp('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binaryOp('mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binaryOp('div', a, b);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binaryOp('maximum', a, b);
/** 1 where a == b else 0 (no gradient). */
export const eq = (a: TensorLike, b: TensorLike): Tensor => binaryOp('eq', a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => binaryOp('lt', a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => binaryOp('gt', a, b);

/** cond != 0 ? a : b, all three broadcast together. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape), tb.shape);
  const out = uninit(numel(shape));
  getBackend().where(
    cond.data, broadcastStrides(cond.shape, shape), ta.data, broadcastStrides(ta.shape, shape),
    tb.data, broadcastStrides(tb.shape, shape), out, shape,
  );
  return record(new Tensor(out, shape), 'where', [cond, ta, tb], {});
}

function normAxes(axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : axes).map((a) => normAxis(a, rank));
  return [...new Set(list)].sort((x, y) => x - y);
}
function reduceOp(op: 'sum' | 'max', x: Tensor, axesIn: number | number[] | undefined, keepdim: boolean): Tensor {
  const axes = normAxes(axesIn, x.rank);
  const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = uninit(numel(keep));
  getBackend().reduce(op, x.data, x.shape, out, broadcastStrides(keep, x.shape));
  const shape = keepdim ? keep : x.shape.filter((_, i) => !axes.includes(i));
  return record(new Tensor(out, shape), op, [x], { axes, keepdim });
}
/** Sum over `axes` (all when omitted). */
export const sum = (x: Tensor, axes?: number | number[], keepdim = false): Tensor => reduceOp('sum', x, axes, keepdim);
/** Max over `axes` (all when omitted); the gradient is split evenly between ties. */
export const max = (x: Tensor, axes?: number | number[], keepdim = false): Tensor => reduceOp('max', x, axes, keepdim);

/**
 * Raw (graph-free) GEMM on flat buffers: [batch, m, k]·[batch, k, n] with optional transposes; `bf16`
 * rounds the operands to bfloat16 (fp32 accumulation), default: the current autocast scope.
 */
export function gemm(
  a: Float32Array, b: Float32Array, batch: number, m: number, n: number, k: number,
  transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, bf16 = matmulBf16(),
): Float32Array {
  const c = uninit(batch * m * n);
  getBackend().matmul(a, b, c, { batch, m, n, k, transA, transB, aBatchStride, bBatchStride, accumulate: false, bf16 });
  return c;
}

/**
 * Matrix product [..., m, k] · [..., k, n] → [..., m, n]; with `transB` the right operand is stored
 * [..., n, k] and used transposed (nn.Linear weights, q·kᵀ) without copying. A 2-D right operand is
 * applied to every row of the left (one GEMM over all leading dims); batch dims otherwise broadcast.
 * Inside autocast('bf16') the operands are rounded to bf16 (fp32 accumulation, fp32 output); the node
 * remembers it so the gradient GEMMs match (src/tensor/precision.ts).
 */
export function matmul(a: Tensor, b: Tensor, transB = false): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul needs rank >= 2 operands, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const k = a.shape[a.rank - 1];
  const bk = b.shape[b.rank - (transB ? 1 : 2)];
  if (bk !== k) throw new Error(`matmul shape mismatch: ${fmtShape(a.shape)} · ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  const n = b.shape[b.rank - (transB ? 2 : 1)];
  const bf16 = matmulBf16();
  if (b.rank === 2) {
    const rows = a.size / k;
    const out = gemm(a.data, b.data, 1, rows, n, k, false, transB, 0, 0, bf16);
    return record(new Tensor(out, [...a.shape.slice(0, -1), n]), 'matmul', [a, b], { transB, bf16 });
  }
  const m = a.shape[a.rank - 2];
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const ea = expandBatch(a, batchShape), eb = expandBatch(b, batchShape);
  const batch = numel(batchShape);
  const out = gemm(ea.data, eb.data, batch, m, n, k, false, transB, ea.stride, eb.stride, bf16);
  return record(new Tensor(out, [...batchShape, m, n]), 'matmul', [a, b], { transB, bf16 });
}
/**
 * x·W + b for a 2-D weight W [k, n] — or x·Wᵀ with `transB`, W stored [n, k] (nn.Linear) — and bias
 * b [n]: the GEMM adds the bias as it stores each output tile (MatmulArgs.bias), so no separate pass
 * over the output and one buffer fewer than matmul followed by add.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor, transB = false): Tensor {
  const k = x.shape[x.rank - 1];
  const n = w.shape[transB ? 0 : 1];
  if (x.rank < 1 || w.rank !== 2 || w.shape[transB ? 1 : 0] !== k || b.size !== n) {
    throw new Error(`linear shape mismatch: x ${fmtShape(x.shape)}, W ${fmtShape(w.shape)}${transB ? 'ᵀ' : ''}, b ${fmtShape(b.shape)}`);
  }
  const rows = x.size / k;
  const out = uninit(rows * n);
  const bf16 = matmulBf16();
  getBackend().matmul(x.data, w.data, out, { batch: 1, m: rows, n, k, transA: false, transB, aBatchStride: 0, bBatchStride: 0, accumulate: false, bf16, bias: b.data });
  return record(new Tensor(out, [...x.shape.slice(0, -1), n]), 'linear', [x, w, b], { transB, bf16 });
}

/** A view of x's data valid for `batchShape` batches: stride 0 for a single matrix, copy otherwise. */
function expandBatch(x: Tensor, batchShape: number[]): { data: Float32Array; stride: number } {
  const mat = x.shape[x.rank - 2] * x.shape[x.rank - 1];
  const own = x.shape.slice(0, -2);
  if (numel(own) === 1) return { data: x.data, stride: 0 };
  if (shapeEq(own, batchShape)) return { data: x.data, stride: mat };
  return { data: expandRaw(x, [...batchShape, ...x.shape.slice(-2)]).data, stride: mat };
}

/** Broadcasts x to `shape` by copying (graph-free). */
export function expandRaw(x: Tensor, shape: Shape): Tensor {
  if (shapeEq(x.shape, shape)) return x;
  const out = uninit(numel(shape));
  getBackend().copyStrided(x.data, 0, broadcastStrides(x.shape, shape), out, [...shape]);
  return new Tensor(out, shape);
}

/** Same data, new shape; one dimension may be -1. */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const target = shape.map((d) => (d === -1 ? x.size / Math.max(1, numel(known)) : d));
  if (numel(target) !== x.size || !target.every(Number.isInteger)) {
    throw new Error(`cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  return record(new Tensor(x.data, target), 'reshape', [x], { shape: target });
}

/** Reorders axes: out.shape[i] = x.shape[dims[i]]. */
export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.rank || [...dims].sort().some((d, i) => d !== i)) {
    throw new Error(`permute dims ${fmtShape(dims)} invalid for shape ${fmtShape(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const shape = dims.map((d) => x.shape[d]);
  const out = uninit(x.size);
  getBackend().copyStrided(x.data, 0, dims.map((d) => st[d]), out, shape);
  return record(new Tensor(out, shape), 'permute', [x], { dims });
}
/** Swaps two axes. */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const dims = x.shape.map((_, i) => i);
  const [i, j] = [normAxis(a, x.rank), normAxis(b, x.rank)];
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** Per-axis half-open slice x[starts[0]:ends[0], ...]. */
export function slice(x: Tensor, starts: number[], ends: number[]): Tensor {
  if (starts.length !== x.rank || ends.length !== x.rank || x.shape.some((d, i) => !(0 <= starts[i] && starts[i] <= ends[i] && ends[i] <= d))) {
    throw new Error(`slice [${starts}]..[${ends}] out of range for shape ${fmtShape(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const shape = ends.map((e, i) => e - starts[i]);
  const out = uninit(numel(shape));
  const offset = starts.reduce((acc, s, i) => acc + s * st[i], 0);
  getBackend().copyStrided(x.data, offset, st, out, shape);
  return record(new Tensor(out, shape), 'slice', [x], { starts, ends });
}
/** x[..., start:end, ...] along one axis. */
export function narrow(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis(axis, x.rank);
  return slice(x, x.shape.map((_, i) => (i === ax ? start : 0)), x.shape.map((d, i) => (i === ax ? end : d)));
}

/** Concatenation along `axis`. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat of no tensors');
  const ax = normAxis(axis, xs[0].rank);
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat shapes differ: ${xs.map((s) => fmtShape(s.shape)).join(' vs ')}`);
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((acc, t) => acc + t.shape[ax], 0);
  const outer = numel(shape.slice(0, ax));
  const innerOut = numel(shape.slice(ax));
  const out = uninit(numel(shape));
  let colOff = 0;
  for (const t of xs) {
    const inner = numel(t.shape.slice(ax));
    for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * inner, (o + 1) * inner), o * innerOut + colOff);
    colOff += inner;
  }
  return record(new Tensor(out, shape), 'concat', xs, { axis: ax });
}

/** Embedding lookup: rows of a 2-D `table` [rows, d] → [...idsShape, d]. Ids are checked. */
export function gather(table: Tensor, ids: Int32Array, idsShape: number[] = [ids.length]): Tensor {
  if (table.rank !== 2) throw new Error(`gather needs a 2-D table, got ${fmtShape(table.shape)}`);
  const [rows, d] = table.shape;
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < rows)) throw new RangeError(`gather: id ${ids[i]} at position ${i} out of range [0, ${rows})`);
  }
  const out = uninit(ids.length * d);
  getBackend().gather(table.data, ids, d, out);
  return record(new Tensor(out, [...idsShape, d]), 'gather', [table], { ids, idsShape });
}

/** out[rows, d] = 0; out[ids[i]] += src[i] (the gradient of gather). */
export function scatterAdd(src: Tensor, ids: Int32Array, rows: number): Tensor {
  const d = src.size / Math.max(1, ids.length);
  const out = new Float32Array(rows * d);
  getBackend().scatterAdd(src.data, ids, d, out);
  return record(new Tensor(out, [rows, d]), 'scatterAdd', [src], { ids, rows });
}

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.rank - 1];
  const out = uninit(x.size);
  getBackend().softmax(x.data, out, x.size / cols, cols, log);
  return record(new Tensor(out, x.shape), log ? 'logSoftmax' : 'softmax', [x], {});
}
/** Softmax over the last axis (fused; reference composition in composite.ts). */
export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
/** Log-softmax over the last axis (fused, max-subtracted). */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);

/**
 * Fused LayerNorm (or RMSNorm when `rms`) over the last axis: (x − μ)/√(σ² + eps)·w + b, or
 * x/√(mean(x²) + eps)·w. Reference compositions: layerNormReference / rmsNormReference (nn/functional).
 */
export function norm(x: Tensor, w: Tensor, b: Tensor | null, eps: number, rms: boolean): Tensor {
  const cols = x.shape[x.rank - 1];
  if (w.size !== cols || (b && b.size !== cols)) throw new Error(`norm: weight ${fmtShape(w.shape)} does not match ${fmtShape(x.shape)}`);
  const rows = x.size / cols;
  const out = uninit(x.size);
  const mean = uninit(rows), rstd = uninit(rows);
  getBackend().normForward(x.data, w.data, b ? b.data : null, out, mean, rstd, rows, cols, eps, rms);
  return record(new Tensor(out, x.shape), 'norm', b ? [x, w, b] : [x, w], { eps, rms, saved: { mean, rstd } });
}

/**
 * Fused scaled-dot-product attention: q [B, H, T, D], k/v [B, Hkv, S, D] (H a multiple of Hkv; query
 * head h reads kv head ⌊h·Hkv/H⌋); causal masks keys after S − T + t. Keeps no T×S matrix: the
 * backward pass recomputes probabilities from the saved per-row log-sum-exp. → [B, H, T, D]
 */
export function attentionFused(q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number): Tensor {
  const [B, H, T, D] = q.shape;
  const [kb, Hkv, S, kd] = k.shape;
  if (q.rank !== 4 || k.rank !== 4 || !shapeEq(k.shape, v.shape) || kb !== B || kd !== D || H % Hkv !== 0 || (causal && S < T)) {
    throw new Error(`attention: incompatible q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
  const out = uninit(q.size);
  const lse = uninit(B * H * T);
  getBackend().attention(q.data, k.data, v.data, out, lse, { B, H, Hkv, T, S, D, causal, scale });
  return record(new Tensor(out, q.shape), 'attention', [q, k, v], { causal, scale, saved: { lse } });
}

/** Dims and layouts of attentionPacked over qkv [B, T, (H + 2·Hkv)·D] → out [B, T, H·D]. */
export function packedAttentionDims(shape: Shape, H: number, Hkv: number, causal: boolean, scale: number): AttentionDims {
  const [B, T, W] = shape;
  const D = W / (H + 2 * Hkv);
  if (shape.length !== 3 || !Number.isInteger(D) || H % Hkv !== 0) {
    throw new Error(`attentionPacked: qkv ${fmtShape(shape)} is not [B, T, (H + 2·Hkv)·D] with H=${H}, Hkv=${Hkv}`);
  }
  const head = (offset: number) => ({ offset, sB: T * W, sH: D, sT: W });
  return {
    B, H, Hkv, T, S: T, D, causal, scale,
    layout: { q: head(0), k: head(H * D), v: head((H + Hkv) * D), out: { offset: 0, sB: T * H * D, sH: D, sT: H * D } },
  };
}

/**
 * Fused attention straight from a packed q/k/v projection: qkv [B, T, (H + 2·Hkv)·D] → [B, T, H·D].
 * Equal to splitting heads, attentionFused and merging heads (test), without the five permute copies.
 */
export function attentionPacked(qkv: Tensor, H: number, Hkv: number, causal: boolean, scale: number): Tensor {
  const d = packedAttentionDims(qkv.shape, H, Hkv, causal, scale);
  const out = uninit(d.B * d.T * H * d.D);
  const lse = uninit(d.B * H * d.T);
  getBackend().attention(qkv.data, qkv.data, qkv.data, out, lse, d);
  return record(new Tensor(out, [d.B, d.T, H * d.D]), 'attentionPacked', [qkv], { H, Hkv, causal, scale, saved: { lse } });
}
