/**
 * Hand-written SVG line charts for lab reports (no browser, no dependencies). Optional log axes, one
 * polyline per series, a legend, and optional vertical markers (e.g. "golden minimum").
 */
export interface Series { name: string; points: [number, number][]; dashed?: boolean }
export interface ChartOptions {
  title: string; xLabel: string; yLabel: string; logX?: boolean; logY?: boolean;
  width?: number; height?: number; markers?: { x: number; label: string }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
  return out;
}
/** ticks at 1, 2, 5 × 10^k inside [10^lo, 10^hi] (decades only when the range is wide) */
function logTicks(lo: number, hi: number): number[] {
  const mults = hi - lo > 2.5 ? [1] : [1, 2, 5];
  const out: number[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) for (const m of mults) { const v = m * 10 ** e; if (Math.log10(v) >= lo - 1e-9 && Math.log10(v) <= hi + 1e-9) out.push(+v.toPrecision(6)); }
  return out.length >= 2 ? out : niceTicks(lo, hi).map((e) => 10 ** e);
}
const fmtTick = (v: number): string => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3)));

/** An SVG line chart of `series` (points with non-finite or, on log axes, non-positive values are dropped). */
export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 560, H = o.height ?? 340, L = 64, R = 150, T = 30, B = 44;
  const tx = (v: number): number => (o.logX ? Math.log10(v) : v), ty = (v: number): number => (o.logY ? Math.log10(v) : v);
  const ok = ([x, y]: [number, number]): boolean => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0) && (!o.logY || y > 0);
  const all = series.flatMap((s) => s.points.filter(ok));
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60"><text x="10" y="30">${esc(o.title)}: no data</text></svg>`;
  let [x0, x1] = [Math.min(...all.map((p) => tx(p[0]))), Math.max(...all.map((p) => tx(p[0])))];
  let [y0, y1] = [Math.min(...all.map((p) => ty(p[1]))), Math.max(...all.map((p) => ty(p[1])))];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const px = (v: number): number => L + ((tx(v) - x0) / (x1 - x0)) * (W - L - R);
  const py = (v: number): number => H - B - ((ty(v) - y0) / (y1 - y0)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(o.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
  ];
  const ticks = (lo: number, hi: number, log?: boolean): number[] => (log ? logTicks(lo, hi) : niceTicks(lo, hi));
  for (const v of ticks(x0, x1, o.logX)) {
    const x = px(v);
    parts.push(`<line x1="${x}" y1="${H - B}" x2="${x}" y2="${H - B + 4}" stroke="#333"/><text x="${x}" y="${H - B + 15}" text-anchor="middle">${fmtTick(v)}</text>`);
  }
  for (const v of ticks(y0, y1, o.logY)) {
    const y = py(v);
    parts.push(`<line x1="${L - 4}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#eee"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${fmtTick(v)}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}${o.logX ? ' (log)' : ''}</text>`);
  parts.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}${o.logY ? ' (log)' : ''}</text>`);
  for (const m of o.markers ?? []) {
    if (!ok([m.x, 10 ** y0]) && o.logX) continue;
    const x = px(m.x);
    parts.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#999" stroke-dasharray="3 3"/><text x="${x + 3}" y="${T + 10}" fill="#666">${esc(m.label)}</text>`);
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter(ok).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts}"/>`);
    const ly = T + 14 * i + 6;
    parts.push(`<line x1="${W - R + 8}" y1="${ly}" x2="${W - R + 26}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${W - R + 30}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
