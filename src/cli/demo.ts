/**
 * `lmdistill demo`: the main job on the embedded Moby Dick corpus — a tokenizer and a teacher, then the
 * same student distilled with CE, FKL, RKL, GJSD, skew KL, TAID (offline) and GJSD on-policy; prints a
 * markdown table to stdout and writes a report. Reuses finished runs in --out; --fresh starts over.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { runDemo, type DemoEvent, type DemoSize } from '../lab/demo.js';
import { writeRunsReport } from '../lab/report.js';
import { createReporter, fmtDuration } from './progress.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train a teacher on the embedded Moby Dick corpus and distill one student with CE, FKL, RKL, GJSD, skew KL, TAID and on-policy GJSD; print a comparison table (~10 min on 2 cores, native backend)')
    .option('--quick', 'smaller models and fewer steps (about 1-2 minutes) for a smoke run')
    .option('--tiny', 'a few steps of very small models (seconds; used by tests)')
    .option('--out <dir>', 'folder for all runs and the report', 'runs/demo')
    .option('--fresh', 'delete --out and start over instead of reusing finished runs')
    .action(async (o: { quick?: boolean; tiny?: boolean; out: string; fresh?: boolean }) => {
      const size: DemoSize = o.tiny ? 'tiny' : o.quick ? 'quick' : 'full';
      const rep = createReporter();
      let stop = false;
      const onSigint = (): void => { if (stop) process.exit(130); stop = true; rep.log('interrupt: saving a checkpoint at the end of this step (Ctrl-C again to quit now)'); };
      process.on('SIGINT', onSigint);
      let stage = '';
      const onEvent = (e: DemoEvent): void => {
        if (e.type === 'run-start') { stage = ''; rep.stop(); rep.log(`[${e.index}/${e.total}] ${e.name}: ${e.label} → ${e.outDir}`); return; }
        if (e.type === 'run-done') {
          rep.stop();
          const fkl = e.summary.finalEval.val_fkl;
          rep.log(`[${e.index}/${e.total}] ${e.name} done in ${fmtDuration(e.seconds * 1000)}: val ppl ${e.summary.finalValPpl.toFixed(2)}${fkl !== undefined ? ` · val FKL ${fkl.toFixed(4)}` : ''}`);
          return;
        }
        const ev = e.event;
        if (ev.type === 'prepare') {
          if (ev.stage !== stage) { stage = ev.stage; rep.start(ev.total, ev.done, `${e.name} ${ev.stage}`); }
          rep.update(ev.done, {});
        }
        else if (ev.type === 'start') { rep.stop(); rep.start(ev.totalSteps, ev.startStep, `${e.name.padEnd(14)}`); }
        else if (ev.type === 'step') rep.update(ev.step, { loss: ev.loss.toFixed(3), 'tok/s': ev.tokensPerSec.toFixed(0), ETA: fmtDuration(ev.etaMs) });
      };
      try {
        const r = await runDemo({ outDir: o.out, size, fresh: o.fresh, onEvent, shouldStop: () => stop });
        rep.stop();
        if (r.stopped) { process.exitCode = 130; rep.log('stopped; rerun the same command to resume'); return; }
        const report = await writeRunsReport({
          outDir: o.out, title: `lmdistill demo (${size})`, runDirs: [r.teacher.outDir, ...r.students.map((s) => s.outDir)], table: r.table,
        });
        process.stdout.write(`\n${r.table}\n\n`);
        rep.log(`demo finished in ${fmtDuration(r.seconds * 1000)} · report: ${report} · table: ${path.join(o.out, 'demo-table.md')}`);
        if (!fs.existsSync(report)) rep.log('(report not written)');
      } finally {
        rep.stop();
        process.off('SIGINT', onSigint);
      }
    });
}
