/**
 * Running one bench side in a child process and taking the JSON line it prints last. Every side runs in
 * its own process so its peak RSS (getrusage ru_maxrss) is its own, and sides never share cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

export type ChildResult =
  | { ok: true; record: Record<string, unknown>; load: { before: number; after: number } }
  | { ok: false; error: string; load: { before: number; after: number } };

// The child running now: killed with the runner (Ctrl-C, kill, a test timeout) so no orphan keeps a core busy.
let current: ChildProcess | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    current?.kill('SIGKILL');
    process.exit(128 + os.constants.signals[sig]);
  });
}

/** Spawns `cmd args` with `env`, waits (up to `timeoutMs`), and parses the last `{...}` line of stdout. */
export function runJsonChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<ChildResult> {
  const before = os.loadavg()[0];
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = (error: string | null): void => {
      clearTimeout(timer);
      current = null;
      const load = { before, after: os.loadavg()[0] };
      if (error) return resolve({ ok: false, error, load });
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      try {
        resolve({ ok: true, record: JSON.parse(line ?? '') as Record<string, unknown>, load });
      } catch {
        resolve({ ok: false, error: `no JSON line in output: ${tail(stdout + stderr)}`, load });
      }
    };
    child.on('error', (e) => done(`cannot start ${cmd}: ${e.message}`));
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') done(`killed after ${Math.round(timeoutMs / 1000)} s (--timeout)`);
      else if (code !== 0) done(`exit ${code ?? signal}: ${tail(stderr || stdout)}`);
      else done(null);
    });
  });
}

/**
 * Several rounds of the same side → the round with the lowest median ms/step (the least disturbed one on a
 * shared machine), carrying every round's ms/step as `round_ms`. All rounds failed → the last failure.
 */
export function bestOfRounds(runs: ChildResult[]): ChildResult {
  const ok = runs.filter((r): r is Extract<ChildResult, { ok: true }> => r.ok);
  if (!ok.length) return runs[runs.length - 1];
  const ms = (r: Extract<ChildResult, { ok: true }>): number => Number(r.record.ms_per_step);
  const best = ok.reduce((a, b) => (ms(b) < ms(a) ? b : a));
  return runs.length > 1 ? { ...best, record: { ...best.record, round_ms: ok.map(ms) } } : best;
}

/** The last few lines of a child's output (enough to see an error, short enough for one JSON line). */
function tail(s: string, lines = 4): string {
  return s.trim().split('\n').slice(-lines).join(' | ').slice(0, 600);
}
