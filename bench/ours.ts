/**
 * Child process that runs OUR side of one case and prints one JSON line (run.ts spawns it, so peak RSS
 * is this case's alone):
 *   node --import tsx bench/ours.ts --spec '<case JSON>' [--backend auto|ref|native] [--steps N] [--warmup N]
 * Steps default to cases.ts's plan for the backend actually chosen.
 */
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.js';
import { setBackend } from '../src/tensor/tensor.js';
import { BACKEND_CHOICES, chooseBackend, type BackendChoice } from './backend.js';
import { defaultPlan, parseCaseSpec, runCase } from './cases.js';

const ENV_KEYS = ['LMDISTILL_THREADS', 'LMDISTILL_ISA', 'GLIBC_TUNABLES', 'UV_THREADPOOL_SIZE'];
const maxRssMb = (): number => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

async function main(): Promise<void> {
  const rssStart = maxRssMb();
  const { values } = parseArgs({
    options: {
      spec: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
    },
    strict: true,
  });
  if (!values.spec) throw new UserError('ours.ts: --spec <case JSON> is required', 2);
  const spec = parseCaseSpec(JSON.parse(values.spec), '--spec');
  if (!BACKEND_CHOICES.includes(values.backend as BackendChoice)) throw new UserError(`--backend must be auto, ref or native, got "${values.backend}"`, 2);
  const chosen = chooseBackend(values.backend as BackendChoice);
  setBackend(chosen.backend);
  const plan = defaultPlan(spec, chosen.backend.name === 'ref' ? 'ref' : 'native');
  if (values.steps !== undefined) plan.steps = Number(values.steps);
  if (values.warmup !== undefined) plan.warmup = Number(values.warmup);
  const metrics = runCase(spec, plan);
  const record = {
    side: 'ours',
    case: spec.name,
    kind: spec.kind,
    backend: chosen.backend.name,
    ...(chosen.note ? { backend_note: chosen.note } : {}),
    threads: { backend: chosen.threads, env: Object.fromEntries(ENV_KEYS.filter((k) => k in process.env).map((k) => [k, process.env[k]])) },
    node: process.version,
    ...metrics,
    peak_rss_mb: maxRssMb(),
    rss_start_mb: rssStart,
  };
  process.stdout.write(JSON.stringify(record) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof UserError ? e.message : (e as Error).stack ?? String(e)}\n`);
  process.exitCode = e instanceof UserError ? e.exitCode : 1;
});
