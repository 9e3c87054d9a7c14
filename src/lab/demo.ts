/**
 * The demo main job: on the embedded corpus, train a tokenizer and a teacher, distill the same student
 * with several objectives (offline) and one on-policy regime, and collect a results table. Built only
 * from `runTraining`; each run has its own folder under `outDir`, so a second call resumes or reuses
 * finished runs (a finished run restarts at its last step and returns after one evaluation).
 * Library code: reports through `onEvent`, never prints.
 */
import fs from 'node:fs';
import path from 'node:path';
import { trainConfigSchema, type TrainConfig } from '../config/schema.js';
import { runTraining, type RunSummary, type TrainEvent } from '../train/run.js';

export type DemoSize = 'full' | 'quick' | 'tiny';

/** Sizes measured on 2 cores with the native backend (see README "The demo"). */
interface SizeSpec {
  vocab: number; seqLen: number; batch: number; teacherSteps: number; studentSteps: number; onPolicySteps: number;
  teacher: { n_embd: number; n_layer: number; n_head: number };
  student: { n_embd: number; n_layer: number; n_head: number };
  evalBatches: number;
}

export const DEMO_SIZES: Record<DemoSize, SizeSpec> = {
  full: { vocab: 1024, seqLen: 64, batch: 16, teacherSteps: 500, studentSteps: 200, onPolicySteps: 120, teacher: { n_embd: 96, n_layer: 3, n_head: 3 }, student: { n_embd: 48, n_layer: 2, n_head: 2 }, evalBatches: 10 },
  quick: { vocab: 512, seqLen: 64, batch: 8, teacherSteps: 120, studentSteps: 40, onPolicySteps: 25, teacher: { n_embd: 64, n_layer: 2, n_head: 2 }, student: { n_embd: 32, n_layer: 1, n_head: 2 }, evalBatches: 4 },
  tiny: { vocab: 300, seqLen: 32, batch: 4, teacherSteps: 6, studentSteps: 3, onPolicySteps: 2, teacher: { n_embd: 16, n_layer: 1, n_head: 2 }, student: { n_embd: 8, n_layer: 1, n_head: 2 }, evalBatches: 1 },
};

/** One distilled student of the demo: a name, its objective mixture and its data regime. */
export interface DemoMethod { name: string; label: string; loss: Record<string, unknown>[]; regime: Record<string, unknown>; onPolicy?: boolean }

export const DEMO_METHODS: DemoMethod[] = [
  { name: 'ce', label: 'CE only (no teacher signal)', loss: [{ objective: 'ce' }], regime: { kind: 'offline' } },
  { name: 'fkl', label: 'forward KL', loss: [{ objective: 'fkl' }], regime: { kind: 'offline' } },
  { name: 'rkl', label: 'reverse KL', loss: [{ objective: 'rkl' }], regime: { kind: 'offline' } },
  { name: 'gjsd', label: 'generalised JSD (β=0.5)', loss: [{ objective: 'gjsd', beta: 0.5 }], regime: { kind: 'offline' } },
  { name: 'skew_fkl', label: 'skew KL (α=0.1)', loss: [{ objective: 'skew_fkl', alpha: 0.1 }], regime: { kind: 'offline' } },
  { name: 'taid', label: 'TAID (t 0.4→1)', loss: [{ objective: 'taid', t_start: 0.4, t_end: 1.0 }], regime: { kind: 'offline' } },
  { name: 'gjsd_on_policy', label: 'GJSD on-policy (student samples)', loss: [{ objective: 'gjsd', beta: 0.5 }], regime: { kind: 'on_policy', temperature: 1.0 }, onPolicy: true },
];

export type DemoEvent =
  | { type: 'run-start'; index: number; total: number; name: string; label: string; outDir: string }
  | { type: 'train'; name: string; event: TrainEvent }
  | { type: 'run-done'; index: number; total: number; name: string; summary: RunSummary; seconds: number };

export interface DemoOptions {
  outDir: string;
  size?: DemoSize;
  fresh?: boolean;
  /** restrict to these student method names (default: all) */
  methods?: string[];
  onEvent?: (e: DemoEvent) => void;
  shouldStop?: () => boolean;
}

export interface DemoRow { name: string; label: string; regime: string; steps: number; parameters: number; valPpl: number; valFkl: number; seconds: number; outDir: string }

export interface DemoResult { teacher: DemoRow; students: DemoRow[]; stopped: boolean; table: string; seconds: number }

function baseConfig(size: SizeSpec, outDir: string, steps: number, model: SizeSpec['teacher'], seed: number): Record<string, unknown> {
  return {
    out_dir: outDir,
    data: { source: { embedded: 'moby-dick' }, seq_len: size.seqLen },
    tokenizer: { vocab_size: size.vocab },
    model: { model_type: 'gpt2', ...model, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
    train: {
      steps, batch_size: size.batch, lr: 3e-3, min_lr: 3e-4, warmup_steps: Math.max(1, Math.round(steps / 10)),
      eval_every: steps, eval_batches: size.evalBatches, checkpoint_every: Math.max(1, Math.round(steps / 4)), seed,
    },
    sample: { prompts: [] },
  };
}

/** The teacher's config (exported for tests and for users who want to rerun one piece). */
export function demoTeacherConfig(outDir: string, size: DemoSize): TrainConfig {
  const s = DEMO_SIZES[size];
  const raw = baseConfig(s, path.join(outDir, 'teacher'), s.teacherSteps, s.teacher, 0);
  return trainConfigSchema.parse({ ...raw, sample: { prompts: ['Call me Ishmael.'] } });
}

/** A student's config: same model, data order and seed for every method; only loss and regime differ. */
export function demoStudentConfig(outDir: string, size: DemoSize, m: DemoMethod): TrainConfig {
  const s = DEMO_SIZES[size];
  const steps = m.onPolicy ? s.onPolicySteps : s.studentSteps;
  const teacherFinal = path.join(outDir, 'teacher', 'final');
  const regime = m.onPolicy ? { ...m.regime, prompt_len: Math.max(4, s.seqLen / 4), max_new_tokens: s.seqLen - s.seqLen / 4 } : m.regime;
  return trainConfigSchema.parse({
    ...baseConfig(s, path.join(outDir, m.name), steps, s.student, 1),
    tokenizer: { path: path.join(teacherFinal, 'tokenizer.json') },
    distill: { teacher: { model: teacherFinal }, loss: m.loss, regime },
  });
}

function row(name: string, label: string, regime: string, s: RunSummary, seconds: number): DemoRow {
  return { name, label, regime, steps: s.steps, parameters: s.parameters, valPpl: s.finalValPpl, valFkl: s.finalEval.val_fkl ?? NaN, seconds, outDir: s.outDir };
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '—');

/** Markdown table of the demo (teacher first, then students, best val FKL in bold). */
export function demoTable(teacher: DemoRow, students: DemoRow[]): string {
  const bestFkl = Math.min(...students.map((r) => r.valFkl).filter(Number.isFinite));
  const bestPpl = Math.min(...students.map((r) => r.valPpl).filter(Number.isFinite));
  const lines = [
    '| run | regime | steps | params | val ppl | val KL(teacher‖student) | time |',
    '|---|---|---:|---:|---:|---:|---:|',
    `| teacher (${teacher.label}) | train | ${teacher.steps} | ${(teacher.parameters / 1e6).toFixed(2)}M | ${fmt(teacher.valPpl)} | — | ${fmt(teacher.seconds, 0)}s |`,
  ];
  for (const r of students) {
    const ppl = r.valPpl === bestPpl ? `**${fmt(r.valPpl)}**` : fmt(r.valPpl);
    const fkl = r.valFkl === bestFkl ? `**${fmt(r.valFkl, 4)}**` : fmt(r.valFkl, 4);
    lines.push(`| ${r.name}: ${r.label} | ${r.regime} | ${r.steps} | ${(r.parameters / 1e6).toFixed(2)}M | ${ppl} | ${fkl} | ${fmt(r.seconds, 0)}s |`);
  }
  return lines.join('\n');
}

/** Runs the whole demo (resuming what exists) and returns the table rows. */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const size = opts.size ?? 'full';
  const emit = opts.onEvent ?? (() => {});
  const t00 = performance.now();
  if (opts.fresh) fs.rmSync(opts.outDir, { recursive: true, force: true });
  const methods = opts.methods ? DEMO_METHODS.filter((m) => opts.methods!.includes(m.name)) : DEMO_METHODS;
  const total = methods.length + 1;
  const s = DEMO_SIZES[size];

  const runOne = async (index: number, name: string, label: string, cfg: TrainConfig): Promise<{ summary: RunSummary; seconds: number }> => {
    emit({ type: 'run-start', index, total, name, label, outDir: cfg.out_dir });
    const t0 = performance.now();
    const summary = await runTraining(cfg, { onEvent: (event) => emit({ type: 'train', name, event }), shouldStop: opts.shouldStop });
    const seconds = (performance.now() - t0) / 1000;
    emit({ type: 'run-done', index, total, name, summary, seconds });
    return { summary, seconds };
  };

  const t = await runOne(1, 'teacher', `teacher ${s.teacher.n_layer}L/d${s.teacher.n_embd}`, demoTeacherConfig(opts.outDir, size));
  const teacher = row('teacher', `${s.teacher.n_layer}L/d${s.teacher.n_embd}`, 'train', t.summary, t.seconds);
  const students: DemoRow[] = [];
  let stopped = t.summary.stopped;
  for (const [i, m] of methods.entries()) {
    if (stopped) break;
    const r = await runOne(i + 2, m.name, m.label, demoStudentConfig(opts.outDir, size, m));
    stopped = r.summary.stopped;
    students.push(row(m.name, m.label, String(m.regime.kind), r.summary, r.seconds));
  }
  const table = demoTable(teacher, students);
  const seconds = (performance.now() - t00) / 1000;
  const result: DemoResult = { teacher, students, stopped, table, seconds };
  fs.writeFileSync(path.join(opts.outDir, 'demo-summary.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.outDir, 'demo-table.md'), table + '\n');
  return result;
}
