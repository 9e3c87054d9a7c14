/**
 * `lmdistill bench`: runs the benchmark harness in bench/ (our step vs PyTorch peers, one JSON line per
 * case). The harness is a development tool that lives in the source repository and runs through tsx;
 * it is not part of the published package, so this command only works from a checkout.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.js';
import { intArg } from './args.js';

/** Repository root: this file is src/cli/bench.ts or dist/cli/bench.js, two levels down. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNNER = path.join(ROOT, 'bench', 'run.ts');

interface BenchOptions {
  json?: boolean;
  steps?: number;
  warmup?: number;
  rounds?: number;
  backend?: string;
  peers: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('benchmark our training step against PyTorch on this machine (needs the source repo: bench/ is not in the npm package)')
    .argument('[cases...]', 'kd-small, kd-wide, gemm, kd-small-bf16 (default: all)')
    .option('--json', 'only the JSON lines (no table)')
    .option('--steps <n>', 'timed steps for every side (default: per side)', intArg('--steps'))
    .option('--warmup <n>', 'untimed steps first (default: per side)', intArg('--warmup', 0))
    .option('--rounds <n>', 'interleaved repeats per side; each keeps its fastest, and the medians of the rounds are compared too', intArg('--rounds'))
    .option('--backend <name>', 'our backend: auto, ref or native', (v: string) => {
      if (!['auto', 'ref', 'native'].includes(v)) throw new InvalidArgumentError(`--backend expects auto, ref or native, got "${v}"`);
      return v;
    })
    .option('--no-peers', 'skip the PyTorch peers')
    .allowUnknownOption()
    .addHelpText('after', '\nOther harness options (--case, --peer-sweep, --malloc, --python, --ours-tunables, --timeout) are passed\n' +
      'through; `npm run bench -- --help` lists them. PyTorch peer: apt-get install -y python3-torch libopenblas0-pthread')
    .action(benchCommand);
}

/** Forwards to `node --import tsx bench/run.ts ...` in the repository and mirrors its exit code. */
export async function benchCommand(cases: string[], o: BenchOptions): Promise<void> {
  if (!fs.existsSync(RUNNER)) {
    throw new UserError(`the benchmark harness is not installed: ${RUNNER} is missing. It lives in the lmdistill source ` +
      'repository (bench/), not in the npm package; clone the repository, `npm ci`, then `npm run bench`.', 2);
  }
  const args = [...cases];
  if (o.json) args.push('--json');
  if (o.steps !== undefined) args.push('--steps', String(o.steps));
  if (o.warmup !== undefined) args.push('--warmup', String(o.warmup));
  if (o.rounds !== undefined) args.push('--rounds', String(o.rounds));
  if (o.backend !== undefined) args.push('--backend', o.backend);
  if (!o.peers) args.push('--no-peers');
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...args], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
  process.exitCode = code;
}
