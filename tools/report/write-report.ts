/**
 * `lmdistill report` through the same command code, usable before/without the main CLI registering it:
 *   node --import tsx tools/report/write-report.ts RUN_DIR... [--out report.html] [--eval eval.json...]
 */
import { Command, CommanderError } from 'commander';
import { registerReport } from '../../src/cli/report.js';
import { UserError } from '../../src/errors.js';

const program = new Command('lmdistill').exitOverride();
registerReport(program);
for (const c of program.commands) c.exitOverride();
program.parseAsync(['report', ...process.argv.slice(2)], { from: 'user' }).catch((e: unknown) => {
  if (e instanceof CommanderError) { process.exitCode = e.exitCode === 0 ? 0 : 2; return; }
  if (e instanceof UserError) { process.stderr.write(`lmdistill: ${e.message}\n`); process.exitCode = e.exitCode; return; }
  throw e;
});
