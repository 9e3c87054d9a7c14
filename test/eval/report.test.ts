/**
 * Reports: the run-folder reader (step/eval lines, summaries, partial and corrupt files), the SVG plot
 * helper, the HTML page (well-formed, self-contained, every SVG with a viewBox, finite numbers, run
 * names, escaping), the `lmdistill report` command, the committed example, and — when Chromium is
 * installed — a headless render to a non-blank PNG.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerReport } from '../../src/cli/report.js';
import { UserError } from '../../src/errors.js';
import { buildReportHtml, linePlot, logTicks, niceTicks, parseMetrics, readEvalJson, readRun, readRuns, writeReport } from '../../src/eval/report/index.js';
import { checkHtml, countSvgs } from './html-check.js';
import { decodePng } from './png.js';

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-report-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A run folder in the format runTraining writes (metrics.jsonl step + eval lines, summary.json). */
function writeRun(name: string, o: { steps: number; parts: string[]; evalEvery: number; extra?: Record<string, number>; summary?: boolean; tail?: string }): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let s = 1; s <= o.steps; s++) {
    const parts = Object.fromEntries(o.parts.map((p, i) => [p, (3 + i) * Math.exp(-s / 40) + 1 + 0.05 * Math.sin(s)]));
    lines.push(JSON.stringify({ step: s, loss: 5 * Math.exp(-s / 50) + 2, lr: 1e-3 * Math.min(1, s / 10), grad_norm: 1 / Math.sqrt(s), tokens: 1024, tokens_per_sec: 900 + s, ...parts, ...o.extra }));
    if (s % o.evalEvery === 0) lines.push(JSON.stringify({ step: s, val_loss: 5 - s / 100, val_ppl: Math.exp(5 - s / 100), ...(o.parts.includes('fkl') ? { val_fkl: 1 / s } : {}) }));
  }
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n' + (o.tail ?? ''));
  if (o.summary !== false) {
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({
      outDir: dir, steps: o.steps, stopped: false, finalValLoss: 5 - o.steps / 100, finalValPpl: Math.exp(5 - o.steps / 100),
      ...(o.parts.includes('fkl') ? { finalEval: { val_fkl: 1 / o.steps } } : {}),
      unigramPpl: 389.5, trainTokensPerSec: 1200, peakRssMb: 300, parameters: 108864,
      samples: [{ prompt: 'Call me <Ishmael> & "friends"', text: '\nThe whale </div><script>alert(1)</script>\n\nend' }],
    }, null, 2));
  }
  return dir;
}

const fklRun = writeRun('distill-fkl', { steps: 120, parts: ['fkl', 'ce'], evalEvery: 40, extra: { taid_t: 0.5 } });
const ceRun = writeRun('distill-ce', { steps: 100, parts: ['ce'], evalEvery: 50, tail: '{"step": 101, "loss": 2.' }); // still being written
const evalFile = path.join(tmp, 'fkl.eval.json');
fs.writeFileSync(evalFile, JSON.stringify({
  model: path.join(fklRun, 'final'), teacher: 'runs/tiny-gpt/final', data: 'embedded:moby-dick (val split)', tokens: 17088, seq_len: 64,
  loss: 4.94, perplexity: 139.75, bits_per_token: 7.13, accuracy: 0.1, ece: 0.0144,
  calibration: Array.from({ length: 15 }, (_, b) => ({ lo: b / 15, hi: (b + 1) / 15, count: b < 10 ? 100 : 0, confidence: b < 10 ? (b + 0.5) / 15 : null, accuracy: b < 10 ? (b + 0.4) / 15 : null })),
  teacher_metrics: { loss: 4.77, perplexity: 118.34, bits_per_token: 6.9, accuracy: 0.116, ece: 0.016 },
  divergence: { fkl: 0.1078, rkl: 0.1135, tvd: 0.1659, top1_agreement: 0.681, acceptance: 0.8341 },
  speculative: { gamma: 4, temperature: 1, prompts: 64, prompt_len: 16, new_tokens: 3072, teacher_calls: 880, draft_calls: 3000, drafted: 3000, tested: 2800, accepted: 2340, acceptance_rate: 0.836, expected_acceptance: 0.837, acceptance_std_err: 0.007, tokens_per_teacher_call: 3.48, predicted_tokens_per_teacher_call: 3.61 },
}));

describe('run folders', () => {
  test('metrics.jsonl: step and eval lines by step; a truncated last line is skipped; summaries read', () => {
    const r = readRun(ceRun);
    assert.equal(r.name, 'distill-ce');
    assert.equal(r.steps.length, 100);
    assert.deepEqual(r.evals.map((e) => e.step), [50, 100]);
    assert.equal(r.summary?.parameters, 108864);
    assert.equal(r.summary?.samples.length, 1);
    const f = readRun(fklRun);
    assert.ok('fkl' in f.steps[0] && 'ce' in f.steps[0] && 'taid_t' in f.steps[0]);
    assert.equal(f.summary?.finalEval?.val_fkl, 1 / 120);
  });

  test('a later line for the same step wins (a resumed run rewrote it); non-numeric fields are dropped', () => {
    const m = parseMetrics('{"step":1,"loss":3}\n{"step":2,"loss":2,"note":"x"}\n{"step":1,"loss":4}\n');
    assert.deepEqual(m.steps, [{ step: 1, loss: 4 }, { step: 2, loss: 2 }]);
  });

  test('errors name the folder, file and line', () => {
    const notRun = path.join(tmp, 'model-only');
    fs.mkdirSync(notRun, { recursive: true });
    fs.writeFileSync(path.join(notRun, 'config.json'), '{}');
    assert.throws(() => readRun(notRun), (e: unknown) => e instanceof UserError && e.message.includes('model-only') && e.message.includes('not a run folder'));
    assert.throws(() => readRun(path.join(tmp, 'missing')), (e: unknown) => e instanceof UserError && e.message.includes('no such run folder'));
    assert.throws(() => parseMetrics('{"step":1,"loss":3}\n{oops\n{"step":2,"loss":2}\n', 'm.jsonl'), (e: unknown) => e instanceof UserError && e.message.startsWith('m.jsonl:2:'));
    assert.throws(() => parseMetrics('{"loss":3}\n', 'm.jsonl'), /m.jsonl:1: missing numeric "step"/);
    const badSummary = path.join(tmp, 'bad-summary');
    fs.mkdirSync(badSummary, { recursive: true });
    fs.writeFileSync(path.join(badSummary, 'summary.json'), '{"steps": "many"}');
    assert.throws(() => readRun(badSummary), (e: unknown) => e instanceof UserError && e.message.includes('summary.json') && e.message.includes('steps'));
    const badEval = path.join(tmp, 'bad.eval.json');
    fs.writeFileSync(badEval, '{"model": 3}');
    assert.throws(() => readEvalJson(badEval), (e: unknown) => e instanceof UserError && e.message.includes('bad.eval.json') && e.message.includes('not an lmdistill eval result'));
  });

  test('colliding folder names are made unique with their parent', () => {
    const a = writeRun(path.join('a', 'run'), { steps: 3, parts: [], evalEvery: 3 });
    const b = writeRun(path.join('b', 'run'), { steps: 3, parts: [], evalEvery: 3 });
    assert.deepEqual(readRuns([a, b]).map((r) => r.name), [path.join('a', 'run'), path.join('b', 'run')]);
  });
});

describe('svg plots', () => {
  test('ticks: round steps covering the range; log ticks are decades (and 2×, 5× for short ranges)', () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(3.2, 7.9), [4, 5, 6, 7]);
    assert.deepEqual(niceTicks(0, 300, 6), [0, 50, 100, 150, 200, 250, 300]);
    assert.deepEqual(logTicks(1, 1e5), [1, 10, 100, 1000, 1e4, 1e5]);
    assert.deepEqual(logTicks(120, 400), [150, 200, 300]);
  });

  test('linePlot: viewBox, legend names escaped, non-finite and (log axis) non-positive points dropped, empty plot says so', () => {
    const svg = linePlot([{ name: 'a<b>', points: [[0, 1], [1, NaN], [2, -1], [3, 4]] }, { name: 'c', points: [[0, 2], [3, Infinity]] }], { title: 't & u', xLabel: 'x', yLabel: 'y', logY: true });
    assert.deepEqual(checkHtml(`<!DOCTYPE html><html><body>${svg}</body></html>`), []);
    assert.match(svg, /viewBox="0 0 \d+ \d+"/);
    assert.ok(svg.includes('a&lt;b&gt;') && svg.includes('t &amp; u'));
    assert.equal((svg.match(/<polyline/g) ?? []).length, 1, 'series a keeps 2 points; series c keeps one (a marker)');
    assert.equal((svg.match(/<circle/g) ?? []).length, 1);
    const empty = linePlot([{ name: 'a', points: [] }], { title: 'e', xLabel: 'x', yLabel: 'y' });
    assert.ok(empty.includes('no data') && /viewBox/.test(empty));
  });

  test('a legend longer than the plot is cut with a count of the rest', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ name: `run${i}`, points: [[0, i], [1, i + 1]] as [number, number][] }));
    const svg = linePlot(many, { title: 'many', xLabel: 'x', yLabel: 'y' });
    assert.equal((svg.match(/<polyline/g) ?? []).length, 30, 'every line drawn');
    const more = /\+(\d+) more/.exec(svg);
    assert.ok(more, 'a "+N more" entry');
    assert.equal((svg.match(/>run\d+</g) ?? []).length + Number(more[1]), 30);
  });

  test('long series are downsampled to a bounded number of points', () => {
    const pts = Array.from({ length: 20_000 }, (_, i) => [i, Math.sin(i)] as const);
    const svg = linePlot([{ name: 'long', points: pts }], { title: 'long', xLabel: 'x', yLabel: 'y' });
    const n = /points="([^"]*)"/.exec(svg)![1].split(' ').length;
    assert.ok(n <= 600, `${n} points`);
  });
});

describe('HTML report', () => {
  const runs = readRuns([fklRun, ceRun]);
  const html = buildReportHtml({ title: 'test <report>', runs, evals: [readEvalJson(evalFile)] });

  test('well-formed and self-contained: balanced tags, every SVG with a viewBox, finite numbers, no scripts or external assets', () => {
    assert.deepEqual(checkHtml(html), []);
  });

  test('content: run names, every loss part, validation metrics, the eval table, samples escaped', () => {
    for (const name of ['distill-fkl', 'distill-ce']) assert.ok(html.includes(name), name);
    for (const t of ['training objective (total)', 'forward KL part', 'cross-entropy part', 'learning rate', 'TAID interpolation t',
      'validation loss', 'validation perplexity', 'validation KL(teacher‖student)', 'reliability diagram', '0.1078', '0.836 ± 0.007 (γ=4)', '3.48', '118.34']) {
      assert.ok(html.includes(t), `missing "${t}"`);
    }
    // 3 loss parts + 4 optimisation + 3 validation + 1 reliability
    assert.equal(countSvgs(html), 11);
    assert.ok(html.includes('Call me &lt;Ishmael&gt; &amp; &quot;friends&quot;'));
    assert.ok(!html.includes('<script>') && html.includes('&lt;script&gt;'));
    assert.ok(html.includes('<title>test &lt;report&gt;</title>'));
  });

  test('without eval files the evaluation table comes from summary.json; runs with only a summary still report', () => {
    const onlySummary = path.join(tmp, 'only-summary');
    fs.mkdirSync(onlySummary, { recursive: true });
    fs.copyFileSync(path.join(fklRun, 'summary.json'), path.join(onlySummary, 'summary.json'));
    const h = buildReportHtml({ title: 'r', runs: readRuns([fklRun, onlySummary]) });
    assert.deepEqual(checkHtml(h), []);
    assert.ok(h.includes('Final validation metrics') && h.includes('only-summary') && h.includes(Number(1 / 120).toFixed(4)));
  });

  test('lmdistill report (the command): writes the file, prints its path; no runs → an error', async () => {
    const out = path.join(tmp, 'sub', 'report.html');
    const program = new Command('lmdistill').exitOverride();
    registerReport(program);
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => { printed.push(s); return true; }) as typeof process.stdout.write;
    try {
      await program.parseAsync(['report', fklRun, ceRun, '--eval', evalFile, '--out', out, '--title', 'cli'], { from: 'user' });
    } finally {
      process.stdout.write = write;
    }
    assert.ok(printed.join('').startsWith(out));
    const h = fs.readFileSync(out, 'utf8');
    assert.deepEqual(checkHtml(h), []);
    assert.ok(h.includes('generated 20'), 'timestamp from the CLI');
    const empty = new Command('lmdistill').exitOverride();
    registerReport(empty);
    await assert.rejects(empty.parseAsync(['report'], { from: 'user' }), (e: unknown) => e instanceof UserError && e.message.includes('at least one run folder'));
  });

  test('the checker itself catches what it claims to', () => {
    const page = (body: string): string => `<!DOCTYPE html><html><body>${body}</body></html>`;
    assert.deepEqual(checkHtml(page('<p>ok <b>x</b></p><br><svg viewBox="0 0 1 1"><line x1="0" y1="1"/></svg>')), []);
    const bad: [string, RegExp][] = [
      ['<p><b>x</p>', /closes/], ['<div>', /unclosed/], ['<svg><g/></svg>', /viewBox/], ['<svg viewBox="0 0 1 1"><circle cx="NaN"/></svg>', /finite/],
      ['<svg viewBox="0 0 1 1"><polyline points="1,2 3,Infinity"/></svg>', /bad point/], ['<img src="http://x/y.png">', /external/],
      ['<script>1</script>', /script/], ['<p>1 < 2</p>', /stray/], ['<p>NaN</p>', /NaN/],
    ];
    for (const [body, re] of bad) assert.ok(checkHtml(page(body)).some((m) => re.test(m)), `${body}: ${checkHtml(page(body)).join('; ')}`);
  });

  test('the committed example (docs/report-example.html) passes the same checks', () => {
    const example = path.join(REPO, 'docs', 'report-example.html');
    const h = fs.readFileSync(example, 'utf8');
    assert.deepEqual(checkHtml(h), []);
    assert.ok(h.includes('distill-fkl') && h.includes('distill-ce'));
    assert.ok(fs.statSync(path.join(REPO, 'docs', 'report-screenshot.png')).size < 300 * 1024);
  });

  test('headless Chromium renders the report to a non-blank PNG', (t) => {
    const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((c) => fs.existsSync(c));
    if (!chromium) { t.skip('no /usr/bin/chromium (apt-get install -y chromium) — render check skipped'); return; }
    const file = writeReport({ runDirs: [fklRun, ceRun], evalFiles: [evalFile], out: path.join(tmp, 'render', 'r.html') }).out;
    const png = path.join(tmp, 'render', 'r.png');
    execFileSync('bash', [path.join(REPO, 'tools', 'report', 'render.sh'), file, png, '1000', '1400'], { stdio: 'pipe', timeout: 100_000 });
    const img = decodePng(fs.readFileSync(png));
    assert.equal(img.width, 1000);
    assert.equal(img.height, 1400);
    let ink = 0;
    const colours = new Set<number>();
    for (let i = 0; i < img.width * img.height; i++) {
      const o = i * img.channels;
      const [r, g, b] = img.channels >= 3 ? [img.pixels[o], img.pixels[o + 1], img.pixels[o + 2]] : [img.pixels[o], img.pixels[o], img.pixels[o]];
      if (r + g + b < 600) ink++;
      if (colours.size < 5000) colours.add((r << 16) | (g << 8) | b);
    }
    const frac = ink / (img.width * img.height);
    assert.ok(frac > 0.01 && frac < 0.6, `non-white fraction ${frac}`);
    assert.ok(colours.size > 50, `${colours.size} colours: text and plot lines rendered`);
    // the run colours of the plot lines are on the page (Tableau blue and red)
    const has = (rgb: number): boolean => colours.has(rgb);
    assert.ok(has(0x1f77b4) && has(0xd62728), 'plot line colours present');
  });
});
