/**
 * Every lab experiment at its tiny size through the CLI's library entry: it finishes, writes
 * result.json and a report (markdown + HTML with inline SVG) that states the paper's claim.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { LAB_EXPERIMENTS } from '../../src/lab/index.js';
import { runTeacherHacking, REGIMES } from '../../src/lab/teacher-hacking.js';
import { powerLawDeviation } from '../../src/lab/bench-s.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-lab-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

for (const exp of LAB_EXPERIMENTS) {
  test(`lab ${exp.name} (tiny) writes its report`, async () => {
    const out = path.join(tmp, exp.name);
    const r = await exp.run({ size: 'tiny', outDir: out });
    for (const f of [r.html, r.md, path.join(out, 'result.json')]) assert.ok(fs.existsSync(f), f);
    const html = fs.readFileSync(r.html, 'utf8');
    assert.match(html, /<svg/);
    assert.match(html, /What the paper claims/);
    assert.ok(r.headline.length > 0);
  });
}

test('teacher hacking: every regime has curves with finite proxy and golden metrics', async () => {
  const r = await runTeacherHacking({ size: 'tiny' });
  assert.deepEqual(r.regimes.map((g) => g.name), [...REGIMES]);
  for (const g of r.regimes) {
    assert.ok(g.points.length >= 2);
    for (const p of g.points) assert.ok([p.proxy, p.proxyTrain, p.golden, p.goldenTvd].every(Number.isFinite), JSON.stringify(p));
    assert.ok(g.points.every((p) => p.golden >= -1e-9 && p.proxy >= -1e-9));
  }
});

test('power-law detector: silent on an exact power law, fires where a curve turns up', () => {
  const pts = Array.from({ length: 40 }, (_, i) => ({ step: (i + 1) * 10, value: 2 * ((i + 1) * 10) ** -0.5 }));
  assert.equal(powerLawDeviation(pts).fireStep, null);
  const bent = pts.map((p) => ({ step: p.step, value: p.step > 250 ? p.value * (1 + (p.step - 250) / 100) : p.value }));
  const fire = powerLawDeviation(bent).fireStep;
  assert.ok(fire !== null && fire > 250 && fire <= 270, String(fire));
});

test('lmdistill lab CLI: runs an experiment at --tiny and rejects an unknown name', async () => {
  const { Command } = await import('commander');
  const { registerLab } = await import('../../src/cli/lab.js');
  const program = new Command('lmdistill').exitOverride();
  registerLab(program);
  const out = path.join(tmp, 'cli-th');
  const write = process.stdout.write.bind(process.stdout);
  let printed = '';
  process.stdout.write = ((s: string) => { printed += s; return true; }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['lab', 'teacher-hacking', '--tiny', '--out', out], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  assert.match(printed, /teacher-hacking \(tiny\)/);
  assert.ok(fs.existsSync(path.join(out, 'report.html')));
  await assert.rejects(program.parseAsync(['lab', 'nope'], { from: 'user' }), /unknown lab experiment "nope"/);
});
