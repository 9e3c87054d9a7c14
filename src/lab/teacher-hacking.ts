/**
 * Lab: "On Teacher Hacking in Language Model Distillation" at Bench-S scale (methods.md §2b).
 * oracle (fixed random tiny GPT-2 with sharpened logits, exact conditionals) → teacher (CE on a few oracle samples, trained
 * past its best point so it is imperfect and over-confident) → students distilled from the teacher with
 * token forward KL on response positions under several data regimes, same student init, steps and lr:
 *   offline         N prompts × 1 teacher response, fixed, many epochs
 *   offline_k       N prompts × k teacher responses (more completions per prompt)
 *   offline_prompts M = mult·N prompts × 1 response (more prompt diversity)
 *   online_teacher  the same N prompts, fresh teacher responses every step
 *   online_student  the same N prompts, fresh student responses every step (on-policy)
 * Every `evalEvery` steps: proxy = KL(teacher‖student) and golden = KL(oracle‖student), token means on
 * held-out prompts with teacher responses; also the proxy on the regime's training sequences.
 */
import type { CausalLM } from '../models/base.js';
import { Rng } from '../util/rng.js';
import {
  benchModel, distillLoss, divergences, epochs, makeBatch, makeTrainer, ModelOracle, modelLogProbs,
  powerLawDeviation, sampleResponses, trainCe, type LabEvent, type LabSize, type ModelSize,
} from './bench-s.js';

interface Spec {
  V: number; S: number; P: number; oracle: ModelSize; gain: number;
  teacher: ModelSize; teacherData: number; teacherSteps: number;
  student: ModelSize; prompts: number; k: number; promptMult: number; steps: number; batch: number; lr: number; evalEvery: number; heldOut: number;
}

export const TEACHER_HACKING_SIZES: Record<LabSize, Spec> = {
  full: { V: 32, S: 17, P: 4, oracle: { n_embd: 32, n_layer: 1, n_head: 2 }, gain: 10, teacher: { n_embd: 32, n_layer: 2, n_head: 2 }, teacherData: 600, teacherSteps: 600, student: { n_embd: 16, n_layer: 1, n_head: 2 }, prompts: 32, k: 4, promptMult: 4, steps: 400, batch: 16, lr: 5e-3, evalEvery: 20, heldOut: 64 },
  quick: { V: 32, S: 17, P: 4, oracle: { n_embd: 32, n_layer: 1, n_head: 2 }, gain: 10, teacher: { n_embd: 32, n_layer: 2, n_head: 2 }, teacherData: 600, teacherSteps: 600, student: { n_embd: 16, n_layer: 1, n_head: 2 }, prompts: 32, k: 4, promptMult: 4, steps: 150, batch: 16, lr: 5e-3, evalEvery: 15, heldOut: 32 },
  tiny: { V: 16, S: 9, P: 3, oracle: { n_embd: 32, n_layer: 1, n_head: 2 }, gain: 20, teacher: { n_embd: 16, n_layer: 1, n_head: 2 }, teacherData: 32, teacherSteps: 10, student: { n_embd: 8, n_layer: 1, n_head: 2 }, prompts: 8, k: 2, promptMult: 2, steps: 10, batch: 4, lr: 5e-3, evalEvery: 5, heldOut: 8 },
};

export interface CurvePoint { step: number; proxy: number; proxyTrain: number; golden: number; goldenTvd: number }
export interface RegimeResult {
  name: string; label: string; points: CurvePoint[];
  goldenMin: { step: number; value: number }; goldenFinal: number; goldenRisePct: number; proxyFinal: number; proxyTrainFinal: number;
  detector: { exponent: number; fitUntil: number; fireStep: number | null };
}
export interface TeacherHackingResult {
  size: LabSize; spec: Spec; oracleEntropy: number;
  teacher: { goldenFkl: number; goldenTvd: number; bestStep: number; bestGolden: number; trace: { step: number; golden: number }[] };
  regimes: RegimeResult[]; seconds: number;
}

export const REGIMES = ['offline', 'offline_k', 'offline_prompts', 'online_teacher', 'online_student'] as const;
export type RegimeName = (typeof REGIMES)[number];

export async function runTeacherHacking(o: { size?: LabSize; seed?: number; regimes?: RegimeName[]; onEvent?: (e: LabEvent) => void } = {}): Promise<TeacherHackingResult> {
  const size = o.size ?? 'full', sp = TEACHER_HACKING_SIZES[size], seed = o.seed ?? 0;
  const emit = o.onEvent ?? (() => {});
  const t0 = performance.now();
  const { V, S, P } = sp;
  const oracle = new ModelOracle(V, S, sp.oracle, 1000 + seed, sp.gain);

  // held-out prompts (never trained on) and the teacher's responses to them
  const heldPrompts = oracle.sample(sp.heldOut, S, new Rng(2000 + seed));
  const heldOracleBatch = makeBatch(heldPrompts, S, range(sp.heldOut), P);
  const oracleEntropy = oracle.entropy(heldOracleBatch);

  // teacher: CE on few oracle samples, trained well past its best golden point (over-confident)
  const teacher = benchModel(sp.teacher, V, S, 10 + seed);
  const teacherData = oracle.sample(sp.teacherData, S, new Rng(3000 + seed));
  const oracleOnHeld = oracle.logProbs(heldOracleBatch);
  const trace: { step: number; golden: number }[] = [];
  emit({ type: 'stage', label: 'teacher', total: sp.teacherSteps });
  const every = Math.max(1, Math.round(sp.teacherSteps / 20));
  trainCe(teacher, teacherData, S, { steps: sp.teacherSteps, lr: sp.lr, batch: sp.batch }, 4000 + seed, (step, loss) => {
    if (step % every === 0) {
      const g = divergences(oracleOnHeld, modelLogProbs(teacher, heldOracleBatch), heldOracleBatch, V).fkl;
      trace.push({ step, golden: g });
      emit({ type: 'tick', value: step, info: { loss: loss.toFixed(3), 'KL(oracle‖teacher)': g.toFixed(4) } });
    }
  });
  const best = trace.reduce((a, b) => (b.golden < a.golden ? b : a), trace[0] ?? { step: 0, golden: NaN });

  // evaluation sequences: held-out prompts + teacher responses; exact teacher and oracle distributions
  const heldSeqs = sampleResponses(teacher, heldPrompts, S, P, new Rng(5000 + seed));
  const heldBatch = makeBatch(heldSeqs, S, range(sp.heldOut), P);
  const lpTeacherHeld = modelLogProbs(teacher, heldBatch), lpOracleHeld = oracle.logProbs(heldBatch);
  const tHeld = divergences(lpOracleHeld, lpTeacherHeld, heldBatch, V);

  // training prompts: N for most regimes, promptMult·N for the diversity regime
  const nMany = sp.prompts * sp.promptMult;
  const manyPrompts = oracle.sample(nMany, S, new Rng(6000 + seed));
  const prompts = manyPrompts.slice(0, sp.prompts * S);
  const respond = (src: Int32Array, seedR: number): Int32Array => sampleResponses(teacher, src, S, P, new Rng(seedR));
  const offlineSet = respond(prompts, 7000 + seed);

  const regimes: RegimeResult[] = [];
  for (const name of o.regimes ?? REGIMES) {
    let data: Int32Array;
    if (name === 'offline_k') {
      const rep = new Int32Array(sp.prompts * sp.k * S);
      for (let j = 0; j < sp.k; j++) rep.set(prompts, j * prompts.length);
      data = respond(rep, 7100 + seed);
    } else if (name === 'offline_prompts') data = respond(manyPrompts, 7200 + seed);
    else data = offlineSet;
    const nTrainEval = Math.min(sp.heldOut, offlineSet.length / S);
    const trainEvalBatch = makeBatch(offlineSet, S, range(nTrainEval), P);
    const lpTeacherTrain = modelLogProbs(teacher, trainEvalBatch);

    const student = benchModel(sp.student, V, S, 20 + seed);
    const trainer = makeTrainer(student, { steps: sp.steps, lr: sp.lr, batch: sp.batch }, distillLoss(teacher, 'fkl'));
    const order = epochs(data.length / S, sp.batch, new Rng(8000 + seed));
    const promptOrder = epochs(sp.prompts, sp.batch, new Rng(8100 + seed));
    const genRng = new Rng(8200 + seed);
    const points: CurvePoint[] = [];
    const evaluate = (step: number): void => {
      const lq = modelLogProbs(student, heldBatch);
      const proxy = divergences(lpTeacherHeld, lq, heldBatch, V), golden = divergences(lpOracleHeld, lq, heldBatch, V);
      const proxyTrain = divergences(lpTeacherTrain, modelLogProbs(student, trainEvalBatch), trainEvalBatch, V).fkl;
      points.push({ step, proxy: proxy.fkl, proxyTrain, golden: golden.fkl, goldenTvd: golden.tvd });
    };
    emit({ type: 'stage', label: name, total: sp.steps });
    evaluate(0);
    for (let s = 0; s < sp.steps; s++) {
      let batch;
      if (name === 'online_teacher' || name === 'online_student') {
        const rows: number[] = promptOrder.next().value!;
        const ps = new Int32Array(rows.length * S);
        rows.forEach((r, i) => ps.set(prompts.subarray(r * S, (r + 1) * S), i * S));
        const gen: CausalLM = name === 'online_teacher' ? teacher : student;
        batch = makeBatch(sampleResponses(gen, ps, S, P, genRng), S, range(rows.length), P);
      } else batch = makeBatch(data, S, order.next().value!, P);
      trainer.stepOn([batch]);
      if ((s + 1) % sp.evalEvery === 0 || s + 1 === sp.steps) {
        evaluate(s + 1);
        const p = points[points.length - 1];
        emit({ type: 'tick', value: s + 1, info: { proxy: p.proxy.toFixed(4), 'proxy(train)': p.proxyTrain.toFixed(4), golden: p.golden.toFixed(4) } });
      }
    }
    const gmin = points.reduce((a, b) => (b.golden < a.golden ? b : a));
    const last = points[points.length - 1];
    const det = powerLawDeviation(points.map((p) => ({ step: p.step, value: p.proxyTrain })));
    regimes.push({
      name, label: LABELS[name](sp), points, goldenMin: { step: gmin.step, value: gmin.golden }, goldenFinal: last.golden,
      goldenRisePct: (100 * (last.golden - gmin.golden)) / gmin.golden, proxyFinal: last.proxy, proxyTrainFinal: last.proxyTrain,
      detector: { exponent: det.exponent, fitUntil: det.fitUntil, fireStep: det.fireStep },
    });
    emit({ type: 'log', message: `${name}: golden min ${gmin.golden.toFixed(4)} @${gmin.step}, final ${last.golden.toFixed(4)} (+${regimes[regimes.length - 1].goldenRisePct.toFixed(1)}%), proxy(train) ${last.proxyTrain.toFixed(4)}` });
  }
  return {
    size, spec: sp, oracleEntropy,
    teacher: { goldenFkl: tHeld.fkl, goldenTvd: tHeld.tvd, bestStep: best.step, bestGolden: best.golden, trace },
    regimes, seconds: (performance.now() - t0) / 1000,
  };
}

const LABELS: Record<RegimeName, (s: Spec) => string> = {
  offline: (s) => `offline: ${s.prompts} prompts × 1 response`,
  offline_k: (s) => `offline: ${s.prompts} prompts × ${s.k} responses`,
  offline_prompts: (s) => `offline: ${s.prompts * s.promptMult} prompts × 1 response`,
  online_teacher: (s) => `online: ${s.prompts} prompts, fresh teacher responses`,
  online_student: (s) => `online: ${s.prompts} prompts, fresh student responses`,
};

function range(n: number): number[] { return Array.from({ length: n }, (_, i) => i); }
