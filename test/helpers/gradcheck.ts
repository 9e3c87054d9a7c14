/**
 * Finite-difference gradient checking. The scalar probed is L = Σ f(inputs) ⊙ r for a fixed random r,
 * evaluated in float64 from the float32 outputs; central differences with step `eps` are compared to
 * the analytic gradients from backward().
 */
import { backward, mul, sum, Tensor, tensor } from '../../src/tensor/index.js';
import { Rng } from '../../src/util/rng.js';

export function randn(shape: number[], rng: Rng, scale = 1, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * scale;
  return new Tensor(d, shape, requiresGrad);
}

export function uniform(shape: number[], rng: Rng, lo: number, hi: number, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng.nextFloat();
  return new Tensor(d, shape, requiresGrad);
}

export interface GradcheckResult {
  maxAbsErr: number;
  maxRelErr: number;
  worst: string;
}

/**
 * Checks d(Σ f(xs)·r)/dxs against central differences. Returns the worst error; `atol`/`rtol` are
 * applied per element as |fd − an| ≤ atol + rtol·|fd|.
 */
export function gradcheck(
  f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number; seed?: number } = {},
): GradcheckResult & { ok: boolean } {
  const eps = opts.eps ?? 1e-2, atol = opts.atol ?? 2e-3, rtol = opts.rtol ?? 2e-2;
  const rng = new Rng(opts.seed ?? 99);
  const out0 = f(...inputs);
  const r = Float64Array.from({ length: out0.size }, () => rng.normal());
  const probe = (): number => {
    const o = f(...inputs).data;
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * r[i];
    return s;
  };
  for (const x of inputs) x.grad = null;
  const loss = sum(mul(out0, tensor(Float32Array.from(r), out0.shape)));
  backward(loss);
  let maxAbsErr = 0, maxRelErr = 0, worst = '', ok = true;
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad) return;
    for (let i = 0; i < x.size; i++) {
      const orig = x.data[i];
      x.data[i] = orig + eps;
      const lp = probe();
      x.data[i] = orig - eps;
      const lm = probe();
      x.data[i] = orig;
      const fd = (lp - lm) / (2 * eps);
      const an = x.grad ? x.grad.data[i] : 0;
      const err = Math.abs(fd - an);
      if (err > maxAbsErr) { maxAbsErr = err; worst = `input ${xi}[${i}]: fd ${fd} vs analytic ${an}`; }
      maxRelErr = Math.max(maxRelErr, err / Math.max(1e-6, Math.abs(fd)));
      if (err > atol + rtol * Math.abs(fd)) ok = false;
    }
  });
  return { maxAbsErr, maxRelErr, worst, ok };
}
