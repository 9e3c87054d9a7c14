/**
 * `lmdistill lab <experiment>`: paper-reproduction experiments at toy scale (src/lab). Each writes
 * result.json, report.md (+ figures/*.svg) and report.html (SVG inline) into --out.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { getExperiment, LAB_EXPERIMENTS, type LabEvent, type LabSize } from '../lab/index.js';
import { intArg } from './args.js';
import { createReporter, fmtDuration } from './progress.js';

export function registerLab(program: Command): void {
  program
    .command('lab')
    .description(`run a paper-reproduction experiment and write its report: ${LAB_EXPERIMENTS.map((e) => e.name).join(' | ')}`)
    .argument('<experiment>', LAB_EXPERIMENTS.map((e) => `${e.name}: ${e.summary}`).join('\n'))
    .option('--quick', 'small sizes (about a minute) for a smoke run')
    .option('--tiny', 'a few steps (seconds; used by tests)')
    .option('--out <dir>', 'output folder (default runs/lab/<experiment>)')
    .option('--seed <n>', 'seed of the oracle, data and models', intArg('--seed', 0), 0)
    .action(async (name: string, o: { quick?: boolean; tiny?: boolean; out?: string; seed: number }) => {
      const exp = getExperiment(name);
      if (!exp) throw new UserError(`unknown lab experiment "${name}"; expected one of: ${LAB_EXPERIMENTS.map((e) => e.name).join(', ')}`, 2);
      const size: LabSize = o.tiny ? 'tiny' : o.quick ? 'quick' : 'full';
      const outDir = o.out ?? path.join('runs', 'lab', name);
      const rep = createReporter();
      const t0 = performance.now();
      const onEvent = (e: LabEvent): void => {
        if (e.type === 'stage') { rep.stop(); rep.log(`${name}: ${e.label}`); rep.start(e.total, 0, e.label.padEnd(16)); }
        else if (e.type === 'tick') rep.update(e.value, e.info ?? {});
        else { rep.stop(); rep.log(e.message); }
      };
      try {
        const r = await exp.run({ size, outDir, seed: o.seed, onEvent });
        rep.stop();
        process.stdout.write(`${name} (${size}): ${r.headline}\nreport: ${r.html}\n        ${r.md}\n`);
        rep.log(`done in ${fmtDuration(performance.now() - t0)}`);
      } finally {
        rep.stop();
      }
    });
}
