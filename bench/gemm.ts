/**
 * GEMM throughput of the native backend against the reference backend: 1024³ and 4096×512×512 in
 * all four transposition variants, one JSON line per (shape, variant, backend) on stdout.
 *
 *   node --import tsx bench/gemm.ts [--backend native|ref|both] [--threads N] [--isa avx512|avx2|scalar] [--seconds S]
 *
 * GFLOP/s counts 2·m·n·k per GEMM; `best` is the fastest repetition (least disturbed by other load on
 * the machine), `median` the typical one. `core_gflops` divides the flops by the CPU time the process
 * used (all threads), i.e. the rate per busy core: on a shared machine it separates the kernel's
 * speed from time lost to other processes. Each backend gets one untimed warm-up call first.
 */
import type { Backend, MatmulArgs } from '../src/backend/backend.js';
import { nativeBackend, nativeInfo, setNativeIsa, setNativeThreads, type NativeIsa } from '../src/backend/native.js';
import { refBackend } from '../src/backend/ref.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const which = arg('backend') ?? 'both';
const seconds = Number(arg('seconds') ?? '1');
if (arg('threads')) setNativeThreads(Number(arg('threads')));
if (arg('isa') && !setNativeIsa(arg('isa') as NativeIsa)) throw new Error(`ISA ${arg('isa')} is not supported on this CPU`);

const shapes: [number, number, number][] = [[1024, 1024, 1024], [4096, 512, 512]];
const backends: Backend[] = [];
if (which !== 'ref') {
  if (!nativeBackend) throw new Error(`native backend unavailable: ${nativeInfo().reason}`);
  backends.push(nativeBackend);
}
if (which !== 'native') backends.push(refBackend);

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

for (const [m, n, k] of shapes) {
  const a = fill(m * k, 1), b = fill(k * n, 2), c = new Float32Array(m * n);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const args: MatmulArgs = { batch: 1, m, n, k, transA, transB, aBatchStride: 0, bBatchStride: 0, accumulate: false };
      for (const be of backends) {
        be.matmul(a, b, c, args); // warm-up: packing buffers, pool threads, JIT
        const times: number[] = [];
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        do {
          const t0 = performance.now();
          be.matmul(a, b, c, args);
          times.push(performance.now() - t0);
        } while (performance.now() - start < seconds * 1000 || times.length < 3);
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        times.sort((x, y) => x - y);
        const gf = (ms: number): number => Number(((2 * m * n * k) / (ms * 1e6)).toFixed(1));
        const info = nativeInfo();
        console.log(JSON.stringify({
          bench: 'gemm', m, n, k, transA, transB, backend: be.name,
          ...(be.name === 'native' ? { isa: info.isa, threads: info.threads } : { threads: 1 }),
          reps: times.length, best_gflops: gf(times[0]), median_gflops: gf(times[times.length >> 1]),
          core_gflops: gf(cpuMs / times.length), best_ms: Number(times[0].toFixed(3)),
        }));
      }
    }
  }
}
