/** `lmdistill report`: one self-contained HTML page comparing run folders (and eval results). */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { writeReport } from '../eval/report/index.js';

interface ReportOpts { out: string; eval?: string[]; title?: string }

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write one self-contained HTML report (inline SVG plots, no scripts or external files) comparing run folders: '
      + 'training curves of every loss part, validation metrics, evaluation table, sample generations')
    .argument('[runs...]', 'run folders (what train/distill write to out_dir: metrics.jsonl, summary.json)')
    .option('-o, --out <file>', 'output HTML file', 'report.html')
    .option('--eval <files...>', 'eval results from `lmdistill eval --teacher DIR --out FILE` (or --json output) for the evaluation table')
    .option('--title <text>', 'page title')
    .addHelpText('after', '\nExample:\n  lmdistill eval --model runs/distill-fkl/final --teacher runs/tiny-gpt/final --out fkl.json\n'
      + '  lmdistill report runs/distill-fkl runs/distill-ce --eval fkl.json --out report.html\n')
    .action((runs: string[], o: ReportOpts) => {
      if (runs.length === 0 && !o.eval?.length) throw new UserError('report: give at least one run folder (or --eval files)', 2);
      const r = writeReport({ runDirs: runs, out: o.out, title: o.title, evalFiles: o.eval, generatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') });
      process.stdout.write(`${r.out} (${(r.bytes / 1024).toFixed(1)} KB)\n`);
    });
}
