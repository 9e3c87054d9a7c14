/**
 * The distillation loop end to end on a small corpus: a teacher is trained, then the same student is
 * trained with CE only and distilled with forward KL for the same steps; the distilled student ends
 * closer to the teacher (lower validation teacher–student KL). Every regime runs; an interrupted
 * replay/TAID run resumes to exactly the same losses as an uninterrupted one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { trainConfigSchema, type TrainConfig } from '../../src/config/schema.js';
import { loadCorpus } from '../../src/data/corpus.js';
import { prepareData } from '../../src/data/prepare.js';
import { loadPretrained } from '../../src/models/registry.js';
import { buildTeacherCache } from '../../src/teachers/cache-build.js';
import { LocalTeacher } from '../../src/teachers/local.js';
import { runTraining } from '../../src/train/run.js';

let tmp = '';
let dataDir = '';
let teacherDir = '';

function config(out: string, extra: Record<string, unknown>): TrainConfig {
  return trainConfigSchema.parse({
    out_dir: out,
    data: { source: { dir: dataDir }, seq_len: 32, val_fraction: 0.2 },
    tokenizer: { vocab_size: 300 },
    model: { model_type: 'gpt2', n_embd: 16, n_layer: 1, n_head: 2, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
    train: { steps: 40, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 4, eval_every: 40, eval_batches: 4, checkpoint_every: 20, seed: 1 },
    sample: { prompts: [], max_new_tokens: 1 },
    ...extra,
  });
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-distill-'));
  dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir);
  loadCorpus({ kind: 'embedded', name: 'moby-dick' }).slice(1, 11).forEach((d, i) => fs.writeFileSync(path.join(dataDir, `c${i}.txt`), d.slice(0, 15000)));
  const teacherCfg = config(path.join(tmp, 'teacher'), {
    model: { model_type: 'gpt2', n_embd: 48, n_layer: 2, n_head: 2, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
    train: { steps: 120, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 10, eval_every: 120, eval_batches: 4, checkpoint_every: 120 },
  });
  await runTraining(teacherCfg);
  teacherDir = path.join(tmp, 'teacher', 'final');
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const distill = (loss: unknown, regime: Record<string, unknown> = {}, top_k = 0) =>
  ({ distill: { teacher: { model: teacherDir }, loss, regime, top_k } });

test('forward-KL distillation ends closer to the teacher than CE alone (same student, data, steps)', { timeout: 300_000 }, async (t) => {
  const ce = await runTraining(config(path.join(tmp, 'ce'), distill([{ objective: 'ce' }])));
  const kd = await runTraining(config(path.join(tmp, 'kd'), distill([{ objective: 'fkl' }])));
  t.diagnostic(`val teacher→student FKL: CE ${ce.finalEval.val_fkl.toFixed(4)} vs FKL ${kd.finalEval.val_fkl.toFixed(4)}; val ppl ${ce.finalValPpl.toFixed(2)} vs ${kd.finalValPpl.toFixed(2)}`);
  assert.ok(kd.finalEval.val_fkl < ce.finalEval.val_fkl, `FKL-distilled ${kd.finalEval.val_fkl} vs CE ${ce.finalEval.val_fkl}`);
  // the student was given the teacher's tokenizer (logit KD needs the same ids) and ships it
  const tok = (d: string) => JSON.stringify(JSON.parse(fs.readFileSync(path.join(d, 'tokenizer.json'), 'utf8')));
  assert.equal(tok(path.join(tmp, 'kd', 'final')), tok(teacherDir));
});

for (const [name, regime, loss, topk] of [
  ['on_policy', { kind: 'on_policy', prompt_len: 8, max_new_tokens: 12 }, [{ objective: 'gjsd', beta: 0.5 }], 0],
  ['mixed', { kind: 'mixed', lambda: 0.5, prompt_len: 8 }, [{ objective: 'rkl' }], 0],
  ['sequence', { kind: 'sequence', prompt_len: 8 }, [{ objective: 'ce' }], 0],
  ['replay', { kind: 'replay', prompt_len: 8, init_threshold: 0.6, capacity: 16 }, [{ objective: 'skew_fkl', alpha: 0.1 }], 0],
  ['sparse top-k', { kind: 'offline' }, [{ objective: 'fkl', sparse: 'tail' }, { objective: 'ce' }], 8],
] as const) {
  test(`regime/teacher ${name}: trains, losses finite, generated batches train only response tokens`, { timeout: 300_000 }, async () => {
    const out = path.join(tmp, `r-${name.replace(/\W/g, '')}`);
    const cfg = config(out, { ...distill(loss, regime, topk), train: { steps: 6, batch_size: 4, lr: 0.01, warmup_steps: 1, eval_every: 6, eval_batches: 2, checkpoint_every: 3 } });
    const s = await runTraining(cfg);
    assert.equal(s.steps, 6);
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.loss !== undefined);
    assert.equal(steps.length, 6);
    for (const l of steps) assert.ok(Number.isFinite(l.loss) && l.tokens > 0, JSON.stringify(l));
    if (regime.kind === 'on_policy' || regime.kind === 'sequence') {
      // prompts are never targets: at most (seq_len − prompt_len + 1) targets per sequence
      for (const l of steps) assert.ok(l.tokens <= 4 * (32 - 8 + 1), `tokens ${l.tokens}`);
    }
    assert.ok(Number.isFinite(s.finalEval.val_fkl));
  });
}

test('fused chunked and unfused distillation give the same training curve', { timeout: 300_000 }, async () => {
  const mk = (out: string, fused: boolean) => config(out, {
    distill: { teacher: { model: teacherDir }, loss: [{ objective: 'fkl', temperature: 2, weight: 0.7 }, { objective: 'ce', weight: 0.3 }], fused, chunk_rows: 20 },
    train: { steps: 5, batch_size: 4, lr: 0.01, warmup_steps: 1, eval_every: 5, eval_batches: 2, checkpoint_every: 5 },
  });
  await runTraining(mk(path.join(tmp, 'fused'), true));
  await runTraining(mk(path.join(tmp, 'unfused'), false));
  const read = (d: string) => fs.readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.loss !== undefined);
  const a = read(path.join(tmp, 'fused')), b = read(path.join(tmp, 'unfused'));
  assert.equal(a.length, 5);
  a.forEach((l, i) => {
    for (const k of ['loss', 'fkl', 'ce', 'grad_norm']) {
      assert.ok(Math.abs(l[k] - b[i][k]) <= 1e-4 * Math.max(1, Math.abs(b[i][k])), `step ${l.step} ${k}: fused ${l[k]} vs unfused ${b[i][k]}`);
    }
  });
});

test('distillation from an on-disk top-k teacher cache equals distillation from the live sparse teacher', { timeout: 300_000 }, async () => {
  const mk = (out: string, teacher: Record<string, unknown>) => config(out, {
    distill: { teacher, loss: [{ objective: 'fkl', sparse: 'tail' }], top_k: 8 },
    tokenizer: { path: path.join(teacherDir, 'tokenizer.json') },
    train: { steps: 4, batch_size: 4, lr: 0.01, warmup_steps: 1, eval_every: 4, eval_batches: 2, checkpoint_every: 4 },
  });
  // the cache is built over exactly the rows training will see
  const live = mk(path.join(tmp, 'live'), { model: teacherDir });
  const data = prepareData(live, path.join(tmp, 'live'));
  const cacheDir = path.join(tmp, 'tcache');
  const teacher = new LocalTeacher(loadPretrained(teacherDir));
  await buildTeacherCache({ teachers: [teacher], dataset: data.train, k: 8, dir: cacheDir });
  await runTraining(live);
  await runTraining(mk(path.join(tmp, 'cached'), { cache: cacheDir }));
  const read = (d: string) => fs.readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.loss !== undefined);
  const a = read(path.join(tmp, 'live')), b = read(path.join(tmp, 'cached'));
  assert.equal(b.length, 4);
  // fp16 logprobs in the cache: losses agree to fp16 precision
  a.forEach((l, i) => assert.ok(Math.abs(l.loss - b[i].loss) < 2e-3 * Math.max(1, l.loss), `step ${l.step}: live ${l.loss} vs cached ${b[i].loss}`));
});

test('feature KD (hidden-state MSE through a learned projection) trains, logs its part and resumes exactly', { timeout: 300_000 }, async () => {
  const mk = (out: string) => config(out, {
    distill: { teacher: { model: teacherDir }, loss: [{ objective: 'fkl' }], features: [{ objective: 'hidden_mse', weight: 0.5 }, { objective: 'hidden_cosine', weight: 0.2, layer_map: 'last' }] },
    train: { steps: 6, batch_size: 4, lr: 0.01, warmup_steps: 1, eval_every: 6, eval_batches: 2, checkpoint_every: 2, seed: 2 },
  });
  const full = path.join(tmp, 'feat-full'), cut = path.join(tmp, 'feat-cut');
  await runTraining(mk(full));
  let calls = 0;
  await runTraining(mk(cut), { shouldStop: () => ++calls > 3 });
  await runTraining(mk(cut));
  const read = (d: string) => fs.readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.loss !== undefined);
  const a = read(full), b = read(cut);
  assert.equal(a.length, 6);
  for (const l of a) assert.ok(Number.isFinite(l.hidden_mse) && l.hidden_mse > 0 && Number.isFinite(l.hidden_cosine), JSON.stringify(l));
  assert.deepEqual(b.map((l) => [l.loss, l.hidden_mse, l.hidden_cosine]), a.map((l) => [l.loss, l.hidden_mse, l.hidden_cosine]));
});

test('an interrupted replay + TAID distillation resumes to identical losses', { timeout: 300_000 }, async () => {
  const mk = (out: string) => config(out, {
    ...distill([{ objective: 'taid', t_start: 0.3 }], { kind: 'replay', prompt_len: 8, init_threshold: 0.7, capacity: 8 }),
    train: { steps: 8, batch_size: 4, lr: 0.01, warmup_steps: 1, eval_every: 4, eval_batches: 2, checkpoint_every: 2, seed: 5 },
  });
  const full = path.join(tmp, 'full'), cut = path.join(tmp, 'cut');
  await runTraining(mk(full));
  let calls = 0;
  const first = await runTraining(mk(cut), { shouldStop: () => ++calls > 5 });
  assert.ok(first.stopped && first.steps === 5);
  await runTraining(mk(cut));
  const read = (d: string) => fs.readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).map((l) => JSON.stringify([l.step, l.loss, l.val_loss, l.val_fkl, l.taid_t, l.p_gen]));
  assert.deepEqual(read(cut), read(full));
});
