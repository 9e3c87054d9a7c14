/**
 * Reports for the demo and the lab. When the evaluation module's report writer exists
 * (src/eval/report, built in parallel) the demo uses it; otherwise — and always for the lab — a
 * self-contained HTML page with inline SVG plus a markdown twin is written here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lineChart, type Series } from './svg.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Markdown (tables, paragraphs, `#` headings, `-` lists) to simple HTML; enough for our reports. */
export function markdownToHtml(md: string): string {
  const out: string[] = [];
  const inline = (s: string): string => esc(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`([^`]+)`/g, '<code>$1</code>');
  const blocks = md.split(/\n{2,}/);
  for (const b of blocks) {
    const lines = b.split('\n');
    if (lines[0].startsWith('<svg') || lines[0].startsWith('<figure')) { out.push(b); continue; }
    const h = /^(#{1,4}) (.*)$/.exec(lines[0]);
    if (h && lines.length === 1) { out.push(`<h${h[1].length}>${inline(h[2])}</h${h[1].length}>`); continue; }
    if (lines.every((l) => l.startsWith('|'))) {
      const cells = (l: string): string[] => l.slice(1, l.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim());
      const rows = lines.filter((l) => !/^\|[\s:|-]+\|$/.test(l));
      out.push('<table>' + rows.map((l, i) => `<tr>${cells(l).map((c) => (i === 0 ? `<th>${inline(c)}</th>` : `<td>${inline(c)}</td>`)).join('')}</tr>`).join('') + '</table>');
      continue;
    }
    if (lines.every((l) => l.startsWith('- '))) { out.push('<ul>' + lines.map((l) => `<li>${inline(l.slice(2))}</li>`).join('') + '</ul>'); continue; }
    out.push(`<p>${lines.map(inline).join('<br>')}</p>`);
  }
  return out.join('\n');
}

const CSS = 'body{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.45}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}code{background:#f4f4f4;padding:0 3px}figure{display:inline-block;margin:0.5em}';

/** A lab report: markdown sections with figures. Writes report.md (+ figures/*.svg) and report.html (SVG inline). */
export interface LabReport { title: string; sections: { heading: string; body: string; figures?: { name: string; svg: string }[] }[] }

export function writeLabReport(dir: string, r: LabReport): { html: string; md: string } {
  fs.mkdirSync(path.join(dir, 'figures'), { recursive: true });
  const md: string[] = [`# ${r.title}`];
  const html: string[] = [`<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title><style>${CSS}</style></head><body>`, `<h1>${esc(r.title)}</h1>`];
  for (const s of r.sections) {
    md.push(`## ${s.heading}`, s.body);
    html.push(`<h2>${esc(s.heading)}</h2>`, markdownToHtml(s.body));
    for (const f of s.figures ?? []) {
      fs.writeFileSync(path.join(dir, 'figures', `${f.name}.svg`), f.svg + '\n');
      md.push(`![${f.name}](figures/${f.name}.svg)`);
      html.push(`<figure>${f.svg}</figure>`);
    }
  }
  html.push('</body></html>');
  const mdFile = path.join(dir, 'report.md'), htmlFile = path.join(dir, 'report.html');
  fs.writeFileSync(mdFile, md.join('\n\n') + '\n');
  fs.writeFileSync(htmlFile, html.join('\n') + '\n');
  return { html: htmlFile, md: mdFile };
}

function readMetrics(runDir: string): Record<string, number>[] {
  const f = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, number>);
}

type EvalReportFn = (opts: { runDirs: string[]; out: string; title?: string }) => Promise<unknown> | unknown;

/** The evaluation module's report writer, when it exists and exports `writeReport` (loaded lazily). */
async function evalReportWriter(): Promise<EvalReportFn | null> {
  try {
    const mod = (await import(/* dynamic: may not exist yet */ '../eval/report/index.js' as string)) as Record<string, unknown>;
    return typeof mod.writeReport === 'function' ? (mod.writeReport as EvalReportFn) : null;
  } catch {
    return null;
  }
}

/**
 * Writes `<outDir>/report.html` for a set of run folders: the eval module's report when available,
 * else our own page with the table and training-loss curves. Returns the HTML path.
 */
export async function writeRunsReport(o: { outDir: string; title: string; runDirs: string[]; table: string }): Promise<string> {
  const out = path.join(o.outDir, 'report.html');
  const evalWriter = await evalReportWriter();
  if (evalWriter) {
    try {
      await evalWriter({ runDirs: o.runDirs, out, title: o.title });
      if (fs.existsSync(out)) return out;
    } catch { /* fall through to the built-in page */ }
  }
  const loss: Series[] = o.runDirs.slice(1).map((d) => ({
    name: path.basename(d), points: readMetrics(d).filter((m) => typeof m.loss === 'number').map((m) => [m.step, m.loss] as [number, number]),
  }));
  const r = writeLabReport(o.outDir, {
    title: o.title,
    sections: [
      { heading: 'Results', body: o.table + '\n\nval ppl: validation perplexity of the run; val KL(teacher‖student): mean per-token forward KL to the teacher on the validation split. Training losses of different objectives are on different scales.' },
      { heading: 'Training loss', body: 'Per-step training objective of each student.', figures: [{ name: 'train-loss', svg: lineChart(loss, { title: 'student training loss', xLabel: 'step', yLabel: 'loss' }) }] },
    ],
  });
  return r.html;
}
