/**
 * The demo main job at its tiny size (a few steps of very small models, in a temp dir): every run
 * finishes, the table lists every method, and a second call reuses the finished runs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DEMO_METHODS, runDemo } from '../../src/lab/demo.js';
import { writeRunsReport } from '../../src/lab/report.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-demo-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('tiny demo: teacher + every student method finishes and appears in the table; rerun reuses runs', async () => {
  const out = path.join(tmp, 'demo');
  const events: string[] = [];
  const r = await runDemo({ outDir: out, size: 'tiny', onEvent: (e) => { if (e.type !== 'train') events.push(`${e.type}:${e.name}`); } });
  assert.equal(r.stopped, false);
  assert.equal(r.students.length, DEMO_METHODS.length);
  for (const m of DEMO_METHODS) {
    const row = r.students.find((s) => s.name === m.name)!;
    assert.ok(row, `row for ${m.name}`);
    assert.ok(Number.isFinite(row.valPpl) && Number.isFinite(row.valFkl), `${m.name}: ${row.valPpl} ${row.valFkl}`);
    assert.ok(fs.existsSync(path.join(out, m.name, 'final', 'model.safetensors')));
    assert.match(r.table, new RegExp(`\\| ${m.name}: `));
  }
  assert.ok(Number.isFinite(r.teacher.valPpl));
  assert.ok(events.includes('run-done:teacher') && events.includes('run-done:gjsd_on_policy'));
  const html = await writeRunsReport({ outDir: out, title: 'demo', runDirs: [r.teacher.outDir, ...r.students.map((s) => s.outDir)], table: r.table });
  assert.ok(fs.existsSync(html));

  const again = await runDemo({ outDir: out, size: 'tiny', methods: ['fkl'] });
  assert.equal(again.students[0].steps, r.students.find((s) => s.name === 'fkl')!.steps);
  assert.ok(Math.abs(again.students[0].valFkl - r.students.find((s) => s.name === 'fkl')!.valFkl) < 1e-6, 'reused run gives the same metrics');
});
