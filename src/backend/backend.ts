/**
 * The Backend interface: the small set of kernels every device implements. Kernels work on flat
 * Float32Arrays (row-major) and never allocate their outputs — the tensor layer does that — so a
 * native backend can replace any of them. `ref.ts` (pure TypeScript) is the specification; the
 * conformance suite in test/conformance runs the same cases on every backend.
 */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'silu' | 'abs';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'pow' | 'eq' | 'lt' | 'gt';
export type ReduceOp = 'sum' | 'max';

/** A batched GEMM: for each batch b, C_b = op(A_b) · op(B_b) (+ C_b when `accumulate`). */
export interface MatmulArgs {
  batch: number;
  /** rows of op(A) and C */
  m: number;
  /** columns of op(B) and C */
  n: number;
  /** inner dimension */
  k: number;
  /** A is stored [k, m] (use Aᵀ) instead of [m, k] */
  transA: boolean;
  /** B is stored [n, k] (use Bᵀ) instead of [k, n] */
  transB: boolean;
  /** element offset between consecutive batches of A / B (0 = broadcast one matrix over the batch) */
  aBatchStride: number;
  bBatchStride: number;
  accumulate: boolean;
  /**
   * bf16 mixed precision: every element of A and B is rounded to bfloat16 (round to nearest even)
   * before the product, which is then accumulated in fp32. Absent/false = plain fp32. CPUs without
   * AVX512-BF16 have no faster bf16 path, so backends emulate it at fp32 speed (rounding while they
   * pack operands); the numerics are those of a bf16 GEMM with fp32 accumulation.
   */
  bf16?: boolean;
  /**
   * Row vector [n] added to every row of every batch item's C, in fp32 (C = op(A)·op(B) + bias, + C when
   * accumulate): a linear layer's bias folded into the GEMM's stores instead of a separate pass.
   */
  bias?: Float32Array;
}

/** Where row t of head h in batch b starts: offset + b·sB + h·sH + t·sT (its D values are contiguous). */
export interface HeadLayout { offset: number; sB: number; sH: number; sT: number }

/**
 * Memory layouts of q, k, v and out (the backward's gq, gk, gv and gOut follow the same ones). Lets the
 * kernel read heads straight out of a packed projection — GPT-2's qkv [B, T, 3, H, D] — and write
 * [B, T, H, D], so no permute copies surround it. gq/gk/gv may then be one buffer (disjoint regions).
 */
export interface AttentionLayout { q: HeadLayout; k: HeadLayout; v: HeadLayout; out: HeadLayout }

/** Shapes of a fused attention call: q [B, H, T, D], k/v [B, Hkv, S, D], out [B, H, T, D]. */
export interface AttentionDims {
  B: number; H: number; Hkv: number; T: number; S: number; D: number;
  /** query t sees keys 0..S−T+t (KV-cache aware) */
  causal: boolean;
  /** multiplies q·k (usually 1/√D) */
  scale: number;
  /** omitted: every tensor dense [B, heads, rows, D] */
  layout?: AttentionLayout;
}

/** The dense [B, heads, rows, D] layout. */
export const denseHeads = (heads: number, rows: number, D: number): HeadLayout => ({ offset: 0, sB: heads * rows * D, sH: rows * D, sT: D });

/** A part of a row-loss mixture (see Backend.rowLosses); the semantics are src/distill/objectives' ce / fkl / rkl. */
export interface RowLossPart {
  kind: 'ce' | 'fkl' | 'rkl';
  /** mixture weight */
  weight: number;
  /** temperature τ (ignored for ce, which is at τ = 1) */
  tau: number;
  /** loss factor: τ² with tau_squared, else 1 (1 for ce) */
  scale: number;
}

/** Inputs and outputs of Backend.rowLosses for `rows` rows of V logits. */
export interface RowLossArgs {
  rows: number;
  V: number;
  /** [rows, V] student logits */
  z: Float32Array;
  /** [rows, V] dense teacher logits; null when no part needs a teacher */
  teacher: Float32Array | null;
  /** [rows] gold tokens, -100 = ignored; null when no part is ce */
  labels: Int32Array | null;
  /** [rows] row weights; 0 = skipped row */
  weights: Float32Array;
  parts: readonly RowLossPart[];
  /** out [rows, V]: w_r · Σ_i weight_i · dl_i/dz (zero on skipped rows) */
  grad: Float32Array;
  /** out [rows, parts]: unweighted l_i(r) (0 on skipped and refused rows) */
  partLosses: Float64Array;
  /** out [rows]: 1 where the row was not computed (a non-finite logit or a label outside [0, V)) */
  refused: Uint8Array;
}

export interface Backend {
  readonly name: string;
  /** out[i] = op(x[i]) for i < n. */
  unary(op: UnaryOp, x: Float32Array, out: Float32Array): void;
  /** gx[i] = gy[i] · op'(x[i]) where y = op(x) is given too (cheaper for exp, tanh, sigmoid, sqrt). */
  unaryBackward(op: UnaryOp, x: Float32Array, y: Float32Array, gy: Float32Array, gx: Float32Array): void;
  /**
   * Strided elementwise binary op over `shape`: out (contiguous) = a[ia] op b[ib], where the operand
   * offsets follow `aStrides` / `bStrides` (0 on broadcast axes). Compare ops write 1 or 0.
   */
  binary(op: BinaryOp, a: Float32Array, aStrides: number[], b: Float32Array, bStrides: number[], out: Float32Array, shape: number[]): void;
  /** out (contiguous, shape) = cond[ic] != 0 ? a[ia] : b[ib] with broadcast strides. */
  where(cond: Float32Array, cStrides: number[], a: Float32Array, aStrides: number[], b: Float32Array, bStrides: number[], out: Float32Array, shape: number[]): void;
  /**
   * Reduction of x (contiguous, `shape`) into out, where `outStrides` maps each x index to its output
   * slot (0 on reduced axes). out is initialised by the kernel.
   */
  reduce(op: ReduceOp, x: Float32Array, shape: number[], out: Float32Array, outStrides: number[]): void;
  /** Copies x read through `strides` over `shape` into contiguous out (permute, expand). */
  copyStrided(x: Float32Array, offset: number, strides: number[], out: Float32Array, shape: number[]): void;
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, args: MatmulArgs): void;
  /** Row-wise (log-)softmax of x viewed as [rows, cols]. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;
  /** Gradient of row-wise (log-)softmax given its output y and upstream gy. */
  softmaxBackward(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: boolean): void;
  /** out[i, :] = table[ids[i], :] for rows of width d. */
  gather(table: Float32Array, ids: Int32Array, d: number, out: Float32Array): void;
  /** out[ids[i], :] += src[i, :] for rows of width d (out is not cleared). */
  scatterAdd(src: Float32Array, ids: Int32Array, d: number, out: Float32Array): void;
  /**
   * Row-wise LayerNorm ((x − μ)·rstd·w + b) or RMSNorm (rms: x·rstd·w) of x [rows, cols]; writes the
   * per-row mean (0 for RMS) and rstd for the backward pass.
   */
  normForward(x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number, rms: boolean): void;
  /** Backward of normForward: writes gx; accumulates into gw and gb. */
  normBackward(x: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array, gy: Float32Array, gx: Float32Array, gw: Float32Array, gb: Float32Array | null, rows: number, cols: number, rms: boolean): void;
  /** Fused scaled-dot-product attention; writes out and the per-row log-sum-exp lse [B, H, T]. */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, dims: AttentionDims): void;
  /**
   * One AdamW update in place (torch semantics): w ← w·decay − stepSize·m̂/(√v̂ + eps) with
   * m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², decay = 1 − lr·wd, stepSize = lr/(1−β1ᵗ),
   * √v̂ = √v/√(1−β2ᵗ). g may be null (treated as zeros).
   */
  adamw(w: Float32Array, g: Float32Array | null, m: Float32Array, v: Float32Array, a: { beta1: number; beta2: number; eps: number; decay: number; stepSize: number; sqrtBc2: number }): void;
  /** Σ x[i]² accumulated in float64 (gradient-norm clipping). */
  sumSquares(x: Float32Array): number;
  /** Backward of attention (recomputes probabilities from lse); overwrites gq, gk, gv. */
  attentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array, gq: Float32Array, gk: Float32Array, gv: Float32Array, dims: AttentionDims): void;
  /**
   * Row losses of the fused LM-head loss (src/distill/fused-loss.ts): for each row a weighted mixture of
   * ce / fkl / rkl, its per-part losses and its weighted gradient. Rows with a non-finite logit or an
   * invalid label are *refused* (flagged, not computed): the caller runs the objectives' own row
   * kernels on them, which carry the -inf / NaN conventions and the error messages.
   */
  rowLosses(a: RowLossArgs): void;
}
