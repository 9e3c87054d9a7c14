/**
 * A Bench-S "world" shared by the capacity-gap, TAID and drafter experiments: an oracle, a training set
 * of oracle sequences, a held-out set, and helpers to train a teacher, distill a student and measure it
 * against the oracle (golden) and against its teacher.
 */
import type { CausalLM } from '../models/base.js';
import { Rng } from '../util/rng.js';
import {
  benchModel, distillStudent, divergences, makeBatch, ModelOracle, modelLogProbs, sampleResponses, trainCe,
  type DistillMethod, type LabEvent, type ModelSize, type OptimSpec,
} from './bench-s.js';
import type { Batch } from '../data/loader.js';

export interface WorldSpec { V: number; S: number; P: number; oracle: ModelSize; gain: number; trainSeqs: number; heldOut: number }

export class World {
  readonly oracle: ModelOracle;
  readonly train: Int32Array;
  readonly held: Batch;
  private readonly lpOracleHeld: Float64Array;
  readonly oracleEntropy: number;
  constructor(readonly spec: WorldSpec, readonly seed: number) {
    this.oracle = new ModelOracle(spec.V, spec.S, spec.oracle, 1000 + seed, spec.gain);
    this.train = this.oracle.sample(spec.trainSeqs, spec.S, new Rng(3000 + seed));
    const heldSeqs = this.oracle.sample(spec.heldOut, spec.S, new Rng(2000 + seed));
    this.held = makeBatch(heldSeqs, spec.S, Array.from({ length: spec.heldOut }, (_, i) => i), spec.P);
    this.lpOracleHeld = this.oracle.logProbs(this.held);
    this.oracleEntropy = this.oracle.entropy(this.held);
  }
  model(size: ModelSize, seed: number): CausalLM { return benchModel(size, this.spec.V, this.spec.S, seed); }
  /** next-token CE on the oracle training set */
  trainTeacher(size: ModelSize, o: OptimSpec, seed: number, emit: (e: LabEvent) => void, label: string): CausalLM {
    const m = this.model(size, seed);
    emit({ type: 'stage', label, total: o.steps });
    trainCe(m, this.train, this.spec.S, o, seed + 7, (s, loss) => { if (s % 10 === 0 || s === o.steps) emit({ type: 'tick', value: s, info: { loss: loss.toFixed(3) } }); });
    return m;
  }
  /** distills a fresh student (fixed init seed) offline on the oracle training set, or on-policy from its prompts */
  distill(size: ModelSize, teacher: CausalLM, m: DistillMethod, o: OptimSpec, seed: number, emit: (e: LabEvent) => void, label: string): CausalLM {
    const st = this.model(size, seed);
    emit({ type: 'stage', label, total: o.steps });
    distillStudent(st, teacher, this.train, this.spec.S, this.spec.P, m, o, seed + 11, (s, loss) => { if (s % 10 === 0 || s === o.steps) emit({ type: 'tick', value: s, info: { loss: loss.toFixed(3) } }); });
    return st;
  }
  /** KL(oracle‖model), TVD and NLL of held-out oracle text, per token */
  golden(model: CausalLM): { fkl: number; tvd: number; nll: number } {
    const d = divergences(this.lpOracleHeld, modelLogProbs(model, this.held), this.held, this.spec.V);
    return { fkl: d.fkl, tvd: d.tvd, nll: d.nll };
  }
  /** divergences of the student from the teacher on held-out prompts continued by the teacher */
  toTeacher(teacher: CausalLM, student: CausalLM, seed: number): { fkl: number; rkl: number; tvd: number; greedyMatch: number; studentEntropy: number } {
    const seqs = sampleResponses(teacher, this.heldSeqs(), this.spec.S, this.spec.P, new Rng(9000 + seed));
    const b = makeBatch(seqs, this.spec.S, Array.from({ length: this.spec.heldOut }, (_, i) => i), this.spec.P);
    const lp = modelLogProbs(teacher, b), lq = modelLogProbs(student, b);
    const d = divergences(lp, lq, b, this.spec.V);
    const V = this.spec.V;
    let match = 0, h = 0, n = 0;
    for (let r = 0; r < b.target.length; r++) {
      if (b.target[r] < 0) continue;
      let ap = 0, aq = 0;
      for (let v = 1; v < V; v++) { if (lp[r * V + v] > lp[r * V + ap]) ap = v; if (lq[r * V + v] > lq[r * V + aq]) aq = v; }
      if (ap === aq) match++;
      for (let v = 0; v < V; v++) h -= Math.exp(lq[r * V + v]) * lq[r * V + v];
      n++;
    }
    return { fkl: d.fkl, rkl: d.rkl, tvd: d.tvd, greedyMatch: match / n, studentEntropy: h / n };
  }
  private heldSeqs(): Int32Array {
    const { S, heldOut } = this.spec, T = S - 1;
    const out = new Int32Array(heldOut * S);
    for (let i = 0; i < heldOut; i++) { out.set(this.held.input.subarray(i * T, (i + 1) * T), i * S); out[i * S + T] = 0; }
    return out;
  }
}

/** Parameters of a model (for teacher/student ratios). */
export function params(m: CausalLM): number { return m.numParameters(); }
