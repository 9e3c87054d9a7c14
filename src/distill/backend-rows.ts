/**
 * The backend's row-loss kernels (Backend.rowLosses: native and multi-threaded with the addon) for the
 * fused chunked head + loss. They cover mixtures of ce, fkl and rkl against a dense teacher — the
 * common distillation losses, whose per-row TypeScript loops otherwise dominate a large-vocabulary
 * step. `backendRowPlan` says whether a mixture qualifies; anything else (other objectives, sparse
 * teachers) stays on the objectives' own row kernels. Rows the backend refuses (a non-finite logit,
 * an invalid label) are recomputed by those kernels, so results and error messages are unchanged.
 */
import type { RowLossPart } from '../backend/backend.js';
import type { Mixture } from './mixture.js';

/** One backend part per mixture part of non-zero weight, with its log key; null if some part is not covered. */
export function backendRowPlan(mixture: Mixture): { parts: RowLossPart[]; keys: string[] } | null {
  const parts: RowLossPart[] = [], keys: string[] = [];
  for (const p of mixture.parts) {
    if (p.weight === 0) continue; // skipped by the row loop too
    const name = p.objective.name, o = p.objective.options;
    if (name === 'ce') parts.push({ kind: 'ce', weight: p.weight, tau: 1, scale: 1 });
    else if (name === 'fkl' || name === 'rkl') {
      const tau = o.temperature, sq = o.tau_squared;
      if (typeof tau !== 'number' || typeof sq !== 'boolean') return null;
      parts.push({ kind: name, weight: p.weight, tau, scale: sq ? tau * tau : 1 });
    } else return null;
    keys.push(p.key);
  }
  return { parts, keys };
}
