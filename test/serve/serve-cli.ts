/**
 * `lmdistill serve` as a stand-alone entry for tests, used only until src/cli/main.ts registers the
 * command (then the tests run the real `lmdistill` CLI). Same error handling as main.ts.
 */
import { Command } from 'commander';
import { registerServe } from '../../src/cli/serve.js';
import { UserError } from '../../src/errors.js';

const program = new Command('lmdistill').exitOverride();
registerServe(program);
program.parseAsync(process.argv.slice(2), { from: 'user' }).catch((e: unknown) => {
  if (e instanceof UserError) {
    process.stderr.write(`lmdistill: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else if ((e as { code?: string }).code?.startsWith('commander.')) {
    process.exitCode = (e as { exitCode?: number }).exitCode ?? 2;
  } else throw e;
});
