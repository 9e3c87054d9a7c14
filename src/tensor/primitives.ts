/**
 * The closed set of primitives. Every differentiable computation in lmdistill is a composition of
 * these (or a fused op with a reference composition it is tested against). `PrimParams` maps each
 * primitive to its static parameters; the VJP table in autodiff.ts is typed over this map, so adding a
 * primitive without its gradient rule is a compile error.
 */
import type { Tensor } from './tensor.js';

type NoParams = Record<string, never>;

export interface PrimParams {
  // elementwise unary
  neg: NoParams; exp: NoParams; log: NoParams; sqrt: NoParams; tanh: NoParams;
  sigmoid: NoParams; relu: NoParams; gelu: NoParams; silu: NoParams; abs: NoParams;
  /** x ** exponent for a scalar exponent */
  pow: { exponent: number };
  // elementwise binary with broadcasting
  add: NoParams; sub: NoParams; mul: NoParams; div: NoParams; maximum: NoParams;
  // comparisons (outputs 0/1, no gradient)
  eq: NoParams; lt: NoParams; gt: NoParams;
  /** inputs [cond, a, b]: cond ? a : b, broadcast */
  where: NoParams;
  // reductions
  sum: { axes: number[]; keepdim: boolean };
  max: { axes: number[]; keepdim: boolean };
  /**
   * [..., m, k] · [..., k, n] (or · [..., n, k]ᵀ when transB) with broadcast batch dims; bf16: operands
   * rounded to bfloat16 (autocast scope at forward time; the gradient GEMMs use the same)
   */
  matmul: { transB: boolean; bf16: boolean };
  /** inputs [x [..., k], W [k, n] (or [n, k] when transB), b [n]]: x·W + b in one GEMM (bias in the output); bf16 as matmul */
  linear: { transB: boolean; bf16: boolean };
  // movement
  reshape: { shape: number[] };
  permute: { dims: number[] };
  /** per-axis half-open ranges */
  slice: { starts: number[]; ends: number[] };
  concat: { axis: number };
  /** rows of a 2-D table: out[...idsShape, d] = table[ids] */
  gather: { ids: Int32Array; idsShape: number[] };
  /** inverse of gather: out[rows, d] with out[ids[i]] += src[i] */
  scatterAdd: { ids: Int32Array; rows: number };
  // fused
  softmax: NoParams;
  logSoftmax: NoParams;
  /** inputs [x, w] or [x, w, b]: LayerNorm (RMSNorm when rms) over the last axis; saved: per-row stats */
  norm: { eps: number; rms: boolean; saved: { mean: Float32Array; rstd: Float32Array } };
  /** inputs [q, k, v]: fused scaled-dot-product attention (GQA, causal); saved: per-row log-sum-exp */
  attention: { causal: boolean; scale: number; saved: { lse: Float32Array } };
  /**
   * input [qkv [B, T, (H + 2·Hkv)·D]] (q heads, then k heads, then v heads along the last axis, as a fused
   * q/k/v projection produces them) → [B, T, H·D]: the same attention read and written in place, with no
   * split-heads / merge-heads copies; saved: per-row log-sum-exp [B, H, T]
   */
  attentionPacked: { H: number; Hkv: number; causal: boolean; scale: number; saved: { lse: Float32Array } };
  /**
   * inputs [h [N, C], W [V, C]]: a scalar loss of the logits h·Wᵀ computed chunk by chunk, whose input
   * gradients were computed in the same pass (Liger-style fused linear + loss, src/distill/chunked.ts)
   */
  fusedLinearLoss: { saved: { gh: Float32Array | null; gW: Float32Array | null } };
}

export type Primitive = keyof PrimParams;

/** A recorded application of a primitive: what backward needs to compute input gradients. */
export interface Node<P extends Primitive = Primitive> {
  prim: P;
  inputs: Tensor[];
  params: PrimParams[P];
}

export type AnyNode = { [P in Primitive]: Node<P> }[Primitive];
