/**
 * The native backend: loads the C++ addon (native/, built by `npm ci` into
 * build/Release/lmdistill_native.node) and adapts it to the Backend interface. The addon takes the
 * caller's typed arrays in place, runs synchronously, picks AVX-512 / AVX2 / portable kernels at load
 * time and spreads large kernels over a persistent thread pool (LMDISTILL_THREADS, default: all cores).
 * Where the addon is missing or fails to load, `nativeBackend` is null and `nativeInfo().reason` says
 * why; `selectBackend()` then falls back to the reference backend unless native was demanded.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import type { AttentionDims, Backend, BinaryOp, MatmulArgs, ReduceOp, RowLossPart, UnaryOp } from './backend.js';
import { refBackend } from './ref.js';

export type NativeIsa = 'avx512' | 'avx2' | 'scalar';

/** The addon's exports (native/src/addon.cc). Ops travel as the integer codes below. */
interface Addon {
  unary(op: number, x: Float32Array, out: Float32Array): void;
  unaryBackward(op: number, x: Float32Array, y: Float32Array, gy: Float32Array, gx: Float32Array): void;
  sumSquares(x: Float32Array): number;
  binary(op: number, a: Float32Array, as: number[], b: Float32Array, bs: number[], out: Float32Array, shape: number[]): void;
  where(c: Float32Array, cs: number[], a: Float32Array, as: number[], b: Float32Array, bs: number[], out: Float32Array, shape: number[]): void;
  reduce(op: number, x: Float32Array, shape: number[], out: Float32Array, outStrides: number[]): void;
  copyStrided(x: Float32Array, offset: number, strides: number[], out: Float32Array, shape: number[]): void;
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, accumulate: boolean, bf16?: boolean, bias?: Float32Array | null): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;
  softmaxBackward(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: boolean): void;
  gather(table: Float32Array, ids: Int32Array, d: number, out: Float32Array): void;
  scatterAdd(src: Float32Array, ids: Int32Array, d: number, out: Float32Array): void;
  normForward(x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array, mean: Float32Array, rstd: Float32Array,
    rows: number, cols: number, eps: number, rms: boolean): void;
  normBackward(x: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array, gy: Float32Array, gx: Float32Array,
    gw: Float32Array, gb: Float32Array | null, rows: number, cols: number, rms: boolean): void;
  adamw(w: Float32Array, g: Float32Array | null, m: Float32Array, v: Float32Array,
    beta1: number, beta2: number, eps: number, decay: number, stepSize: number, sqrtBc2: number): void;
  attention(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    B: number, H: number, Hkv: number, T: number, S: number, D: number, causal: boolean, scale: number, layout?: number[]): void;
  attentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, gOut: Float32Array,
    gq: Float32Array, gk: Float32Array, gv: Float32Array,
    B: number, H: number, Hkv: number, T: number, S: number, D: number, causal: boolean, scale: number, layout?: number[]): void;
  rowLosses(z: Float32Array, t: Float32Array | null, labels: Int32Array | null, w: Float32Array, rows: number, V: number,
    parts: Float64Array, grad: Float32Array, partLoss: Float64Array, refused: Uint8Array): void;
  info(): { isa: NativeIsa; threads: number; supportedIsas: NativeIsa[]; mallocRetain: boolean; spinUs: number };
  retainFreedMemory(): boolean;
  setIsa(isa: string): boolean;
  setThreads(n: number): number;
}

// Must match the enums in native/src/kernels.h and native/src/strided.h.
const UNARY = { neg: 0, exp: 1, log: 2, sqrt: 3, tanh: 4, sigmoid: 5, relu: 6, gelu: 7, silu: 8, abs: 9 } satisfies Record<UnaryOp, number>;
const BINARY = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, pow: 5, eq: 6, lt: 7, gt: 8 } satisfies Record<BinaryOp, number>;
const REDUCE = { sum: 0, max: 1 } satisfies Record<ReduceOp, number>;
const ROW_KIND = { ce: 0, fkl: 1, rkl: 2 } satisfies Record<RowLossPart['kind'], number>; // native/src/rowloss.h

/** Package root: this file is src/backend/native.ts or dist/backend/native.js, two levels down. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADDON_PATH = `${ROOT}build/Release/lmdistill_native.node`;

function load(): { addon: Addon | null; reason?: string } {
  if (!existsSync(ADDON_PATH)) {
    return { addon: null, reason: `${ADDON_PATH} is missing (build it with \`npm rebuild lmdistill\` or \`npx node-gyp rebuild\`; needs a C++17 compiler)` };
  }
  try {
    return { addon: createRequire(import.meta.url)(ADDON_PATH) as Addon };
  } catch (e) {
    return { addon: null, reason: `loading ${ADDON_PATH} failed: ${(e as Error).message}` };
  }
}

const loaded = load();
const addon = loaded.addon;
// Freed blocks stay with glibc's malloc for reuse instead of going back to the OS, so a training step's
// activations land on already-mapped pages (see retainFreedMemory in native/src/addon.cc).
// LMDISTILL_MALLOC=system keeps the C library's defaults.
if (addon && process.env.LMDISTILL_MALLOC !== 'system') addon.retainFreedMemory();

const flatLayout = (l: AttentionDims['layout']): number[] | undefined =>
  l && [l.q, l.k, l.v, l.out].flatMap((h) => [h.offset, h.sB, h.sH, h.sT]);
const attnArgs = (d: AttentionDims): [number, number, number, number, number, number, boolean, number, number[] | undefined] =>
  [d.B, d.H, d.Hkv, d.T, d.S, d.D, d.causal, d.scale, flatLayout(d.layout)];

function adapt(a: Addon): Backend {
  const gemm = (x: Float32Array, y: Float32Array, c: Float32Array, g: MatmulArgs): void =>
    a.matmul(x, y, c, g.batch, g.m, g.n, g.k, g.transA, g.transB, g.aBatchStride, g.bBatchStride, g.accumulate, g.bf16 === true, g.bias ?? null);
  return {
    ...refBackend, // any kernel the addon does not provide runs in TypeScript (today: none)
    name: 'native',
    unary: (op, x, out) => a.unary(UNARY[op], x, out),
    unaryBackward: (op, x, y, gy, gx) => a.unaryBackward(UNARY[op], x, y, gy, gx),
    sumSquares: (x) => a.sumSquares(x),
    binary: (op, x, xs, y, ys, out, shape) => a.binary(BINARY[op], x, xs, y, ys, out, shape),
    where: (c, cs, x, xs, y, ys, out, shape) => a.where(c, cs, x, xs, y, ys, out, shape),
    reduce: (op, x, shape, out, outStrides) => a.reduce(REDUCE[op], x, shape, out, outStrides),
    copyStrided: (x, offset, strides, out, shape) => a.copyStrided(x, offset, strides, out, shape),
    matmul: gemm,
    normForward: (x, w, b, out, mean, rstd, rows, cols, eps, rms) => a.normForward(x, w, b, out, mean, rstd, rows, cols, eps, rms),
    normBackward: (x, w, mean, rstd, gy, gx, gw, gb, rows, cols, rms) => a.normBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, cols, rms),
    adamw: (w, g, m, v, p) => a.adamw(w, g, m, v, p.beta1, p.beta2, p.eps, p.decay, p.stepSize, p.sqrtBc2),
    // flash-style per (batch, head): GEMM micro-kernels on blocks of query rows, one score tile per thread
    attention: (q, k, v, out, lse, d) => a.attention(q, k, v, out, lse, ...attnArgs(d)),
    attentionBackward: (q, k, v, out, lse, g, gq, gk, gv, d) => a.attentionBackward(q, k, v, out, lse, g, gq, gk, gv, ...attnArgs(d)),
    softmax: (x, out, rows, cols, log) => a.softmax(x, out, rows, cols, log),
    softmaxBackward: (y, gy, gx, rows, cols, log) => a.softmaxBackward(y, gy, gx, rows, cols, log),
    gather: (table, ids, d, out) => a.gather(table, ids, d, out),
    scatterAdd: (src, ids, d, out) => a.scatterAdd(src, ids, d, out),
    // rows spread over the pool, float exponentials with float64 sums (native/src/rowloss_impl.h)
    rowLosses: (r) => a.rowLosses(r.z, r.teacher, r.labels, r.weights, r.rows, r.V,
      Float64Array.from(r.parts.flatMap((p) => [ROW_KIND[p.kind], p.weight, p.tau, p.scale])), r.grad, r.partLosses, r.refused),
  };
}

/** The native backend, or null when the addon is not built or cannot load (see `nativeInfo()`). */
export const nativeBackend: Backend | null = addon ? adapt(addon) : null;

export interface NativeInfo {
  available: boolean;
  /** why the addon is unavailable */
  reason?: string;
  /** kernel set in use (the best the CPU supports, or LMDISTILL_ISA's choice) */
  isa: NativeIsa;
  /** instruction sets this CPU can run, best first */
  supportedIsas: NativeIsa[];
  /** threads the pool spreads large kernels over (LMDISTILL_THREADS, default: all cores) */
  threads: number;
  /** glibc malloc keeps freed memory for reuse (no mmap per large block, no trimming); false with
   * LMDISTILL_MALLOC=system or a non-glibc C library */
  mallocRetain: boolean;
  /** µs an idle pool thread spins before it blocks (LMDISTILL_SPIN_US, default 300; 0 = block at once) */
  spinUs: number;
}

/** What the native backend is running with, or why it is unavailable. */
export function nativeInfo(): NativeInfo {
  if (!addon) return { available: false, reason: loaded.reason, isa: 'scalar', supportedIsas: [], threads: 1, mallocRetain: false, spinUs: 0 };
  const i = addon.info();
  return { available: true, isa: i.isa, supportedIsas: i.supportedIsas, threads: i.threads, mallocRetain: i.mallocRetain, spinUs: i.spinUs };
}

/**
 * Switches the native kernels to another instruction set the CPU supports (tests and benchmarks use
 * this to exercise the AVX2 and portable paths on an AVX-512 machine). Returns false if unsupported.
 */
export function setNativeIsa(isa: NativeIsa): boolean {
  return addon ? addon.setIsa(isa) : false;
}

/** Resizes the native thread pool (n <= 0: back to LMDISTILL_THREADS / all cores); returns the size. */
export function setNativeThreads(n: number): number {
  return addon ? addon.setThreads(n) : 1;
}

/**
 * The backend to run with, from env LMDISTILL_BACKEND: `native` (error if the addon is unavailable),
 * `ref` (pure TypeScript), or unset/`auto` (native when it loaded, else ref). Call it once at
 * startup and hand the result to `setBackend`.
 */
export function selectBackend(env: NodeJS.ProcessEnv = process.env): Backend {
  const want = (env.LMDISTILL_BACKEND ?? '').trim().toLowerCase();
  if (want === '' || want === 'auto') return nativeBackend ?? refBackend;
  if (want === 'ref') return refBackend;
  if (want === 'native') {
    if (nativeBackend) return nativeBackend;
    throw new UserError(`LMDISTILL_BACKEND=native but the native backend is unavailable: ${loaded.reason}`, 2);
  }
  throw new UserError(`LMDISTILL_BACKEND must be "native", "ref" or "auto", got "${env.LMDISTILL_BACKEND}"`, 2);
}
