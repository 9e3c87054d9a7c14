/**
 * Reference implementations of the fused kernels: LayerNorm/RMSNorm forward+backward and causal
 * attention (flash-style: per query row, with the row's log-sum-exp saved instead of the T×S matrix;
 * backward recomputes probabilities). Float64 accumulation inside rows.
 */
import type { AttentionDims } from './backend.js';

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

export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, d: AttentionDims): void {
  const { B, H, Hkv, T, S, D, scale } = d;
  const rep = H / Hkv;
  const p = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / rep);
    const qBase = ((b * H + h) * T) * D, kBase = ((b * Hkv + kvh) * S) * D;
    for (let t = 0; t < T; t++) {
      const qo = qBase + t * D, last = lastKey(d, t);
      let m = -Infinity;
      for (let s = 0; s <= last; s++) {
        const ko = kBase + s * D;
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[qo + i] * k[ko + i];
        p[s] = dot * scale;
        if (p[s] > m) m = p[s];
      }
      let l = 0;
      acc.fill(0);
      for (let s = 0; s <= last; s++) {
        const e = Math.exp(p[s] - m);
        l += e;
        const vo = kBase + s * D;
        for (let i = 0; i < D; i++) acc[i] += e * v[vo + i];
      }
      for (let i = 0; i < D; i++) out[qo + i] = acc[i] / l;
      lse[(b * H + h) * T + t] = m + Math.log(l);
    }
  }
}

/**
 * dV_s += P_s·dO; dP_s = dO·v_s; dS_s = P_s(dP_s − Σ P·dP); dQ = scale·Σ dS_s k_s; dK_s += scale·dS_s q.
 * gq is overwritten; gk and gv are overwritten (several query heads may share a kv head).
 */
export function attentionBackward(
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array,
  gq: Float32Array, gk: Float32Array, gv: Float32Array, d: AttentionDims,
): void {
  const { B, H, Hkv, T, S, D, scale } = d;
  const rep = H / Hkv;
  gk.fill(0);
  gv.fill(0);
  const P = new Float64Array(S);
  const gqAcc = new Float64Array(D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / rep);
    const qBase = ((b * H + h) * T) * D, kBase = ((b * Hkv + kvh) * S) * D;
    for (let t = 0; t < T; t++) {
      const qo = qBase + t * D, last = lastKey(d, t), L = lse[(b * H + h) * T + t];
      let Dsum = 0;
      for (let i = 0; i < D; i++) Dsum += gOut[qo + i] * out[qo + i];
      gqAcc.fill(0);
      for (let s = 0; s <= last; s++) {
        const ko = kBase + s * D;
        let dot = 0, dp = 0;
        for (let i = 0; i < D; i++) { dot += q[qo + i] * k[ko + i]; dp += gOut[qo + i] * v[ko + i]; }
        P[s] = Math.exp(dot * scale - L);
        const ds = P[s] * (dp - Dsum) * scale;
        for (let i = 0; i < D; i++) {
          gqAcc[i] += ds * k[ko + i];
          gk[ko + i] += ds * q[qo + i];
          gv[ko + i] += P[s] * gOut[qo + i];
        }
      }
      for (let i = 0; i < D; i++) gq[qo + i] = gqAcc[i];
    }
  }
}
