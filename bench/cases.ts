/**
 * The benchmark cases and our side of each: the case specs (one zod schema, shared verbatim with the
 * PyTorch peers as JSON), how many steps each side runs by default, and the functions that run our code
 * on a case. The runner (run.ts) executes these in a child process (ours.ts) so peak RSS is per case.
 */
import { z } from 'zod';
import type { MatmulArgs } from '../src/backend/backend.js';
import { parseWith } from '../src/config/zod.js';
import type { Batch } from '../src/data/loader.js';
import { createModel } from '../src/models/registry.js';
import { AdamW } from '../src/optim/adamw.js';
import { getBackend } from '../src/tensor/tensor.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { kdLoss, kdLossFused } from './kd-loss.js';

const count = z.int().min(1);
const gptShape = z
  .strictObject({ d: count, layers: count, heads: count })
  .refine((m) => m.d % m.heads === 0, { message: 'd must be a multiple of heads' });

/** A distillation training step: GPT-2 teacher (frozen) → GPT-2 student, full-vocab KD + CE, AdamW. */
export const kdSpecSchema = z.strictObject({
  name: z.string().min(1),
  kind: z.literal('kd'),
  vocab: z.int().min(2),
  seq: count,
  batch: count,
  student: gptShape,
  teacher: gptShape,
  /** weight of KL(p_teacher ‖ q_student); 1 − alpha goes to cross-entropy */
  alpha: z.number().min(0).max(1).default(0.5),
  tau: z.number().positive().default(1),
  lr: z.number().positive().default(1e-3),
  seed: z.int().min(0).default(0),
  /** our side: the library's fused chunked head + loss (default) or the plain full-logits composition */
  fused: z.boolean().default(true),
  /**
   * matmul precision of the step: bf16 = our autocast('bf16') (bf16 GEMM operands, fp32 accumulation)
   * vs torch.autocast('cpu', dtype=torch.bfloat16) on the peer; the loss is fp32 on both sides
   */
  precision: z.enum(['fp32', 'bf16']).default('fp32'),
});

/** One fp32 GEMM C[m, n] = A[m, k] · B[k, n], repeated. */
export const gemmSpecSchema = z.strictObject({
  name: z.string().min(1),
  kind: z.literal('gemm'),
  m: count,
  n: count,
  k: count,
  seed: z.int().min(0).default(0),
});

export const caseSpecSchema = z.discriminatedUnion('kind', [kdSpecSchema, gemmSpecSchema]);
export type KdSpec = z.output<typeof kdSpecSchema>;
export type GemmSpec = z.output<typeof gemmSpecSchema>;
export type CaseSpec = z.output<typeof caseSpecSchema>;

const KD_MODELS = {
  student: { d: 256, layers: 4, heads: 4 },
  teacher: { d: 384, layers: 6, heads: 6 },
  alpha: 0.5,
  tau: 1,
  lr: 1e-3,
  seed: 0,
  fused: true,
  precision: 'fp32',
} as const;
const gemm = (m: number, n: number, k: number): GemmSpec => ({ name: `gemm-${m}x${n}x${k}`, kind: 'gemm', m, n, k, seed: 0 });

/** The named cases of `npm run bench` / `lmdistill bench` (a name may stand for several specs). */
export const BUILTIN_CASES: Record<string, CaseSpec[]> = {
  'kd-small': [{ name: 'kd-small', kind: 'kd', vocab: 512, seq: 128, batch: 8, ...KD_MODELS }],
  // logits [4, 256, 32768] fp32 = 128 MiB per tensor: the loss, not the model, dominates memory
  'kd-wide': [{ name: 'kd-wide', kind: 'kd', vocab: 32768, seq: 256, batch: 4, ...KD_MODELS }],
  gemm: [gemm(1024, 1024, 1024), gemm(4096, 512, 512)],
  // bf16 mixed precision, with the fp32 kd-small in the same run for reference (this machine has no
  // AVX512-BF16 or AMX, so neither side has bf16 hardware to use: ours is an emulation at fp32 speed)
  'kd-small-bf16': [
    { name: 'kd-small', kind: 'kd', vocab: 512, seq: 128, batch: 8, ...KD_MODELS },
    { name: 'kd-small-bf16', kind: 'kd', vocab: 512, seq: 128, batch: 8, ...KD_MODELS, precision: 'bf16' },
  ],
};

/** Validates a user-supplied case (e.g. `--case '{...}'`). */
export function parseCaseSpec(value: unknown, source: string): CaseSpec {
  return parseWith(caseSpecSchema, value, source);
}

/** Who runs a case: our reference (pure TS) backend, our native backend, or PyTorch. */
export type Side = 'ref' | 'native' | 'torch';
export interface StepPlan {
  /** untimed steps first (allocation, JIT, BLAS thread start-up) */
  warmup: number;
  /** timed steps */
  steps: number;
}

/**
 * Default steps per side. The pure-TS backend needs tens of seconds per kd-small step, so it gets few;
 * PyTorch and the native backend take well under a second and get enough for a stable median.
 */
export function defaultPlan(spec: CaseSpec, side: Side): StepPlan {
  const wide = spec.kind === 'kd' && spec.vocab * spec.seq * spec.batch >= 1 << 24;
  if (side === 'ref') return wide ? { warmup: 1, steps: 1 } : { warmup: 1, steps: 3 };
  // the native side and the peers time the same number of steps (a GEMM is ~20 ms: many steps, so
  // that a few seconds of a noisy neighbour do not decide the median)
  if (spec.kind === 'gemm') return { warmup: 5, steps: 100 };
  return wide ? { warmup: 2, steps: 10 } : { warmup: 3, steps: 20 };
}

/** Timing of the timed steps (ms) and the work-rate derived from it. */
export interface Metrics {
  /** median wall time of one timed step (robust on a shared machine); mean/min/max alongside */
  ms_per_step: number;
  ms_mean: number;
  ms_min: number;
  ms_max: number;
  /** process CPU time (all threads, user + system) per timed step: ≪ ms_per_step × threads means the
   * process was waiting (contended cores or memory stalls) */
  cpu_ms_per_step: number;
  /** minor page faults per timed step (fresh pages touched: each costs tens of µs in a VM) */
  minflt_per_step: number;
  tokens_per_s?: number;
  gflops?: number;
  loss_first?: number;
  loss_last?: number;
  steps: number;
  warmup: number;
}

/** Runs `step` warmup + timed times and summarises the timed ones. */
function timeSteps(plan: StepPlan, step: () => void): Omit<Metrics, 'steps' | 'warmup'> & StepPlan {
  for (let i = 0; i < plan.warmup; i++) step();
  const ms: number[] = [];
  const flt0 = process.resourceUsage().minorPageFault;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < plan.steps; i++) {
    const t0 = performance.now();
    step();
    ms.push(performance.now() - t0);
  }
  const faults = process.resourceUsage().minorPageFault - flt0;
  const cpu = process.cpuUsage(cpu0);
  const sorted = [...ms].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    ms_per_step: n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    ms_mean: ms.reduce((a, b) => a + b, 0) / n,
    ms_min: sorted[0],
    ms_max: sorted[n - 1],
    cpu_ms_per_step: (cpu.user + cpu.system) / 1e3 / n,
    minflt_per_step: faults / n,
    ...plan,
  };
}

function gpt2(spec: KdSpec, m: KdSpec['student'], seed: number) {
  return createModel({
    model_type: 'gpt2', vocab_size: spec.vocab, n_positions: spec.seq, n_embd: m.d, n_layer: m.layers, n_head: m.heads,
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  }, seed, `bench case ${spec.name}`);
}

/** Fresh random tokens [B, T + 1] → input [B·T] and next-token targets [B·T]. */
function randomBatch(rng: Rng, spec: KdSpec): Batch {
  const { batch: B, seq: T } = spec;
  const input = new Int32Array(B * T), target = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let prev = rng.int(spec.vocab);
    for (let t = 0; t < T; t++) {
      const next = rng.int(spec.vocab);
      input[b * T + t] = prev;
      target[b * T + t] = next;
      prev = next;
    }
  }
  return { input, target, batchSize: B, seqLen: T };
}

/**
 * Our KD training step through the library's Trainer (forward, backward, clip 1.0, AdamW), with the
 * same hyper-parameters as bench/peer_kd.py (torch AdamW defaults: β = (0.9, 0.999), wd 0.01).
 */
export function runKd(spec: KdSpec, plan: StepPlan): Metrics {
  const student = gpt2(spec, spec.student, spec.seed);
  const teacher = gpt2(spec, spec.teacher, spec.seed + 1).eval();
  const optimizer = new AdamW(student.namedParameters(), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
  const trainer = new Trainer({
    model: student,
    optimizer,
    schedule: { kind: 'constant', peakLr: spec.lr, warmupSteps: 0, totalSteps: plan.warmup + plan.steps, minLr: spec.lr },
    gradClip: 1,
    gradAccumSteps: 1,
    lossFn: spec.fused ? kdLossFused(teacher, spec) : kdLoss(teacher, spec),
    precision: spec.precision,
  });
  const rng = new Rng(spec.seed);
  const losses: number[] = [];
  const t = timeSteps(plan, () => {
    losses.push(trainer.stepOn([randomBatch(rng, spec)]).loss);
  });
  return { ...t, tokens_per_s: (spec.batch * spec.seq) / (t.ms_per_step / 1e3), loss_first: losses[0], loss_last: losses[losses.length - 1] };
}

/** One backend GEMM call per step on preallocated operands (torch.matmul(..., out=c) on the peer). */
export function runGemm(spec: GemmSpec, plan: StepPlan): Metrics {
  const { m, n, k } = spec;
  const rng = new Rng(spec.seed);
  const fill = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
  const a = fill(m * k), b = fill(k * n), c = new Float32Array(m * n);
  const args: MatmulArgs = { batch: 1, m, n, k, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, accumulate: false };
  const backend = getBackend();
  const t = timeSteps(plan, () => backend.matmul(a, b, c, args));
  return { ...t, gflops: (2 * m * n * k) / (t.ms_per_step / 1e3) / 1e9 };
}

/** Runs our side of any case on the current backend. */
export function runCase(spec: CaseSpec, plan: StepPlan): Metrics {
  return spec.kind === 'kd' ? runKd(spec, plan) : runGemm(spec, plan);
}
