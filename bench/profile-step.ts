/**
 * Where a kd-small step's time goes: wraps every backend kernel with a wall-clock timer and the process
 * CPU clock, runs the bench case's step (bench/cases.ts runKd) and prints per-kernel totals per step —
 * wall ms and CPU/wall (≈ 1: the kernel ran on one thread; ≈ threads: it used the pool) — plus the time
 * spent outside kernels (JS autodiff, allocation, GC).
 * Usage: node --import tsx bench/profile-step.ts [kd-small|kd-wide|kd-small-bf16] [steps]
 */
import type { Backend } from '../src/backend/backend.js';
import { setBackend } from '../src/tensor/tensor.js';
import { chooseBackend } from './backend.js';
import { BUILTIN_CASES, runKd, type KdSpec } from './cases.js';

const name = process.argv[2] ?? 'kd-small';
const steps = Number(process.argv[3] ?? 5);
// the spec named like the case (kd-small-bf16 also holds the fp32 kd-small for reference)
const spec = (BUILTIN_CASES[name].find((s) => s.name === name) ?? BUILTIN_CASES[name][0]) as KdSpec;
const base = chooseBackend('auto').backend;
const totals = new Map<string, { ms: number; cpu: number; calls: number }>();
let active = false;
const wrapped: Record<string, unknown> = { ...base };
for (const key of Object.keys(base) as (keyof Backend)[]) {
  const fn = base[key];
  if (typeof fn !== 'function') continue;
  wrapped[key] = (...args: unknown[]) => {
    if (!active) return (fn as (...a: unknown[]) => unknown).apply(base, args);
    let label = key as string;
    if (key === 'unary' || key === 'binary' || key === 'reduce' || key === 'unaryBackward') label += `:${String(args[0])}`;
    if (key === 'matmul') {
      const a = args[3] as { m: number; n: number; k: number; batch: number; transA: boolean; transB: boolean; bf16?: boolean };
      label += `:${a.batch > 1 ? `${a.batch}x` : ''}${a.m}x${a.n}x${a.k}${a.transA ? 'T' : ''}${a.transB ? 't' : ''}${a.bf16 ? ' bf16' : ''}`;
    }
    const c0 = process.cpuUsage(), t0 = performance.now();
    const r = (fn as (...a: unknown[]) => unknown).apply(base, args);
    const dt = performance.now() - t0, c = process.cpuUsage(c0);
    const e = totals.get(label) ?? { ms: 0, cpu: 0, calls: 0 };
    e.ms += dt;
    e.cpu += (c.user + c.system) / 1e3;
    e.calls++;
    totals.set(label, e);
    return r;
  };
}
setBackend(wrapped as unknown as Backend);
runKd(spec, { warmup: 2, steps: 0 } as never);
active = true;
const t0 = performance.now();
const m = runKd(spec, { warmup: 0, steps });
const wall = (performance.now() - t0) / steps;
// runKd builds the models again inside the timed region; use its own per-step median for the step time
const rows = [...totals.entries()].map(([k, v]) => ({ k, ms: v.ms / steps, par: v.cpu / Math.max(v.ms, 1e-9), calls: v.calls / steps })).sort((a, b) => b.ms - a.ms);
const inKernels = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${name}: step ${m.ms_per_step.toFixed(1)} ms (median), kernels ${inKernels.toFixed(1)} ms/step, wall incl. setup ${wall.toFixed(1)}`);
for (const r of rows) if (r.ms > 0.5) console.log(`${r.ms.toFixed(1).padStart(8)} ms  cpu/wall ${r.par.toFixed(2)} ${String(r.calls).padStart(5)}×  ${r.k}`);
