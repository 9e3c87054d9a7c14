/**
 * The benchmark runner (`npm run bench`, `lmdistill bench`): for each case, runs our step in a child
 * process and every available PyTorch peer setting in its own child process, one after another in this
 * same run, then prints one JSON line per case (ours, all peers, the best peer, ratios) and, unless
 * --json, a table. Progress goes to stderr.
 *
 *   node --import tsx bench/run.ts [kd-small|kd-wide|gemm ...] [--json] [--steps N] [--backend auto|ref|native]
 *
 * With --rounds N every side runs N times, interleaved (ours, peer 1, peer 2, …, ours, …), and each side
 * keeps its fastest round: on a machine shared with other jobs that compares like with like. The line
 * also compares the medians of the rounds (`round_medians`): the fastest round of the best of many peer
 * settings is a maximum over more draws than ours, so the medians are the steadier comparison.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from '../src/cli/args.js';
import { UserError } from '../src/errors.js';
import { BACKEND_CHOICES, type BackendChoice } from './backend.js';
import { BUILTIN_CASES, defaultPlan, parseCaseSpec, type CaseSpec } from './cases.js';
import {
  discoverTorch, INSTALL_HINT, MALLOC_CHOICES, peerConfigs, peerEnv, withMallocTunables, type MallocChoice, type PythonTorch,
} from './peers.js';
import { bestOfRounds, runJsonChild, type ChildResult } from './proc.js';
import { caseLine, formatTable, machineInfo } from './report.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(BENCH_DIR, '..');

interface RunOptions {
  json?: boolean;
  steps?: number;
  warmup?: number;
  rounds: number;
  backend: BackendChoice;
  oursTunables?: boolean;
  case: string[];
  peers: boolean;
  peerSweep?: boolean;
  malloc: MallocChoice;
  python: string[];
  keepOpenblasEnv?: boolean;
  timeout: number;
}

const log = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`); };

/** Built-in names expand to their specs; `--case` JSON objects are validated and appended. */
function resolveCases(names: string[], custom: string[]): CaseSpec[] {
  const unknown = names.filter((n) => !(n in BUILTIN_CASES));
  if (unknown.length) {
    throw new UserError(`unknown case${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${Object.keys(BUILTIN_CASES).join(', ')} (or --case '<json>')`, 2);
  }
  const chosen = names.length || custom.length ? names : Object.keys(BUILTIN_CASES);
  // a spec named by several cases (kd-small is also part of kd-small-bf16) runs once
  const specs = chosen.flatMap((n) => BUILTIN_CASES[n]).filter((s, i, all) => all.findIndex((t) => t.name === s.name) === i);
  custom.forEach((text, i) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new UserError(`--case #${i + 1}: not valid JSON (${(e as Error).message})`, 2);
    }
    specs.push(parseCaseSpec(value, `--case #${i + 1}`));
  });
  return specs;
}

function describe(r: ChildResult): string {
  if (!r.ok) return `failed: ${r.error}`;
  const rec = r.record;
  const rate = typeof rec.tokens_per_s === 'number' ? `${rec.tokens_per_s.toFixed(0)} tok/s` : typeof rec.gflops === 'number' ? `${rec.gflops.toFixed(1)} GFLOP/s` : '';
  return `${Number(rec.ms_per_step).toFixed(2)} ms/step, ${rate}, peak RSS ${Number(rec.peak_rss_mb).toFixed(0)} MB (load ${r.load.before.toFixed(1)})`;
}

async function runBench(names: string[], o: RunOptions): Promise<number> {
  const specs = resolveCases(names, o.case);
  const machine = machineInfo();
  const timeoutMs = o.timeout * 1000;
  let pythons: PythonTorch[] = [];
  const notes: string[] = [];
  if (o.peers) {
    const { found, skipped } = await discoverTorch(REPO_ROOT, o.python, o.keepOpenblasEnv ?? false);
    pythons = found;
    for (const s of skipped) log(`peer interpreter ${s.python} skipped: ${s.reason}`);
    if (!found.length) {
      notes.push(INSTALL_HINT);
      log(INSTALL_HINT);
    }
  } else {
    notes.push('PyTorch peers skipped (--no-peers)');
  }
  const configs = peerConfigs(pythons, machine.cores, { sweep: o.peerSweep ?? false, malloc: o.malloc });
  // ours runs in the inherited environment (what a user gets) unless --ours-tunables
  const oursEnv = o.oursTunables ? withMallocTunables(process.env, true) : process.env;
  const lines: Record<string, unknown>[] = [];
  let failures = 0;
  for (const spec of specs) {
    // the child picks its backend, and its default steps depend on it: pass steps only when set here
    const oursArgs = (backend: string): string[] => [
      '--import', 'tsx', path.join(BENCH_DIR, 'ours.ts'), '--spec', JSON.stringify(spec), '--backend', backend,
      ...(o.steps !== undefined ? ['--steps', String(o.steps)] : []),
      ...(o.warmup !== undefined ? ['--warmup', String(o.warmup)] : []),
    ];
    // later rounds use the backend the first one resolved `auto` to, so rounds compare like with like
    let backend: string = o.backend;
    const plan = defaultPlan(spec, 'torch');
    const peerArgs = (threads: number): string[] => [
      path.join(BENCH_DIR, spec.kind === 'kd' ? 'peer_kd.py' : 'peer_gemm.py'), '--spec', JSON.stringify(spec),
      '--steps', String(o.steps ?? plan.steps), '--warmup', String(o.warmup ?? plan.warmup), '--threads', String(threads),
    ];
    const oursRuns: ChildResult[] = [];
    const peerRuns: ChildResult[][] = configs.map(() => []);
    const peerEnvs = configs.map((cfg) => peerEnv(process.env, cfg, o.keepOpenblasEnv ?? false));
    for (let round = 1; round <= o.rounds; round++) {
      const tag = o.rounds > 1 ? ` [round ${round}/${o.rounds}]` : '';
      log(`${spec.name}${tag}: ours (--backend ${backend}) ...`);
      const ours = await runJsonChild(process.execPath, oursArgs(backend), oursEnv, REPO_ROOT, timeoutMs);
      if (ours.ok) backend = String(ours.record.backend);
      log(`${spec.name}${tag}: ours${ours.ok ? ` (${String(ours.record.backend)})` : ''}: ${describe(ours)}`);
      oursRuns.push(ours);
      for (const [i, cfg] of configs.entries()) {
        const result = await runJsonChild(cfg.py.python, peerArgs(cfg.torchThreads), peerEnvs[i].env, REPO_ROOT, timeoutMs);
        log(`${spec.name}${tag}: ${cfg.label}: ${describe(result)}`);
        peerRuns[i].push(result);
      }
    }
    const ours = bestOfRounds(oursRuns);
    if (!ours.ok) failures++;
    const peers = configs.map((cfg, i) => ({ cfg, unset: peerEnvs[i].unset, result: bestOfRounds(peerRuns[i]) }));
    const line = caseLine(spec, machine, ours, peers, notes);
    lines.push(line);
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  if (!o.json) process.stdout.write('\n' + formatTable(lines));
  return failures ? 1 : 0;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const choice = <T extends string>(flag: string, options: readonly T[]) => (v: string): T => {
  if (!options.includes(v as T)) throw new InvalidArgumentError(`${flag} expects ${options.join(', ')}, got "${v}"`);
  return v as T;
};

/** The runner's command line (src/cli/bench.ts mirrors the common options and forwards them here). */
export function buildRunner(): Command {
  return new Command('bench')
    .description('run our step and the PyTorch peers on the same cases; one JSON line per case')
    .argument('[cases...]', `cases to run: ${Object.keys(BUILTIN_CASES).join(', ')} (default: all)`)
    .option('--json', 'only the JSON lines on stdout (no table)')
    .option('--steps <n>', 'timed steps for every side (default: 20, kd-wide 10, gemm 100; the pure-TS backend 3, kd-wide 1)', intArg('--steps'))
    .option('--warmup <n>', 'untimed steps before timing (default: per side)', intArg('--warmup', 0))
    .option('--rounds <n>', 'run every side n times, interleaved; keep each side\'s fastest round and also compare the medians of the rounds', intArg('--rounds'), 1)
    .option('--backend <name>', 'our backend: auto (native if built, else ref), ref or native', choice('--backend', BACKEND_CHOICES), 'auto')
    .option('--ours-tunables', 'run our side with the glibc malloc tunables (default: the inherited environment)')
    .option('--case <json>', 'an extra case as JSON, e.g. {"name":"t","kind":"gemm","m":64,"n":64,"k":64} (repeatable)', collect, [])
    .option('--no-peers', 'skip the PyTorch peers')
    .option('--peer-sweep', 'also try the other torch/OpenBLAS thread splits')
    .option('--malloc <which>', 'peer allocator settings: both, tunables or default', choice('--malloc', MALLOC_CHOICES), 'both')
    .option('--python <path>', 'another Python with torch to bench (repeatable)', collect, [])
    .option('--keep-openblas-env', 'do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the peers')
    .option('--timeout <seconds>', 'limit per child process', intArg('--timeout'), 3600);
}

async function main(argv: string[]): Promise<void> {
  const program = buildRunner().exitOverride();
  let code = 0;
  program.action(async (names: string[], o: RunOptions) => {
    code = await runBench(names, o);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`bench: ${e.message}\n`);
      code = e.exitCode;
    } else if (typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('commander.')) {
      // commander already printed help (exit 0) or the usage error (exit 2, as the lmdistill CLI)
      code = (e as { exitCode: number }).exitCode === 0 ? 0 : 2;
    } else {
      throw e;
    }
  }
  process.exitCode = code;
}

await main(process.argv.slice(2));
