/**
 * Feature-level KD (methods.md §2c): hidden-state MSE / cosine through a learned projection with a
 * layer map, attention-map KL, and TRG-style token-relation losses. Like the logit objectives these
 * return per-token losses [B·T]; masking and normalisation are reduce.ts's job. Teacher tensors are
 * constants (computed under noGrad); student tensors carry gradients.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { add, div, log, logSoftmax, matmul, mul, reshape, sqrt, sub, sum, where } from '../../tensor/ops.js';
import { fmtShape } from '../../tensor/shape.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';

const NORM_EPS = 1e-12;

// ---------------------------------------------------------------- option schemas

const layerPair = z.tuple([z.number().int().min(0), z.number().int().min(0)]);
export const hiddenStateSchema = z.strictObject({
  layer_map: z.union([z.enum(['uniform', 'last']), z.array(layerPair).min(1)]).default('uniform')
    .describe("student layer s ← teacher layer t: 'uniform' (t = round((s+1)·L_T/L_S) − 1), 'last', or explicit [[s, t], ...]"),
  projection: z.enum(['auto', 'always']).default('auto').describe("learned W (d_T × d_S, no bias): 'auto' = only when widths differ"),
  init: z.enum(['xavier', 'zero', 'identity']).default('xavier').describe('initialisation of W (DistillKit offers the same)'),
});
export const attentionKlSchema = z.strictObject({
  heads: z.enum(['match', 'average']).default('match').describe("'match': head counts must be equal; 'average': average heads first"),
});
export const trgSchema = z.strictObject({
  top_k: z.number().int().min(0).default(0).describe("keep each token's top-k teacher neighbours only (0 = all)"),
  ctx_weight: z.number().min(0).default(0).describe('weight β of the contextual InfoNCE term (0 = off)'),
  ctx_temperature: z.number().positive().default(0.1).describe('temperature of the contextual term'),
});

/** Option schemas of the feature objectives (registered in registry.ts). */
export const featureSchemas = {
  hidden_mse: hiddenStateSchema,
  hidden_cosine: hiddenStateSchema,
  attention_kl: attentionKlSchema,
  trg: trgSchema,
} as const;

export type HiddenStateOptions = z.output<typeof hiddenStateSchema>;
export type AttentionKlOptions = z.output<typeof attentionKlSchema>;
export type TrgOptions = z.output<typeof trgSchema>;

// ---------------------------------------------------------------- layer maps

/**
 * Uniform layer map (methods.md §2c, "reconstructed, standard"): student layer s (0-based) reads teacher
 * layer round((s + 1) · L_T / L_S) − 1, rounding halves up, clamped to [0, L_T).
 */
export function uniformLayerMap(studentLayers: number, teacherLayers: number): [number, number][] {
  return Array.from({ length: studentLayers }, (_, s) => {
    const t = Math.floor(((s + 1) * teacherLayers) / studentLayers + 0.5) - 1;
    return [s, Math.min(teacherLayers - 1, Math.max(0, t))] as [number, number];
  });
}

/** Resolves a layer-map option against the layer counts; explicit pairs are range-checked. */
export function resolveLayerMap(spec: HiddenStateOptions['layer_map'], studentLayers: number, teacherLayers: number): [number, number][] {
  if (spec === 'uniform') return uniformLayerMap(studentLayers, teacherLayers);
  if (spec === 'last') return [[studentLayers - 1, teacherLayers - 1]];
  for (const [s, t] of spec) {
    if (s >= studentLayers || t >= teacherLayers) {
      throw new UserError(`layer_map pair [${s}, ${t}] is out of range: the student has ${studentLayers} layers, the teacher ${teacherLayers}`, 2);
    }
  }
  return spec.map(([s, t]) => [s, t] as [number, number]);
}

// ---------------------------------------------------------------- hidden states

/** ‖a − b‖² / d per row: a, b [..., d] → [...] (a token's share of DistillKit's MSE). */
export function hiddenMsePerToken(a: Tensor, b: Tensor): Tensor {
  const d = sub(a, b);
  return div(sum(mul(d, d), -1), a.shape[a.rank - 1]);
}

/** 1 − cos(a, b) per row with cos = a·b / (√(‖a‖² + ε) √(‖b‖² + ε)), ε = 1e-12. */
export function hiddenCosinePerToken(a: Tensor, b: Tensor): Tensor {
  const na = sqrt(add(sum(mul(a, a), -1), NORM_EPS));
  const nb = sqrt(add(sum(mul(b, b), -1), NORM_EPS));
  return sub(1, div(sum(mul(a, b), -1), mul(na, nb)));
}

/**
 * Hidden-state distillation [V: DistillKit hidden_state.py, hsd_mapping.py]: for each mapped pair
 * (s, t), project the student's hidden state with W_s (d_T × d_S, no bias, trained and saved with
 * the student) and compare with the teacher's:
 *   MSE: ‖W h^S_s − h^T_t‖² / d_T      COS: 1 − cos(W h^S_s, h^T_t)
 * per token, averaged over the mapped pairs. The token mean of this equals DistillKit's
 * Σ m‖·‖²/(Σ m · d_T) averaged over layers. Parameters are named `proj.{i}.weight` (i = pair index).
 * Hidden-state lists hold one [B, T, d] tensor per layer; whether index 0 is the embedding output is
 * the caller's choice (the map indexes into the lists as given).
 */
export class HiddenStateDistiller extends Module {
  readonly map: [number, number][];
  readonly projections: (Linear | null)[];
  constructor(
    readonly loss: 'mse' | 'cosine',
    opts: HiddenStateOptions,
    readonly dims: { studentWidth: number; teacherWidth: number; studentLayers: number; teacherLayers: number },
    rng: Rng,
  ) {
    super();
    this.map = resolveLayerMap(opts.layer_map, dims.studentLayers, dims.teacherLayers);
    const { studentWidth: dS, teacherWidth: dT } = dims;
    const needW = opts.projection === 'always' || dS !== dT;
    const projections = this.map.map(() => {
      if (!needW) return null;
      const lin = new Linear(dS, dT, false, rng, Math.sqrt(2 / (dS + dT))); // xavier-normal std
      if (opts.init !== 'xavier') {
        lin.weight.data.fill(0);
        if (opts.init === 'identity') for (let i = 0; i < Math.min(dS, dT); i++) lin.weight.data[i * dS + i] = 1;
      }
      return lin;
    });
    this.projections = needW ? this.registerList('proj', projections as Linear[]) : projections;
  }

  /** Per-token loss [B·T] from per-layer hidden states ([B, T, d_S] and [B, T, d_T] each). */
  perToken(student: Tensor[], teacher: Tensor[]): Tensor {
    let total: Tensor | null = null;
    this.map.forEach(([s, t], i) => {
      const hs = student[s], ht = teacher[t];
      if (!hs || !ht) throw new UserError(`hidden-state pair [${s}, ${t}] needs student layer ${s} and teacher layer ${t}; got ${student.length} and ${teacher.length} layers`, 2);
      const proj = this.projections[i];
      const ps = proj ? proj.forward(hs) : hs; // [B, T, d_T]
      if (ps.shape[ps.rank - 1] !== ht.shape[ht.rank - 1] || ps.size / ps.shape[ps.rank - 1] !== ht.size / ht.shape[ht.rank - 1]) {
        throw new UserError(`hidden states do not match: student ${fmtShape(hs.shape)} (projected ${fmtShape(ps.shape)}) vs teacher ${fmtShape(ht.shape)}`, 2);
      }
      const l = this.loss === 'mse' ? hiddenMsePerToken(ps, ht) : hiddenCosinePerToken(ps, ht); // [B, T]
      total = total ? add(total, l) : l;
    });
    const t = total as unknown as Tensor;
    return reshape(div(t, this.map.length), [-1]);
  }
}

// ---------------------------------------------------------------- attention maps

/** Head-mean over axis 1 of [B, H, T, S] → [B, 1, T, S]. */
function meanHeads(a: Tensor): Tensor {
  return div(sum(a, 1, true), a.shape[1]);
}

/**
 * MiniLM-style attention-map distillation (methods.md §2c, reconstructed from MiniLM): rows of the
 * attention probabilities [B, H, T, S] are distributions over keys;
 *   l_{b,t} = mean_h KL(A^T_{b,h,t,:} ‖ A^S_{b,h,t,:})          → [B·T]
 * Keys where the teacher's probability is 0 (causal masking) contribute 0. With `heads: 'average'` the
 * heads are averaged first (different head counts); with 'match' the counts must be equal.
 */
export function attentionKlPerToken(studentAttn: Tensor, teacherAttn: Tensor, opts: AttentionKlOptions = { heads: 'match' }): Tensor {
  if (studentAttn.rank !== 4 || teacherAttn.rank !== 4) throw new UserError(`attention maps must be [B, H, T, S]; got ${fmtShape(studentAttn.shape)} and ${fmtShape(teacherAttn.shape)}`, 2);
  const [B, Hs, T, S] = studentAttn.shape;
  const [Bt, Ht, Tt, St] = teacherAttn.shape;
  if (B !== Bt || T !== Tt || S !== St) throw new UserError(`attention maps differ in [B, ·, T, S]: student ${fmtShape(studentAttn.shape)}, teacher ${fmtShape(teacherAttn.shape)}`, 2);
  let aS = studentAttn, aT = teacherAttn;
  if (Hs !== Ht) {
    if (opts.heads !== 'average') throw new UserError(`attention_kl: student has ${Hs} heads, teacher ${Ht}; set heads: 'average'`, 2);
  }
  if (opts.heads === 'average') {
    aS = meanHeads(aS);
    aT = new Tensor(meanHeads(aT.detach()).data, [B, 1, T, S]);
  }
  const pos = new Float32Array(aT.size), logT = new Float32Array(aT.size);
  for (let i = 0; i < aT.size; i++) if (aT.data[i] > 0) { pos[i] = 1; logT[i] = Math.log(aT.data[i]); }
  const posT = new Tensor(pos, aT.shape);
  const safeS = where(posT, aS, 1); // log(1) = 0 where the teacher is 0
  const terms = where(posT, mul(aT.detach(), sub(new Tensor(logT, aT.shape), log(safeS))), 0);
  const H = aT.shape[1];
  return reshape(div(sum(sum(terms, -1), 1), H), [B * T]); // [B·T]
}

// ---------------------------------------------------------------- TRG: token relations

function normalizeRows(h: Tensor): Tensor {
  return div(h, sqrt(add(sum(mul(h, h), -1, true), NORM_EPS)));
}

/**
 * TRG-style token-relationship loss (methods.md §2c "TRG", reconstructed; the relation term is the
 * dimension-free Gram loss of "Attention-map and relation distillation"). Per instance, edges are the
 * token×token cosine similarities E_ij = cos(h_i, h_j) of the student and of the teacher:
 *
 *   l_i = Σ_{j ∈ N(i)} (E^S_ij − E^T_ij)² / |N(i)|
 *        + β · ( −log softmax_j( cos(W h^S_i, h^T_j) / τ_c )[i] )        (contextual InfoNCE, β = ctx_weight)
 *
 * N(i) = the other unmasked tokens j ≠ i of the same instance, or only the top_k of them by teacher
 * similarity. With every token unmasked and top_k = 0 the token mean is ‖E^S − E^T‖²_F / (T(T−1))
 * (the diagonal, always 0, is left out). The contextual term needs equal widths or a `projection`
 * (d_S → d_T); its softmax runs over the unmasked tokens (and i itself).
 * hS [B, T, d_S], hT [B, T, d_T], mask [B·T] (1 = token used) → per-token losses [B·T].
 */
export function trgPerToken(hS: Tensor, hT: Tensor, opts: TrgOptions, mask?: Float32Array, projection?: Linear | null): Tensor {
  if (hS.rank !== 3 || hT.rank !== 3 || hS.shape[0] !== hT.shape[0] || hS.shape[1] !== hT.shape[1]) {
    throw new UserError(`trg: hidden states must be [B, T, d] with equal B and T; got ${fmtShape(hS.shape)} and ${fmtShape(hT.shape)}`, 2);
  }
  const [B, T] = hS.shape;
  const m = mask ?? new Float32Array(B * T).fill(1);
  const ES = matmul(normalizeRows(hS), normalizeRows(hS), true); // [B, T, T]
  const ETd = matmul(normalizeRows(hT.detach()), normalizeRows(hT.detach()), true).data;
  const pairs = new Float32Array(B * T * T), inv = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) {
    let js: number[] = [];
    for (let j = 0; j < T; j++) if (j !== i && m[b * T + j]) js.push(j);
    if (opts.top_k > 0) js = js.sort((x, y) => ETd[(b * T + i) * T + y] - ETd[(b * T + i) * T + x] || x - y).slice(0, opts.top_k);
    for (const j of js) pairs[(b * T + i) * T + j] = 1;
    inv[b * T + i] = js.length ? 1 / js.length : 0;
  }
  const diff = sub(ES, new Tensor(ETd, [B, T, T]));
  const rel = mul(sum(mul(new Tensor(pairs, [B, T, T]), mul(diff, diff)), -1), new Tensor(inv, [B, T])); // [B, T]
  let out = reshape(rel, [B * T]);
  if (opts.ctx_weight > 0) {
    const ps = projection ? projection.forward(hS) : hS;
    if (ps.shape[2] !== hT.shape[2]) throw new UserError(`trg: the contextual term needs equal widths or a projection (student ${hS.shape[2]}, teacher ${hT.shape[2]})`, 2);
    const cos = matmul(normalizeRows(ps), new Tensor(normalizeRows(hT.detach()).data, hT.shape), true); // [B, T, T]
    const allowed = new Float32Array(B * T * T), diag = new Float32Array(B * T * T);
    for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      if (j === i || m[b * T + j]) allowed[(b * T + i) * T + j] = 1;
      if (j === i) diag[(b * T + i) * T + j] = 1;
    }
    const logits = where(new Tensor(allowed, [B, T, T]), mul(cos, 1 / opts.ctx_temperature), -Infinity);
    const nll = sum(where(new Tensor(diag, [B, T, T]), logSoftmax(logits), 0), -1); // [B, T] = log p_ii
    out = sub(out, mul(reshape(nll, [B * T]), opts.ctx_weight));
  }
  return out;
}
