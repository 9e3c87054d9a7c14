/**
 * Reference Backend.rowLosses: the ce / fkl / rkl row kernels of src/distill/objectives restated for
 * rows whose logits are all finite (the only rows the kernel accepts; the rest are refused, exactly as
 * the native kernel does), in float64 throughout. It is kept free of imports from src/distill (that
 * layer imports the backend), and is itself tested against those row kernels.
 */
import type { RowLossArgs } from './backend.js';

const IGNORE = -100;

/** max of x[o .. o+V) in float64, or NaN when some entry is not finite. */
function finiteMax(x: Float32Array, o: number, V: number): number {
  let m = -Infinity;
  for (let j = 0; j < V; j++) {
    const v = x[o + j];
    if (!Number.isFinite(v)) return NaN;
    if (v > m) m = v;
  }
  return m;
}

/** e[j] = exp((x[o+j] − m)/τ); returns Σ e. */
function expRow(x: Float32Array, o: number, V: number, m: number, tau: number, e: Float64Array): number {
  let s = 0;
  for (let j = 0; j < V; j++) s += e[j] = Math.exp((x[o + j] - m) / tau);
  return s;
}

export function rowLossesRef(a: RowLossArgs): void {
  const { rows, V, z, teacher: t, labels, weights, parts, grad, partLosses, refused } = a;
  const np = parts.length;
  const needT = parts.some((p) => p.kind !== 'ce'), needY = parts.some((p) => p.kind === 'ce');
  if (needT && !t) throw new Error('rowLosses: a kl part needs teacher logits');
  if (needY && !labels) throw new Error('rowLosses: a ce part needs labels');
  const qe = new Float64Array(V), pe = new Float64Array(V), g = new Float64Array(V);
  for (let r = 0; r < rows; r++) {
    const o = r * V, w = weights[r];
    partLosses.fill(0, r * np, (r + 1) * np);
    refused[r] = 0;
    const y = needY && labels ? labels[r] : IGNORE;
    const mz = finiteMax(z, o, V), mt = needT && t ? finiteMax(t, o, V) : 0;
    if (w === 0 || V === 0 || Number.isNaN(mz) || Number.isNaN(mt) || (y !== IGNORE && !(y >= 0 && y < V))) {
      if (w !== 0) refused[r] = 1;
      grad.fill(0, o, o + V);
      continue;
    }
    g.fill(0);
    let qtau = NaN, ptau = NaN, sq = 0, sp = 0;
    for (let i = 0; i < np; i++) {
      const p = parts[i];
      const tau = p.kind === 'ce' ? 1 : p.tau;
      if (qtau !== tau) { sq = expRow(z, o, V, mz, tau, qe); qtau = tau; }
      if (p.kind === 'ce') {
        if (y === IGNORE) continue;
        partLosses[r * np + i] = Math.log(sq) - (z[o + y] - mz);
        for (let j = 0; j < V; j++) g[j] += p.weight * (qe[j] / sq);
        g[y] -= p.weight;
        continue;
      }
      if (ptau !== tau) { sp = expRow(t as Float32Array, o, V, mt, tau, pe); ptau = tau; }
      // log p_j − log q_j = d_j + c with d_j = (t_j − mt)/τ − (z_j − mz)/τ, c = log Sq − log Sp
      const c = Math.log(sq) - Math.log(sp), f = (p.weight * p.scale) / tau;
      const tt = t as Float32Array;
      let acc = 0;
      if (p.kind === 'fkl') {
        for (let j = 0; j < V; j++) acc += pe[j] * ((tt[o + j] - mt) / tau - (z[o + j] - mz) / tau);
        partLosses[r * np + i] = (acc / sp + c) * p.scale;
        for (let j = 0; j < V; j++) g[j] += f * (qe[j] / sq - pe[j] / sp); // τ(q − p), Σp = 1
      } else {
        for (let j = 0; j < V; j++) acc += qe[j] * ((tt[o + j] - mt) / tau - (z[o + j] - mz) / tau);
        const L = -acc / sq - c;
        partLosses[r * np + i] = L * p.scale;
        for (let j = 0; j < V; j++) {
          const d = (tt[o + j] - mt) / tau - (z[o + j] - mz) / tau;
          g[j] -= f * (qe[j] / sq) * (d + c + L); // τ q (log q − log p − KL)
        }
      }
    }
    for (let j = 0; j < V; j++) grad[o + j] = w * g[j];
  }
}
