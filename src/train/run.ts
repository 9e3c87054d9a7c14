/**
 * The training job behind `lmdistill train`: prepare data and tokenizer, build or load the model,
 * resume from the run folder's checkpoint when there is one, train with periodic evaluation and
 * atomic checkpoints, then save the final Hugging Face folder and a summary. Library code: it reports
 * through `onEvent` and never prints.
 *
 * Run folder layout (out_dir): tokenizer.json · checkpoint/ (resumable state, also an HF folder) ·
 * metrics.jsonl (one JSON object per step / eval) · final/ (HF folder) · summary.json.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { TrainConfig } from '../config/schema.js';
import { BatchLoader, type Batch } from '../data/loader.js';
import { prepareData, unigramPerplexity, type PrepareProgress } from '../data/prepare.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type TrainerState } from '../io/checkpoint.js';
import type { CausalLM } from '../models/base.js';
import { generate } from '../models/generate.js';
import { createModel, loadPretrained, savePretrained } from '../models/registry.js';
import { AdamW } from '../optim/adamw.js';
import { Rng } from '../util/rng.js';
import { distillPlan, trainingPlan } from './distill-plan.js';
import { evaluateLoss, Trainer } from './trainer.js';

export type TrainEvent =
  | { type: 'prepare'; stage: Parameters<PrepareProgress>[0]; done: number; total: number }
  | { type: 'start'; startStep: number; totalSteps: number; parameters: number; trainSequences: number; valSequences: number; unigramPpl: number; resumed: boolean; tokenizer: string }
  | { type: 'step'; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number; etaMs: number; parts: Record<string, number> }
  | { type: 'eval'; step: number; valLoss: number; valPpl: number; extra: Record<string, number> }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'sample'; prompt: string; text: string }
  | { type: 'done'; summary: RunSummary };

export interface RunSummary {
  outDir: string;
  steps: number;
  stopped: boolean;
  finalValLoss: number;
  finalValPpl: number;
  /** final teacher–student metrics of a distillation run (e.g. val_fkl) */
  finalEval: Record<string, number>;
  unigramPpl: number;
  trainTokensPerSec: number;
  peakRssMb: number;
  parameters: number;
  samples: { prompt: string; text: string }[];
}

export interface RunOptions {
  onEvent?: (e: TrainEvent) => void;
  /** polled between steps; when true the job checkpoints and returns early (e.g. on SIGINT) */
  shouldStop?: () => boolean;
  /** ignore and replace an existing checkpoint in out_dir */
  fresh?: boolean;
}

/** Settings that may not change across a resume (the data order and model would silently differ). */
function configDigest(cfg: TrainConfig): string {
  const { steps: _steps, eval_every: _e, eval_batches: _b, checkpoint_every: _c, precision, ...rest } = cfg.train;
  // the default fp32 is left out so checkpoints written before `precision` existed still resume
  const train = precision === 'fp32' ? rest : { ...rest, precision };
  const stable = JSON.stringify({ data: cfg.data, tokenizer: cfg.tokenizer, model: cfg.model, train, distill: cfg.distill ?? null });
  return crypto.createHash('sha256').update(stable).digest('hex').slice(0, 16);
}

function buildModel(cfg: TrainConfig, vocabSize: number): CausalLM {
  const m = cfg.model;
  if ('pretrained' in m) {
    const model = loadPretrained(m.pretrained);
    if (model.vocabSize < vocabSize) throw new UserError(`model.pretrained ${m.pretrained} has vocab_size ${model.vocabSize} but the tokenizer has ${vocabSize} tokens`, 2);
    return model;
  }
  if (m.vocab_size !== undefined && m.vocab_size < vocabSize) {
    throw new UserError(`model.vocab_size ${m.vocab_size} is smaller than the tokenizer's ${vocabSize} tokens`, 2);
  }
  const full = m.model_type === 'gpt2'
    ? { ...m, vocab_size: m.vocab_size ?? vocabSize, n_positions: m.n_positions ?? cfg.data.seq_len }
    : { ...m, vocab_size: m.vocab_size ?? vocabSize, max_position_embeddings: m.max_position_embeddings ?? cfg.data.seq_len };
  const model = createModel(full, cfg.train.seed, 'model');
  if (model.maxPositions < cfg.data.seq_len) throw new UserError(`data.seq_len ${cfg.data.seq_len} exceeds the model's ${model.maxPositions} positions`, 2);
  return model;
}

function* take(loader: BatchLoader, n: number): Generator<Batch> {
  for (let i = 0; i < n; i++) yield loader.next();
}

/** Keeps metrics lines up to `step` (a resumed run rewrites what came after its checkpoint). */
function truncateMetrics(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const keep = fs.readFileSync(file, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try { return (JSON.parse(l) as { step?: number }).step! <= step; } catch { return false; }
  });
  writeFileAtomic(file, keep.map((l) => l + '\n').join(''));
}

export async function runTraining(config: TrainConfig, opts: RunOptions = {}): Promise<RunSummary> {
  let cfg = config;
  const emit = opts.onEvent ?? (() => {});
  const outDir = cfg.out_dir;
  const ckptDir = path.join(outDir, 'checkpoint');
  const metricsFile = path.join(outDir, 'metrics.jsonl');
  if (opts.fresh) for (const f of [ckptDir, metricsFile, path.join(outDir, 'tokenizer.json')]) fs.rmSync(f, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });

  const teacherDir = cfg.distill && 'model' in cfg.distill.teacher && !('url' in cfg.distill.teacher) ? cfg.distill.teacher.model : null;
  if (teacherDir && !cfg.tokenizer.path && fs.existsSync(path.join(teacherDir, 'tokenizer.json'))) {
    cfg = { ...cfg, tokenizer: { ...cfg.tokenizer, path: path.join(teacherDir, 'tokenizer.json') } }; // share the teacher's tokenizer
  }
  const data = prepareData(cfg, outDir, (stage, done, total) => emit({ type: 'prepare', stage, done, total }));
  const model = buildModel(cfg, data.tokenizer.vocabSize);
  model.dropoutRng = new Rng(cfg.train.seed + 1);
  const t = cfg.train;
  const loader = new BatchLoader(data.train, { batchSize: t.batch_size, seed: t.seed });
  const plan = cfg.distill ? await distillPlan(cfg, data, model, loader) : trainingPlan(loader);
  // the plan may train parameters of its own (feature-KD projections); they are optimised with the model
  const optimizer = new AdamW(new Map([...model.namedParameters(), ...plan.parameters()]), { betas: t.betas, eps: t.eps, weightDecay: t.weight_decay });
  const trainer = new Trainer({
    model, optimizer, gradClip: t.grad_clip, gradAccumSteps: t.grad_accum, lossFn: plan.lossFn, precision: t.precision,
    schedule: { kind: t.schedule, peakLr: t.lr, minLr: t.min_lr, warmupSteps: t.warmup_steps, totalSteps: t.steps },
  });
  const digest = configDigest(cfg);
  let tokensSeen = 0, elapsedMs = 0, resumed = false;
  if (hasCheckpoint(ckptDir)) {
    const st = loadCheckpoint(ckptDir, model, optimizer);
    if (st.configDigest !== digest) {
      throw new UserError(`${ckptDir} was written with different data/model/optimizer settings; rerun with --fresh to start over, or restore the original config`, 2);
    }
    loader.restore(st.loader);
    plan.restore(st.extra);
    tokensSeen = st.tokensSeen;
    elapsedMs = st.elapsedMs;
    resumed = true;
    truncateMetrics(metricsFile, st.step);
  } else {
    fs.rmSync(metricsFile, { force: true });
  }
  const tokJson = JSON.stringify(data.tokenizer.toJSON());
  const unigramPpl = unigramPerplexity(data.train, data.val, data.tokenizer.vocabSize);
  emit({
    type: 'start', startStep: trainer.stepCount, totalSteps: t.steps, parameters: model.numParameters(),
    trainSequences: data.train.length, valSequences: data.val.length, unigramPpl, resumed, tokenizer: data.tokenizerOrigin,
  });

  const log = (obj: Record<string, unknown>): void => fs.appendFileSync(metricsFile, JSON.stringify(obj) + '\n');
  const evaluate = async (): Promise<{ valLoss: number; valPpl: number; extra: Record<string, number> }> => {
    const valLoader = new BatchLoader(data.val, { batchSize: Math.min(t.batch_size, data.val.length), shuffle: false, dropLast: false });
    const n = t.eval_batches > 0 ? Math.min(t.eval_batches, valLoader.batchesPerEpoch) : valLoader.batchesPerEpoch;
    const batches = [...take(valLoader, n)];
    const { loss } = evaluateLoss(model, batches);
    return { valLoss: loss, valPpl: Math.exp(loss), extra: await plan.evaluate(batches, loss) };
  };
  const checkpoint = (): void => {
    const state: TrainerState = {
      format: 'lmdistill-checkpoint', version: 1, step: trainer.stepCount, tokensSeen, elapsedMs,
      loader: loader.state(), dropoutRng: model.dropoutRng.state(), configDigest: digest, extra: plan.state(),
    };
    saveCheckpoint(ckptDir, model, optimizer, state, tokJson);
    emit({ type: 'checkpoint', step: trainer.stepCount, dir: ckptDir });
  };

  let stopped = false, runMs = 0, runTokens = 0;
  let last: { valLoss: number; valPpl: number; extra: Record<string, number> } = { valLoss: NaN, valPpl: NaN, extra: {} };
  while (trainer.stepCount < t.steps) {
    if (opts.shouldStop?.()) { stopped = true; break; }
    const t0 = performance.now();
    const micro = await plan.microBatches(trainer.stepCount, t.grad_accum);
    const r = trainer.stepOn(micro);
    plan.afterStep(r);
    const ms = performance.now() - t0;
    runMs += ms; runTokens += r.tokens; elapsedMs += ms; tokensSeen += r.tokens;
    const step = r.step + 1;
    const tokensPerSec = runTokens / (runMs / 1000);
    log({ step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens: r.tokens, tokens_per_sec: tokensPerSec, ...r.parts, ...plan.stats() });
    emit({ type: 'step', step, totalSteps: t.steps, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, tokensPerSec, etaMs: (runMs / Math.max(1, runTokens)) * r.tokens * (t.steps - step), parts: { ...r.parts, ...plan.stats() } });
    if (step % t.eval_every === 0 || step === t.steps) {
      last = await evaluate();
      log({ step, val_loss: last.valLoss, val_ppl: last.valPpl, ...last.extra });
      emit({ type: 'eval', step, ...last });
    }
    if (step % t.checkpoint_every === 0 || step === t.steps) checkpoint();
    await yieldToEventLoop(); // lets signal handlers (SIGINT → shouldStop) run between steps
  }
  if (stopped) checkpoint();
  if (Number.isNaN(last.valLoss)) last = await evaluate();
  await plan.close();

  const samples: { prompt: string; text: string }[] = [];
  if (!stopped) {
    const finalDir = path.join(outDir, 'final');
    savePretrained(model, finalDir);
    data.tokenizer.save(path.join(finalDir, 'tokenizer.json'));
    const rng = new Rng(t.seed);
    for (const prompt of cfg.sample.prompts) {
      const ids = data.tokenizer.encode(prompt);
      if (ids.length === 0 || ids.length >= model.maxPositions) continue;
      const s = cfg.sample;
      const out = generate(model, ids, { maxNewTokens: s.max_new_tokens, temperature: s.temperature, topK: s.top_k, topP: s.top_p, eosId: data.tokenizer.eosId, rng });
      const text = data.tokenizer.decode(out);
      samples.push({ prompt, text });
      emit({ type: 'sample', prompt, text });
    }
  }
  const summary: RunSummary = {
    outDir, steps: trainer.stepCount, stopped, finalValLoss: last.valLoss, finalValPpl: last.valPpl, finalEval: last.extra, unigramPpl,
    trainTokensPerSec: runMs > 0 ? runTokens / (runMs / 1000) : 0,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), parameters: model.numParameters(), samples,
  };
  writeFileAtomic(path.join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  emit({ type: 'done', summary });
  return summary;
}
