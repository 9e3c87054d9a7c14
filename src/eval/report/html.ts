/**
 * The report page: one self-contained HTML document (inline CSS, inline SVG, no scripts, no external
 * assets) comparing run folders — training curves of every loss part, validation metrics over steps,
 * a summary table, the evaluation table (eval JSON files, else the runs' final metrics), a reliability
 * diagram, and sample generations. Every run keeps one colour in every plot.
 */
import path from 'node:path';
import type { EvalJsonRead } from '../result.js';
import { fmtNum } from '../result.js';
import type { MetricsRow, RunData } from './runs.js';
import { NON_LOSS_FIELDS } from './runs.js';
import { emaSmooth, escapeXml as esc, linePlot, PALETTE, type PlotSeries } from './svg.js';

export interface ReportInput {
  title: string;
  runs: readonly RunData[];
  /** eval results (`lmdistill eval --json`), with the file each came from */
  evals?: readonly { file: string; data: EvalJsonRead }[];
  /** shown in the header, e.g. an ISO timestamp (omitted when absent, so output can be reproducible) */
  generatedAt?: string;
}

/** Readable names for the metrics our runs write; anything else is shown by its key. */
const LABELS: Record<string, string> = {
  loss: 'training objective (total)',
  ce: 'cross-entropy part',
  fkl: 'forward KL part',
  rkl: 'reverse KL part',
  tvd: 'TVD part',
  gjsd: 'generalised JSD part',
  val_loss: 'validation loss (nats/token)',
  val_ppl: 'validation perplexity',
  val_fkl: 'validation KL(teacher‖student) /token',
  lr: 'learning rate',
  grad_norm: 'gradient norm (before clipping)',
  tokens_per_sec: 'throughput (tokens/s)',
  taid_t: 'TAID interpolation t',
  p_gen: 'replay: probability of generating',
};
const label = (k: string): string => LABELS[k] ?? k;

const CSS = [
  'body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#222;max-width:1160px;margin:24px auto;padding:0 16px;background:#fff}',
  'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}h3{font-size:14px;margin:14px 0 6px}',
  '.meta{color:#666;margin:0 0 12px}',
  'table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border:1px solid #d6d6d6;padding:3px 8px;text-align:right;white-space:nowrap}',
  'th{background:#f3f3f3;white-space:normal;vertical-align:bottom}td:first-child,th:first-child{text-align:left}',
  '.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}',
  '.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(350px,1fr));gap:10px}',
  '.plots svg{width:100%;height:auto;border:1px solid #eee}',
  '.note{color:#666;font-size:12px;margin:2px 0 8px}',
  '.sample{margin:4px 0 8px;padding:5px 10px;background:#f8f8f8;border-left:3px solid #ccc;white-space:pre-wrap;font-family:Menlo,Consolas,monospace;font-size:12px}',
  '.nl{color:#aaa}',
  '.prompt{font-weight:bold}',
].join('');

/** Keys present in any row, in first-seen order (step excluded). */
function keysOf(rows: readonly MetricsRow[], exclude: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!exclude.has(k)) seen.add(k);
  return [...seen];
}

/** Smoothing weight giving a window of about 1/40 of the curve (none for short curves). */
function autoWeight(n: number): number {
  const window = n / 40;
  return window <= 1.5 ? 0 : 1 - 1 / window;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>`
    + rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('') + '</tbody></table>';
}

const int = (x: number | undefined): string => (typeof x === 'number' && Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');

/** Per-report context shared by the sections: one colour per run. */
interface Ctx {
  runs: readonly RunData[];
  evals: readonly { file: string; data: EvalJsonRead }[];
  color: Map<string, string>;
  swatch(name: string): string;
  maxStep: number;
}

function summarySection(x: Ctx): string[] {
  const { runs } = x;
  if (!runs.length) return [];
  const finalKeys = [...new Set(runs.flatMap((r) => Object.keys(r.summary?.finalEval ?? {})))];
  return ['<h2>Runs</h2>', table(
    ['run', 'folder', 'steps', 'parameters', 'final val loss', 'final val ppl', ...finalKeys.map((k) => esc(label(k))), 'unigram ppl', 'train tokens/s', 'peak RSS (MB)'],
    runs.map((r) => {
      const s = r.summary;
      const lastEval = r.evals.at(-1);
      return [
        x.swatch(r.name), esc(r.dir), int(s?.steps ?? r.steps.at(-1)?.step), int(s?.parameters),
        fmtNum(s?.finalValLoss ?? lastEval?.val_loss, 4), fmtNum(s?.finalValPpl ?? lastEval?.val_ppl, 2),
        ...finalKeys.map((k) => fmtNum(s?.finalEval?.[k] ?? lastEval?.[k], 4)),
        fmtNum(s?.unigramPpl, 1), int(s?.trainTokensPerSec), int(s?.peakRssMb),
      ];
    }),
  )];
}

function evaluationSection(x: Ctx): string[] {
  const { runs, evals } = x;
  const out = ['<h2>Evaluation</h2>'];
  if (evals.length) {
    const runOf = (model: string): RunData | undefined => runs.find((r) => {
      const rel = path.relative(path.resolve(r.dir), path.resolve(model));
      return !rel.startsWith('..') && !path.isAbsolute(rel);
    });
    const name = (e: EvalJsonRead): string => { const r = runOf(e.model); return r ? x.swatch(r.name) : esc(e.model); };
    const data = [...new Set(evals.map((e) => e.data.data ?? '?'))];
    out.push(`<p class="note">${evals.map((e) => esc(path.basename(e.file))).join(', ')} on ${data.map(esc).join(', ')}. `
      + 'KL and TVD are means per token between the teacher p and the student q. 1 − TVD is the expected acceptance rate of the student '
      + 'as a speculative drafter for the teacher (DistillSpec); "measured" comes from real speculative sampling (the student drafts γ tokens, '
      + 'the teacher verifies them in one call), ± one standard error. ECE: 15-bin expected calibration error of the student\'s top-1 prediction.</p>');
    out.push(table(
      ['student', 'teacher', 'tokens', 'student ppl', 'teacher ppl', 'KL(p‖q)', 'KL(q‖p)', 'TVD', 'top-1 agree', 'ECE', '1 − TVD', 'measured acceptance', 'tokens / teacher call'],
      evals.map(({ data: e }) => {
        const d = e.divergence, s = e.speculative;
        const se = typeof s?.acceptance_std_err === 'number' ? s.acceptance_std_err : NaN;
        return [
          name(e), esc(e.teacher ?? '—'), int(e.tokens), fmtNum(e.perplexity, 2), fmtNum(e.teacher_metrics?.perplexity, 2),
          fmtNum(d?.fkl, 4), fmtNum(d?.rkl, 4), fmtNum(d?.tvd, 4), fmtNum(d?.top1_agreement), fmtNum(e.ece, 4), fmtNum(d?.acceptance),
          s ? `${fmtNum(s.acceptance_rate)} ± ${fmtNum(se)} (γ=${s.gamma})` : '—',
          s ? fmtNum(s.tokens_per_teacher_call, 2) : '—',
        ];
      }),
    ));
    const withBins = evals.filter((e) => e.data.calibration?.some((b) => b.count > 0));
    if (withBins.length) {
      const series: PlotSeries[] = withBins.map(({ data: e }, i) => {
        const r = runOf(e.model);
        return {
          name: r?.name ?? e.model, color: r ? x.color.get(r.name) : PALETTE[(runs.length + i) % PALETTE.length], markers: true,
          points: (e.calibration ?? []).filter((b) => b.count > 0).map((b) => [b.confidence, b.accuracy] as const),
        };
      });
      out.push(`<div class="plots">${linePlot(series, { title: 'reliability diagram (student top-1)', xLabel: 'confidence (bin mean)', yLabel: 'accuracy', xDomain: [0, 1], yDomain: [0, 1], diagonal: true })}</div>`);
    }
  } else if (runs.some((r) => r.summary || r.evals.length)) {
    const keys = [...new Set(runs.flatMap((r) => [...Object.keys(r.summary?.finalEval ?? {}), ...keysOf(r.evals.slice(-1), new Set(['step', 'val_loss', 'val_ppl']))]))];
    out.push('<p class="note">Final validation metrics of each run. For KL/TVD, calibration and speculative acceptance run '
      + '<code>lmdistill eval --model RUN/final --teacher TEACHER --out FILE</code> and pass <code>--eval FILE</code>.</p>');
    out.push(table(
      ['run', 'val loss', 'val ppl', ...keys.map((k) => esc(label(k)))],
      runs.map((r) => {
        const last = r.evals.at(-1);
        return [x.swatch(r.name), fmtNum(r.summary?.finalValLoss ?? last?.val_loss, 4), fmtNum(r.summary?.finalValPpl ?? last?.val_ppl, 2),
          ...keys.map((k) => fmtNum(r.summary?.finalEval?.[k] ?? last?.[k], 4))];
      }),
    ));
  } else {
    out.push('<p class="note">No evaluation results.</p>');
  }
  return out;
}

function trainingSection(x: Ctx): string[] {
  const { runs } = x;
  const stepRows = runs.flatMap((r) => r.steps);
  if (!stepRows.length) return [];
  const lossKeys = keysOf(stepRows, NON_LOSS_FIELDS).filter((k) => !k.startsWith('val_'));
  lossKeys.sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : 0));
  const optKeys = ['lr', 'grad_norm', 'taid_t', 'p_gen', 'tokens_per_sec'].filter((k) => stepRows.some((r) => k in r));
  const curve = (key: string, smooth: boolean): string => {
    const series: PlotSeries[] = [];
    for (const r of runs) {
      const pts = r.steps.filter((row) => key in row).map((row) => [row.step, row[key]] as const);
      if (!pts.length) continue;
      const w = smooth ? autoWeight(pts.length) : 0;
      if (w > 0) series.push({ name: r.name, color: x.color.get(r.name), points: pts, faint: true });
      series.push({ name: r.name, color: x.color.get(r.name), points: w > 0 ? emaSmooth(pts, w) : pts });
    }
    return linePlot(series, { title: label(key), xLabel: 'step', yLabel: key, xDomain: [0, x.maxStep] });
  };
  const out = ['<h2>Training curves</h2>',
    '<p class="note">Every loss part the runs log, the total objective first. Faint: per step; solid: exponential moving average. '
    + 'Totals of runs with different objectives are on different scales; compare a shared part (e.g. cross-entropy).</p>',
    `<div class="plots">${lossKeys.map((k) => curve(k, true)).join('')}</div>`];
  if (optKeys.length) out.push('<h3>Optimisation</h3>', `<div class="plots">${optKeys.map((k) => curve(k, k === 'grad_norm' || k === 'tokens_per_sec')).join('')}</div>`);
  return out;
}

function validationSection(x: Ctx): string[] {
  const { runs } = x;
  const evalRows = runs.flatMap((r) => r.evals);
  if (!evalRows.length) return [];
  const plots = keysOf(evalRows, new Set(['step'])).map((key) => linePlot(
    runs.map((r) => ({ name: r.name, color: x.color.get(r.name), markers: true, points: r.evals.filter((row) => key in row).map((row) => [row.step, row[key]] as const) }))
      .filter((s) => s.points.length),
    { title: label(key), xLabel: 'step', yLabel: key, logY: key.endsWith('_ppl'), xDomain: [0, x.maxStep] },
  ));
  return ['<h2>Validation</h2>', '<p class="note">Metrics on the validation split at each evaluation step, one line per run.</p>', `<div class="plots">${plots.join('')}</div>`];
}

/** Generated text with line breaks shown as a faint ↵ (keeps blank-line runs from filling the page). */
function sampleText(s: string): string {
  return esc(s).replace(/\r?\n/g, '<span class="nl">↵</span>');
}

function samplesSection(x: Ctx): string[] {
  const withSamples = x.runs.filter((r) => r.summary?.samples.length);
  if (!withSamples.length) return [];
  const out = ['<h2>Samples</h2>', '<p class="note">Generated at the end of each run from the prompts in bold (↵ = line break).</p>'];
  for (const r of withSamples) {
    out.push(`<h3>${x.swatch(r.name)}</h3>`);
    for (const s of r.summary!.samples) out.push(`<div class="sample"><span class="prompt">${esc(s.prompt)}</span>${sampleText(s.text)}</div>`);
  }
  return out;
}

/** Builds the report HTML (a pure function of its input). */
export function buildReportHtml(input: ReportInput): string {
  const { runs } = input;
  const evals = input.evals ?? [];
  const color = new Map(runs.map((r, i) => [r.name, PALETTE[i % PALETTE.length]]));
  const ctx: Ctx = {
    runs, evals, color,
    swatch: (name) => `<span class="swatch" style="background:${color.get(name) ?? '#888'}"></span>${esc(name)}`,
    maxStep: Math.max(1, ...runs.flatMap((r) => [r.steps.at(-1)?.step ?? 0, r.evals.at(-1)?.step ?? 0])),
  };
  const meta = `${runs.length} run${runs.length === 1 ? '' : 's'}${evals.length ? ` · ${evals.length} evaluation${evals.length === 1 ? '' : 's'}` : ''}`
    + `${input.generatedAt ? ` · generated ${esc(input.generatedAt)}` : ''} · lmdistill`;
  return [
    '<!DOCTYPE html>', '<html lang="en">',
    `<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(input.title)}</title><style>${CSS}</style></head>`,
    '<body>', `<h1>${esc(input.title)}</h1>`, `<p class="meta">${meta}</p>`,
    ...summarySection(ctx), ...evaluationSection(ctx), ...trainingSection(ctx), ...validationSection(ctx), ...samplesSection(ctx),
    '</body>', '</html>',
  ].join('\n') + '\n';
}
