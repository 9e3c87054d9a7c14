/**
 * Reference compositions of the fused primitives from the elementwise/reduction primitives. The fused
 * kernels (and later the native ones) are tested against these, tinygrad-style.
 */
import { exp, log, max, sub, sum, div } from './ops.js';
import type { Tensor } from './tensor.js';

/** softmax(x) = exp(x - max) / Σ exp(x - max), over the last axis. */
export function softmaxReference(x: Tensor): Tensor {
  const e = exp(sub(x, max(x, -1, true)));
  return div(e, sum(e, -1, true));
}

/** log_softmax(x) = (x - max) - log Σ exp(x - max), over the last axis. */
export function logSoftmaxReference(x: Tensor): Tensor {
  const z = sub(x, max(x, -1, true));
  return sub(z, log(sum(exp(z), -1, true)));
}
