/**
 * Hand-written SVG line plots for reports: linear or log y axis with "nice" ticks, grid, axis labels,
 * a legend, optional faint raw series behind smoothed ones, point markers, and a y = x reference line.
 * Output is a standalone <svg> element with a viewBox (it scales with the page); no browser, no deps.
 */

/** One line of a plot. */
export interface PlotSeries {
  name: string;
  /** [x, y] pairs; points with a non-finite coordinate (or y ≤ 0 on a log axis) are dropped */
  points: readonly (readonly [number, number])[];
  color?: string;
  /** drawn thin and translucent behind the others, and left out of the legend (e.g. unsmoothed data) */
  faint?: boolean;
  /** a dot at every point (few points, e.g. evaluations) */
  markers?: boolean;
  dashed?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  /** viewBox size (the page scales it); default 440 × 270 */
  width?: number;
  height?: number;
  /** fixed axis ranges (default: the data's, y padded by 5 %) */
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** draw the y = x diagonal (reliability diagrams) */
  diagonal?: boolean;
}

/** Ten distinguishable colours (Tableau 10); series without a colour take them in order. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

/** Escapes text for HTML/SVG element content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A coordinate for an attribute: finite by construction (a non-finite one is a bug here, not bad data). */
function c(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`svg: non-finite coordinate ${v}`);
  return String(Math.round(v * 10) / 10);
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `n` of them. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999) ?? 10 * mag;
  const out: number[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** Log-axis ticks: decades, plus 2× and 5× when the range spans fewer than three decades. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0 && hi > lo)) return lo > 0 ? [lo] : [];
  const out: number[] = [];
  const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
  const mults = e1 - e0 < 3 ? (e1 - e0 < 2 ? [1, 1.5, 2, 3, 5, 7] : [1, 2, 5]) : [1];
  for (let e = e0; e <= e1; e++) for (const m of mults) {
    const v = Number((m * 10 ** e).toPrecision(12));
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
  }
  return out;
}

/** Short tick label: 3 significant digits, k/M suffixes for large values, exponent for tiny ones. */
export function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (v === 0) return '0';
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

/** Keeps at most `max` points, evenly strided, always including the last one. */
export function downsample<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const stride = points.length / max;
  const out: T[] = [];
  for (let i = 0; i < max - 1; i++) out.push(points[Math.floor(i * stride)]);
  out.push(points[points.length - 1]);
  return out;
}

/**
 * Exponential moving average with bias correction (TensorBoard's smoothing): with `weight` 0 the data
 * is unchanged; the first point is not dragged towards 0.
 */
export function emaSmooth(points: readonly (readonly [number, number])[], weight: number): [number, number][] {
  let m = 0, norm = 0;
  return points.map(([x, y]) => {
    m = weight * m + (1 - weight) * y;
    norm = weight * norm + (1 - weight);
    return [x, m / norm];
  });
}

const MAX_POINTS = 600;

/** An SVG line plot. Series keep their order; colours default to PALETTE by position. */
export function linePlot(series: readonly PlotSeries[], o: PlotOptions): string {
  const W = o.width ?? 440, H = o.height ?? 270;
  const legendNames = series.filter((s) => !s.faint).map((s) => s.name);
  const legendW = legendNames.length ? Math.min(150, 26 + 6.2 * Math.max(...legendNames.map((n) => Math.min(n.length, 20)))) : 10;
  const L = 56, R = legendW + 8, T = 30, B = 40;
  const ok = (p: readonly [number, number]): boolean => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!o.logY || p[1] > 0);
  const clean = series.map((s) => ({ ...s, points: downsample(s.points.filter(ok), MAX_POINTS) }));
  const all = clean.flatMap((s) => s.points);
  const head = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="Helvetica, Arial, sans-serif" font-size="11" role="img">`
    + `<title>${escapeXml(o.title)}</title><rect width="${W}" height="${H}" fill="#fff"/>`
    + `<text x="${L}" y="18" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`;
  if (all.length === 0) return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data</text></svg>`;

  const ty = (v: number): number => (o.logY ? Math.log10(v) : v);
  let [x0, x1] = o.xDomain ?? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = o.yDomain ? [ty(o.yDomain[0]), ty(o.yDomain[1])] : [Math.min(...all.map((p) => ty(p[1]))), Math.max(...all.map((p) => ty(p[1])))];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.05 || 0.5; y0 -= d; y1 += d; }
  if (!o.yDomain) { const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad; }
  const px = (v: number): number => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const py = (v: number): number => H - B - ((ty(v) - y0) / (y1 - y0)) * (H - T - B);
  const inX = (v: number): boolean => v >= x0 - 1e-9 * Math.abs(x1 - x0) && v <= x1 + 1e-9 * Math.abs(x1 - x0);

  const parts: string[] = [head];
  // grid + ticks
  const yt = o.logY ? logTicks(10 ** y0, 10 ** y1) : niceTicks(y0, y1);
  for (const v of yt) {
    const y = py(v);
    parts.push(`<line x1="${L}" y1="${c(y)}" x2="${W - R}" y2="${c(y)}" stroke="#e6e6e6"/><text x="${L - 5}" y="${c(y + 3.5)}" text-anchor="end" fill="#333">${escapeXml(fmtTick(v))}</text>`);
  }
  for (const v of niceTicks(x0, x1, 6).filter(inX)) {
    const x = px(v);
    parts.push(`<line x1="${c(x)}" y1="${H - B}" x2="${c(x)}" y2="${H - B + 4}" stroke="#333"/><text x="${c(x)}" y="${H - B + 15}" text-anchor="middle" fill="#333">${escapeXml(fmtTick(v))}</text>`);
  }
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<text x="${c((L + W - R) / 2)}" y="${H - 6}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(13 ${c((T + H - B) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel + (o.logY ? ' (log)' : ''))}</text>`);
  if (o.diagonal) {
    const a = Math.max(x0, o.logY ? 10 ** y0 : y0), b = Math.min(x1, o.logY ? 10 ** y1 : y1);
    if (b > a) parts.push(`<line x1="${c(px(a))}" y1="${c(py(a))}" x2="${c(px(b))}" y2="${c(py(b))}" stroke="#999" stroke-dasharray="4 3"/>`);
  }
  // lines: faint ones first so they sit behind
  const colorOf = new Map<string, string>();
  series.filter((s) => !s.faint).forEach((s, i) => colorOf.set(s.name, s.color ?? PALETTE[i % PALETTE.length]));
  const ordered = [...clean.filter((s) => s.faint), ...clean.filter((s) => !s.faint)];
  parts.push(`<g fill="none" stroke-linejoin="round" stroke-linecap="round">`);
  for (const s of ordered) {
    const col = s.color ?? colorOf.get(s.name) ?? '#888';
    if (s.points.length > 1) {
      const pts = s.points.map(([x, y]) => `${c(px(x))},${c(py(y))}`).join(' ');
      const style = s.faint ? ' stroke-width="1" stroke-opacity="0.25"' : ` stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ''}`;
      parts.push(`<polyline stroke="${col}"${style} points="${pts}"/>`);
    }
    if (s.markers || s.points.length === 1) for (const [x, y] of s.points) parts.push(`<circle cx="${c(px(x))}" cy="${c(py(y))}" r="2.8" fill="${col}" stroke="none"/>`);
  }
  parts.push('</g>');
  // legend
  // as many entries as fit beside the plot; the rest are counted
  const fit = Math.max(1, Math.floor((H - T - B) / 15));
  const shown = legendNames.length > fit ? legendNames.slice(0, fit - 1) : legendNames;
  shown.forEach((name, i) => {
    const y = T + 6 + 15 * i, x = W - R + 10;
    const label = name.length > 20 ? `${name.slice(0, 19)}…` : name;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 16}" y2="${y}" stroke="${colorOf.get(name)}" stroke-width="2.5"/><text x="${x + 21}" y="${y + 4}">${escapeXml(label)}</text>`);
  });
  if (shown.length < legendNames.length) {
    parts.push(`<text x="${W - R + 10}" y="${T + 10 + 15 * shown.length}" fill="#666">+${legendNames.length - shown.length} more</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}
