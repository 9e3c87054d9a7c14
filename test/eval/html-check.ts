/**
 * A small structural checker for the report HTML (no parser dependency): tags balance, every <svg> has
 * a viewBox, numeric SVG attributes are finite, nothing is loaded from outside, no scripts.
 */

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);
const NUMERIC_ATTRS = new Set(['x', 'y', 'x1', 'x2', 'y1', 'y2', 'cx', 'cy', 'r', 'width', 'height', 'stroke-width', 'font-size', 'stroke-opacity']);

/** Problems found in `html` (empty when it passes). */
export function checkHtml(html: string): string[] {
  const problems: string[] = [];
  if (!/^<!DOCTYPE html>/i.test(html)) problems.push('missing <!DOCTYPE html>');
  const stack: string[] = [];
  const tagRe = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*(\/?)>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>/g;
  let m: RegExpExecArray | null;
  let last = 0;
  let svgs = 0;
  while ((m = tagRe.exec(html))) {
    const between = html.slice(last, m.index);
    if (/[<>]/.test(between.replace(/<!--[\s\S]*?-->/g, ''))) problems.push(`stray < or > near ${JSON.stringify(html.slice(Math.max(0, m.index - 60), m.index))}`);
    last = tagRe.lastIndex;
    if (!m[2]) continue; // comment or doctype
    const [, closing, rawName, attrs, selfClose] = m;
    const name = rawName.toLowerCase();
    if (closing) {
      const open = stack.pop();
      if (open !== name) { problems.push(`</${name}> closes <${open ?? 'nothing'}>`); if (open) stack.push(open); }
      continue;
    }
    const attrMap = new Map<string, string>();
    for (const a of attrs.matchAll(/([^\s=>/]+)(?:="([^"]*)")?/g)) attrMap.set(a[1].toLowerCase(), a[2] ?? '');
    if (name === 'script') problems.push('<script> present');
    if (attrMap.has('src') || attrMap.has('href') || attrMap.has('xlink:href')) problems.push(`<${name}> loads an external resource`);
    if ([...attrMap.keys()].some((k) => k.startsWith('on'))) problems.push(`<${name}> has an event handler`);
    if (name === 'svg') {
      svgs++;
      const vb = attrMap.get('viewbox');
      if (!vb || !/^0 0 \d+(\.\d+)? \d+(\.\d+)?$/.test(vb)) problems.push(`<svg> #${svgs} without a valid viewBox (${vb})`);
    }
    for (const [k, v] of attrMap) {
      if (NUMERIC_ATTRS.has(k) && !(v.endsWith('%') || Number.isFinite(Number(v)))) problems.push(`<${name} ${k}="${v}"> is not a finite number`);
      if (k === 'points') for (const p of v.trim().split(/\s+/)) if (!/^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/.test(p)) { problems.push(`bad point "${p}"`); break; }
    }
    if (!selfClose && !VOID.has(name)) stack.push(name);
  }
  if (stack.length) problems.push(`unclosed tags: ${stack.join(' > ')}`);
  if (/\b(NaN|Infinity|undefined)\b/.test(html.replace(/<[^>]*>/g, ' '))) problems.push('NaN/Infinity/undefined in the text');
  if (/\b(NaN|Infinity)\b/.test(html)) problems.push('NaN/Infinity in markup');
  if (/url\(|@import/i.test(html)) problems.push('CSS loads an external resource');
  return problems;
}

/** Number of <svg> elements. */
export function countSvgs(html: string): number {
  return (html.match(/<svg[\s>]/g) ?? []).length;
}
