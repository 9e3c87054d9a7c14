/**
 * What a distillation run adds to the training loop: the teacher, the objective mixture, the data
 * regime, TAID's t schedule, teacher scoring of each micro-batch and teacher–student metrics at
 * evaluation. `run.ts` drives it through the StepPlan interface, the same loop as plain training.
 */
import type { TrainConfig } from '../config/schema.js';
import type { Batch, BatchLoader } from '../data/loader.js';
import type { PreparedData } from '../data/prepare.js';
import { fusedMixtureLoss, type TeacherHead } from '../distill/fused-loss.js';
import { bindObjective, Mixture, TaidSchedule, tokenMask, type SparseTeacher, type TaidScheduleOptions, type TaidScheduleState, type TeacherSignal } from '../distill/index.js';
import { RegimeSampler, type RegimeState } from '../distill/regimes.js';
import { UserError } from '../errors.js';
import { parseWith } from '../config/zod.js';
import { HiddenStateDistiller, hiddenStateSchema, maskedSum } from '../distill/index.js';
import { add, mul } from '../tensor/ops.js';
import { Rng } from '../util/rng.js';
import type { CausalLM } from '../models/base.js';
import { reshape } from '../tensor/ops.js';
import { noGrad, scoped, Tensor } from '../tensor/tensor.js';
import { CachedTeacher, createTeacher, LocalTeacher } from '../teachers/index.js';
import type { Teacher } from '../teachers/teacher.js';
import type { LossFn, StepResult } from './trainer.js';
import { crossEntropyLoss } from './trainer.js';

/** A micro-batch with the teacher's signal attached (dense logits [N, V], sparse top-k, or hidden + head). */
export type DistillBatch = Batch & { teacher?: TeacherSignal; teacherHidden?: TeacherHead; teacherStates?: Tensor[] };

export interface StepPlan {
  /** trainable parameters of the plan itself (e.g. feature-KD projections), optimised with the model */
  parameters(): Map<string, Tensor>;
  /** the micro-batches of optimizer step `step`, teacher signal attached */
  microBatches(step: number, count: number): Promise<Batch[]>;
  lossFn: LossFn;
  afterStep(r: StepResult): void;
  /** extra validation metrics (e.g. val_fkl) and regime feedback */
  evaluate(valBatches: Batch[], valLoss: number): Promise<Record<string, number>>;
  /** metrics describing the plan's state for the log line (e.g. taid_t, p_gen) */
  stats(): Record<string, number>;
  state(): Record<string, unknown>;
  restore(extra: Record<string, unknown>): void;
  close(): Promise<void>;
}

/** Plain language-model training: dataset batches, cross-entropy. */
export function trainingPlan(loader: BatchLoader): StepPlan {
  return {
    parameters: () => new Map(),
    microBatches: async (_s, n) => Array.from({ length: n }, () => loader.next()),
    lossFn: crossEntropyLoss,
    afterStep: () => {},
    evaluate: async () => ({}),
    stats: () => ({}),
    state: () => ({}),
    restore: () => {},
    close: async () => {},
  };
}

function teacherHidden(t: LocalTeacher, b: Batch, states: boolean): { head: TeacherHead; states?: Tensor[] } {
  // the forward pass's intermediates go back to the step's buffer arena at once; only its outputs stay
  return scoped(() => noGrad(() => {
    const { hidden, hiddenStates } = t.model.forwardHidden(b.input, b.batchSize, b.seqLen, { outputHiddenStates: states }); // [B, T, C_T]
    const W = t.model.lmHeadWeight();
    return { head: { h: hidden.data, W: W.data, C: W.shape[1] }, states: hiddenStates?.slice(1) };
  }), (r) => [r.head.h, ...(r.states ?? [])]);
}

export async function distillPlan(cfg: TrainConfig, data: PreparedData, student: CausalLM, loader: BatchLoader): Promise<StepPlan> {
  const d = cfg.distill!;
  const where = 'distill.loss';
  const base = Mixture.parse(d.loss, where);
  const teacher: Teacher = await createTeacher(d.teacher, { tokenizer: data.tokenizer, outDir: cfg.out_dir, dataset: data.train });
  if (teacher.vocabSize !== student.vocabSize) {
    throw new UserError(`the teacher (${teacher.name}) has vocab_size ${teacher.vocabSize} but the student has ${student.vocabSize}; logit distillation needs a shared tokenizer (set tokenizer.path to the teacher's tokenizer.json)`, 2);
  }
  const sparse = d.top_k > 0 || !teacher.dense;
  const k = d.top_k > 0 ? d.top_k : 20;
  if (base.needsTeacher) base.checkTeacher(sparse ? 'sparse' : 'dense');
  const taidPart = base.parts.find((p) => p.objective.name === 'taid');
  const taid = taidPart ? new TaidSchedule(taidPart.objective.options as TaidScheduleOptions, cfg.train.steps) : null;
  let mixture = taid ? base.withOptions('taid', { t: taid.t }) : base;
  const regime = new RegimeSampler({
    config: d.regime, loader, student, teacherModel: teacher instanceof LocalTeacher ? teacher.model : null,
    promptLens: data.promptLens?.train ?? null, seqLen: cfg.data.seq_len, eosId: data.tokenizer.eosId,
    padId: data.tokenizer.eosId ?? 0, totalSteps: cfg.train.steps, seed: cfg.train.seed + 17,
  });

  const signal = async (b: Batch): Promise<TeacherSignal> => {
    if (!sparse) {
      const logits = await teacher.logits(b);
      return new Tensor(logits, [b.batchSize * b.seqLen, teacher.vocabSize]);
    }
    const t = await teacher.topk(b, k);
    return { ids: t.ids, logprobs: t.logprobs, k: t.k } satisfies SparseTeacher;
  };
  const fkl = bindObjective('fkl', sparse ? { sparse: 'tail' } : {}, 'eval');

  const V = student.vocabSize;
  const chunkRows = d.chunk_rows;
  const localTeacher = teacher instanceof LocalTeacher ? teacher : null;
  const features = d.features.map((f, i) => {
    if (!localTeacher) throw new UserError(`distill.features[${i}]: feature KD needs an in-process teacher (distill.teacher.model: DIR)`, 2);
    const { objective, weight, ...rest } = f;
    const opts = parseWith(hiddenStateSchema, rest, `distill.features[${i}]`);
    const widthOf = (m: CausalLM): number => m.lmHeadWeight().shape[1];
    const distiller = new HiddenStateDistiller(objective === 'hidden_mse' ? 'mse' : 'cosine', opts,
      { studentWidth: widthOf(student), teacherWidth: widthOf(localTeacher.model), studentLayers: student.numLayers, teacherLayers: localTeacher.model.numLayers },
      new Rng(cfg.train.seed + 31 + i));
    return { key: objective, weight, distiller };
  });
  /** Feature-KD loss summed over counted tokens (+ per-part token means for logging). */
  const featureLoss = (b: DistillBatch, studentStates: Tensor[] | undefined, mask: Float32Array, parts: Record<string, number>): Tensor | null => {
    if (!features.length || !studentStates || !b.teacherStates) return null;
    let total: Tensor | null = null;
    const count = mask.reduce((a, m) => a + m, 0);
    for (const f of features) {
      const per = f.distiller.perToken(studentStates, b.teacherStates); // [N]
      const { sum: s } = maskedSum(per, mask);
      parts[f.key] = count ? s.item() / count : 0;
      const w = f.weight === 1 ? s : mul(s, f.weight);
      total = total ? add(total, w) : w;
    }
    return total;
  };
  /** Fused chunked head + loss: logits never exist for more than `chunk_rows` positions at a time. */
  const fusedLoss: LossFn = (model, batch) => {
    const b = batch as DistillBatch;
    const N = b.batchSize * b.seqLen;
    const { hidden, hiddenStates } = model.forwardHidden(b.input, b.batchSize, b.seqLen, { outputHiddenStates: features.length > 0 }); // [B, T, C]
    const mask = tokenMask(N, { labels: b.target });
    const { loss, partSums } = fusedMixtureLoss({
      hidden: reshape(hidden, [N, -1]), head: model.lmHeadWeight(), mixture, labels: b.target, mask,
      teacherHead: b.teacherHidden, teacher: b.teacher, chunkRows,
    });
    const count = mask.reduce((a, m) => a + m, 0);
    const parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, count ? v / count : 0]));
    const feat = featureLoss(b, hiddenStates?.slice(1), mask, parts);
    return { sum: feat ? add(loss, feat) : loss, parts };
  };

  const unfusedLoss: LossFn = (model, batch) => {
    const b = batch as DistillBatch;
    const { logits } = model.forward(b.input, b.batchSize, b.seqLen); // [B, T, V]
    const N = b.batchSize * b.seqLen;
    const student = reshape(logits, [N, model.vocabSize]); // [N, V]
    const mask = tokenMask(N, { labels: b.target });
    const { sum, parts } = mixture.maskedSum({ student, teacher: b.teacher, labels: b.target }, mask);
    return { sum, parts };
  };
  if (features.length && !d.fused) throw new UserError('distill.features needs distill.fused: true', 2);
  const lossFn = d.fused ? fusedLoss : unfusedLoss;

  const projectionParams = (): Map<string, Tensor> => {
    const out = new Map<string, Tensor>();
    features.forEach((f, i) => { for (const [n, p] of f.distiller.namedParameters()) out.set(`features.${i}.${n}`, p); });
    return out;
  };

  return {
    parameters: projectionParams,
    async microBatches(step, n) {
      const out: Batch[] = [];
      for (let i = 0; i < n; i++) {
        const b: DistillBatch = regime.next(step);
        if (d.fused && localTeacher && !sparse && (base.needsTeacher || features.length)) {
          const th = teacherHidden(localTeacher, b, features.length > 0);
          b.teacherHidden = th.head;
          b.teacherStates = th.states;
        } else if (base.needsTeacher) b.teacher = await signal(b);
        out.push(b);
      }
      return out;
    },
    lossFn,
    afterStep(r) {
      if (!taid) return;
      taid.update(r.loss, r.step);
      mixture = base.withOptions('taid', { t: taid.t });
    },
    async evaluate(valBatches, valLoss) {
      regime.onValidation(valLoss);
      if (teacher instanceof CachedTeacher) return {}; // a cache holds the training rows only
      const wasTraining = student.training;
      student.eval();
      let s = 0, n = 0;
      for (const b of valBatches) {
        const t = await signal(b);
        noGrad(() => {
          const N = b.batchSize * b.seqLen;
          const logits = student.forward(b.input, b.batchSize, b.seqLen).logits;
          const per = fkl.perToken({ student: reshape(logits, [N, student.vocabSize]), teacher: t, labels: b.target });
          const mask = tokenMask(N, { labels: b.target });
          for (let i = 0; i < N; i++) if (mask[i]) { s += per.data[i]; n++; }
        });
      }
      student.train(wasTraining);
      const out: Record<string, number> = {};
      if (n) out.val_fkl = s / n;
      return out;
    },
    stats() {
      const out: Record<string, number> = {};
      if (taid) out.taid_t = taid.t;
      if (regime.kind === 'replay') out.p_gen = regime.generationProbability;
      return out;
    },
    state: () => ({
      regime: regime.state(), taid: taid?.saveState() ?? null,
      // feature-KD projection weights live outside the model folder; float32 → JSON number is exact
      projections: Object.fromEntries([...projectionParams()].map(([n, p]) => [n, Array.from(p.data)])),
    }),
    restore(extra) {
      const saved = (extra.projections ?? {}) as Record<string, number[]>;
      for (const [n, p] of projectionParams()) {
        const v = saved[n];
        if (!Array.isArray(v) || v.length !== p.size) throw new UserError(`checkpoint: feature projection "${n}" is missing or has the wrong size`, 2);
        p.data.set(v);
      }
      if (extra.regime) regime.restore(extra.regime as RegimeState);
      if (taid && extra.taid) {
        taid.loadState(extra.taid as TaidScheduleState);
        mixture = base.withOptions('taid', { t: taid.t });
      }
    },
    close: () => teacher.close(),
  };
}
