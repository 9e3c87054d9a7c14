/**
 * Reading what reports show: run folders (metrics.jsonl step and eval lines, summary.json) and eval
 * JSON files (`lmdistill eval --json`). Missing or malformed files are user errors naming the file
 * (and line); a truncated last line of metrics.jsonl — a run still writing — is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { evalJsonSchema, type EvalJsonRead } from '../result.js';

/** One metrics.jsonl line: `step` plus numeric fields (non-numeric fields are dropped). */
export type MetricsRow = { step: number } & Record<string, number>;

export interface RunSummary {
  steps?: number;
  finalValLoss?: number;
  finalValPpl?: number;
  finalEval?: Record<string, number>;
  unigramPpl?: number;
  trainTokensPerSec?: number;
  peakRssMb?: number;
  parameters?: number;
  samples: { prompt: string; text: string }[];
}

export interface RunData {
  /** display name (folder name, made unique) */
  name: string;
  dir: string;
  /** training step lines (those with a `loss`), by step */
  steps: MetricsRow[];
  /** validation lines (those with a `val_*` field), by step */
  evals: MetricsRow[];
  summary: RunSummary | null;
}

/** Fields of step lines that are not loss parts. */
export const NON_LOSS_FIELDS = new Set(['step', 'lr', 'grad_norm', 'tokens', 'tokens_per_sec', 'taid_t', 'p_gen']);

const finite = z.number().nullable().optional().transform((v) => (v === null ? undefined : v));
const summarySchema = z.looseObject({
  steps: finite,
  finalValLoss: finite,
  finalValPpl: finite,
  finalEval: z.record(z.string(), z.number().nullable()).nullable().optional(),
  unigramPpl: finite,
  trainTokensPerSec: finite,
  peakRssMb: finite,
  parameters: finite,
  samples: z.array(z.looseObject({ prompt: z.string(), text: z.string() })).optional(),
});

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 2);
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`, 2);
  }
}

function zodMessage(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Parses metrics.jsonl text into step and eval rows (sorted by step; a later line for a step wins). */
export function parseMetrics(text: string, file = 'metrics.jsonl'): { steps: MetricsRow[]; evals: MetricsRow[] } {
  const lines = text.split('\n');
  const steps = new Map<number, MetricsRow>(), evals = new Map<number, MetricsRow>();
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      if (lines.slice(i + 1).every((l) => !l.trim())) return; // a last line still being written
      throw new UserError(`${file}:${i + 1}: not valid JSON`, 2);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new UserError(`${file}:${i + 1}: expected a JSON object`, 2);
    const rec = obj as Record<string, unknown>;
    if (typeof rec.step !== 'number' || !Number.isFinite(rec.step)) throw new UserError(`${file}:${i + 1}: missing numeric "step"`, 2);
    const row = { step: rec.step } as MetricsRow;
    for (const [k, v] of Object.entries(rec)) if (typeof v === 'number' && Number.isFinite(v)) row[k] = v;
    if (Object.keys(rec).some((k) => k.startsWith('val_'))) evals.set(row.step, row);
    else if ('loss' in rec) steps.set(row.step, row);
  });
  const byStep = (a: MetricsRow, b: MetricsRow): number => a.step - b.step;
  return { steps: [...steps.values()].sort(byStep), evals: [...evals.values()].sort(byStep) };
}

/** Reads a run folder (needs metrics.jsonl or summary.json). */
export function readRun(dir: string, name = path.basename(path.resolve(dir))): RunData {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`${dir}: no such run folder`, 2);
  const metricsFile = path.join(dir, 'metrics.jsonl'), summaryFile = path.join(dir, 'summary.json');
  const hasMetrics = fs.existsSync(metricsFile), hasSummary = fs.existsSync(summaryFile);
  if (!hasMetrics && !hasSummary) {
    throw new UserError(`${dir}: not a run folder (no metrics.jsonl or summary.json; a run folder is what \`lmdistill train\` or \`distill\` writes to out_dir)`, 2);
  }
  const { steps, evals } = hasMetrics ? parseMetrics(readText(metricsFile), metricsFile) : { steps: [], evals: [] };
  let summary: RunSummary | null = null;
  if (hasSummary) {
    const parsed = summarySchema.safeParse(parseJson(summaryFile, readText(summaryFile)));
    if (!parsed.success) throw new UserError(`${summaryFile}: ${zodMessage(parsed.error)}`, 2);
    const s = parsed.data;
    const finalEval: Record<string, number> = {};
    for (const [k, v] of Object.entries(s.finalEval ?? {})) if (typeof v === 'number' && Number.isFinite(v)) finalEval[k] = v;
    summary = {
      steps: s.steps, finalValLoss: s.finalValLoss, finalValPpl: s.finalValPpl, finalEval, unigramPpl: s.unigramPpl,
      trainTokensPerSec: s.trainTokensPerSec, peakRssMb: s.peakRssMb, parameters: s.parameters,
      samples: (s.samples ?? []).map((x) => ({ prompt: x.prompt, text: x.text })),
    };
  }
  return { name, dir, steps, evals, summary };
}

/** Reads several run folders; names are folder names, prefixed with their parent where two collide. */
export function readRuns(dirs: readonly string[]): RunData[] {
  const base = dirs.map((d) => path.basename(path.resolve(d)));
  const names = dirs.map((d, i) => (base.filter((b) => b === base[i]).length > 1 ? path.join(path.basename(path.dirname(path.resolve(d))), base[i]) : base[i]));
  names.forEach((n, i) => { if (names.indexOf(n) !== i) names[i] = `${n} (${i + 1})`; });
  return dirs.map((d, i) => readRun(d, names[i]));
}

/** An eval JSON file as `lmdistill eval --json` (or `--out`) writes it. */
export function readEvalJson(file: string): { file: string; data: EvalJsonRead } {
  const parsed = evalJsonSchema.safeParse(parseJson(file, readText(file).trim()));
  if (!parsed.success) throw new UserError(`${file}: not an lmdistill eval result (${zodMessage(parsed.error)})`, 2);
  return { file, data: parsed.data };
}
