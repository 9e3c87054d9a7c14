/**
 * TAID — temporally adaptive interpolated distillation [V: SakanaAI/TAID src/distil_losses/taid.py, as
 * transcribed in methods.md §2a]:
 *
 *   target_t = softmax((1 − t) · stopgrad(zS/τ) + t · zT/τ)     (interpolate LOGITS, student detached)
 *   L        = KL(target_t ‖ q)                                  dL/dzS = (q − target_t)/τ   [D]
 *
 * `computeObjective`/`perToken` take a fixed t (option `t`, default `t_start`); the schedule that moves
 * t from t_start to t_end lives in `TaidSchedule`, which the trainer steps once per optimizer update and
 * saves in its checkpoint. Deviations: the reference minimises the cross-entropy −Σ target log q; we use
 * the KL form (adds the target's entropy, a constant for the gradient since the target is detached) so
 * the loss is 0 for identical inputs. Temperature (default 1, not in the reference) divides both logit
 * sets before interpolating. On a sparse teacher the interpolation is done per category, the tail
 * bucket included: target ∝ Q^(1−t) P^t.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { mul, sub, sum } from '../../tensor/ops.js';
import { Tensor } from '../../tensor/tensor.js';
import { divergenceObjective, sparseOption, tauSquaredOption, temperatureOption } from './define.js';

/**
 * TAID's target for one row over its kept categories: log R = log softmax((1−t) log Q + t log P),
 * -Infinity where not kept (or where P is a genuine zero and t > 0). Softmax is shift invariant, so
 * log-probs stand in for logits.
 */
export function taidTargetRow(
  logQ: ArrayLike<number>, logP: ArrayLike<number>, keep: ArrayLike<number>, off: number, C: number, t: number, out: Float64Array,
): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) {
    const lp = logP[off + c];
    const a = !keep[off + c] ? -Infinity : (1 - t) * logQ[off + c] + (t === 0 ? 0 : lp === -Infinity ? -Infinity : t * lp);
    out[c] = a;
    if (a > m) m = a;
  }
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(out[c] - m);
  const lse = m + Math.log(s);
  for (let c = 0; c < C; c++) out[c] -= lse;
}

const scheduleShape = {
  t_start: z.number().min(0).lt(1).default(0.4).describe('initial interpolation weight of the teacher (TAID default 0.4)'),
  t_end: z.number().gt(0).max(1).default(1).describe('final t (TAID default 1.0)'),
  alpha: z.number().min(0).max(1).default(5e-4).describe('adaptive step size α of the t update (TAID default 5e-4)'),
  beta: z.number().min(0).lt(1).default(0.99).describe('momentum β of the relative loss improvement (TAID default 0.99)'),
  adaptive: z.boolean().default(true).describe('false = the pure linear ramp t_start → t_end (TAID --taid_disable_adaptive)'),
};

export const taid = divergenceObjective({
  name: 'taid',
  summary: 'TAID: KL to an interpolation of (detached) student and teacher logits with weight t',
  schema: z.strictObject({
    t: z.number().min(0).max(1).optional().describe('teacher weight of the interpolated target for this step (default t_start); set by TaidSchedule during training'),
    ...scheduleShape,
    temperature: temperatureOption,
    tau_squared: tauSquaredOption(true),
    sparse: sparseOption,
  }),
  div: {
    composite(c, o) {
      const t = o.t ?? o.t_start;
      const R = new Float32Array(c.N * c.C), logR = new Float32Array(c.N * c.C);
      const row = new Float64Array(c.C);
      for (let n = 0; n < c.N; n++) {
        taidTargetRow(c.logQ.data, c.rawLogP, c.rawKeep, n * c.C, c.C, t, row);
        for (let j = 0; j < c.C; j++) {
          if (row[j] === -Infinity) continue; // R = 0, log R sanitised to 0
          R[n * c.C + j] = Math.exp(row[j]);
          logR[n * c.C + j] = row[j];
        }
      }
      const Rt = new Tensor(R, [c.N, c.C]);
      return sum(mul(Rt, sub(new Tensor(logR, [c.N, c.C]), c.logQ)), -1); // [N]
    },
    row(r, o, G) {
      const logR = new Float64Array(r.C);
      taidTargetRow(r.logQ, r.logP, r.keep, 0, r.C, o.t ?? o.t_start, logR);
      let L = 0;
      for (let c = 0; c < r.C; c++) {
        if (logR[c] === -Infinity) continue;
        const R = Math.exp(logR[c]);
        L += R * (logR[c] - r.logQ[c]);
        G[c] -= R;
      }
      return L;
    },
  },
});

export type TaidScheduleOptions = z.output<z.ZodObject<typeof scheduleShape>>;
/** Serialisable schedule state (goes into the trainer's checkpoint). */
export interface TaidScheduleState {
  t: number;
  momentum: number;
  /** loss of the previous step; null before the first update */
  prevLoss: number | null;
}

/**
 * TAID's t schedule [V: methods.md §2a]. After optimizer step s (of S in total) with loss l:
 *   first step: remember l only.
 *   rel = (l_prev − l)/(l_prev + 1e-15);  m = β m + (1 − β) rel;  δ = α σ(m) (1 − t)
 *   t   = min(t_end, max(t_lin, t + δ)),  t_lin = t_start + (t_end − t_start) s/S
 * so t never falls below the linear ramp and never decreases. With `adaptive: false`, t = t_lin.
 * Here s counts completed steps (1 after the first update), so t reaches t_end after step S.
 */
export class TaidSchedule {
  private state: TaidScheduleState;
  constructor(readonly options: TaidScheduleOptions, readonly totalSteps: number, state?: TaidScheduleState) {
    if (!(Number.isInteger(totalSteps) && totalSteps >= 1)) throw new UserError(`TAID schedule: totalSteps must be a positive integer, got ${totalSteps}`, 2);
    if (options.t_end < options.t_start) throw new UserError(`TAID schedule: t_end (${options.t_end}) must be ≥ t_start (${options.t_start})`, 2);
    this.state = state ? { ...state } : { t: options.t_start, momentum: 0, prevLoss: null };
  }
  /** t to use for the next step. */
  get t(): number {
    return this.state.t;
  }
  /** Records the loss of optimizer step `step` (0-based) and returns t for the next step. */
  update(loss: number, step: number): number {
    const o = this.options, st = this.state;
    const tLin = Math.min(o.t_end, o.t_start + ((o.t_end - o.t_start) * (step + 1)) / this.totalSteps);
    if (!o.adaptive) {
      st.t = tLin;
      st.prevLoss = loss;
      return st.t;
    }
    if (st.prevLoss === null) {
      st.prevLoss = loss;
      return st.t;
    }
    const rel = (st.prevLoss - loss) / (st.prevLoss + 1e-15);
    st.momentum = o.beta * st.momentum + (1 - o.beta) * rel;
    const delta = (o.alpha * (1 - st.t)) / (1 + Math.exp(-st.momentum));
    st.t = Math.min(o.t_end, Math.max(tLin, st.t + delta));
    st.prevLoss = loss;
    return st.t;
  }
  /** A copy of the state for checkpoints (JSON-serialisable). */
  saveState(): TaidScheduleState {
    return { ...this.state };
  }
  loadState(s: TaidScheduleState): void {
    this.state = { ...s };
  }
}
