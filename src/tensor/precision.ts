/**
 * Mixed precision scope, like torch.autocast: inside `autocast('bf16', fn)` every tensor matmul (and
 * the two GEMMs of its gradient, whenever backward() later runs) multiplies bfloat16-rounded operands
 * with fp32 accumulation. Everything else stays fp32: matmul outputs and all activations, softmax,
 * norms, losses, attention (its internal GEMMs included), the optimizer and the master weights.
 * torch's CPU autocast differs in one respect: its matmul outputs are bf16 tensors, so the elementwise
 * ops fed by them (GELU, softmax of bf16 scores/logits unless cast back) run in bf16 too; rounding only
 * the operands keeps our bf16 run closer to fp32 at the same GEMM numerics.
 *
 * The flag is read when a matmul runs forward and stored in its graph node, so a backward() outside
 * the scope still uses the forward's precision. Like noGrad, the scope is synchronous: an async
 * function's continuations run after the scope has closed.
 *
 * On CPUs without AVX512-BF16 (and always on the reference backend) bf16 is emulated: same speed as
 * fp32, numerics of bf16 (see MatmulArgs.bf16).
 */
import { UserError } from '../errors.js';

export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

let current: Precision = 'fp32';

/** Runs `fn` with matmuls in `precision` ('fp32' inside a bf16 scope turns it off again). */
export function autocast<T>(precision: Precision, fn: () => T): T {
  if (!PRECISIONS.includes(precision)) {
    throw new UserError(`precision must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`, 2);
  }
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** The matmul precision of the current scope ('fp32' outside any autocast). */
export function getPrecision(): Precision {
  return current;
}

/** True when matmuls started now should round their operands to bf16. */
export function matmulBf16(): boolean {
  return current === 'bf16';
}
