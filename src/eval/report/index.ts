/**
 * Run reports: read run folders and eval JSON files, build one self-contained HTML page, write it.
 * `writeReport` is also what the demo uses when it is present.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { buildReportHtml } from './html.js';
import { readEvalJson, readRuns } from './runs.js';

export { buildReportHtml, type ReportInput } from './html.js';
export { parseMetrics, readEvalJson, readRun, readRuns, NON_LOSS_FIELDS, type MetricsRow, type RunData, type RunSummary } from './runs.js';
export { linePlot, niceTicks, logTicks, fmtTick, emaSmooth, downsample, escapeXml, PALETTE, type PlotOptions, type PlotSeries } from './svg.js';

export interface WriteReportOptions {
  /** run folders (metrics.jsonl and/or summary.json) */
  runDirs: readonly string[];
  /** output HTML file (its folder is created) */
  out: string;
  title?: string;
  /** eval JSON files from `lmdistill eval --json` / `--out` */
  evalFiles?: readonly string[];
  generatedAt?: string;
}

/** Reads the runs and evals, writes the HTML report atomically; returns its path and size in bytes. */
export function writeReport(o: WriteReportOptions): { out: string; bytes: number } {
  const runs = readRuns(o.runDirs);
  const evals = (o.evalFiles ?? []).map(readEvalJson);
  const title = o.title ?? `lmdistill report: ${runs.map((r) => r.name).join(', ') || evals.map((e) => e.data.model).join(', ')}`;
  const html = buildReportHtml({ title, runs, evals, generatedAt: o.generatedAt });
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  writeFileAtomic(o.out, html);
  return { out: o.out, bytes: Buffer.byteLength(html) };
}
