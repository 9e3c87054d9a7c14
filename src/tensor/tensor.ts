/**
 * Tensor: a float32, row-major, contiguous n-d array with optional autodiff bookkeeping. Memory is
 * managed by the JS garbage collector: a graph lives only as long as the tensors that reference it, so
 * user code never calls dispose().
 */
import type { Backend } from '../backend/backend.js';
import { refBackend } from '../backend/ref.js';
import type { AnyNode, Node, Primitive, PrimParams } from './primitives.js';
import { fmtShape, numel, type Shape } from './shape.js';

let backend: Backend = refBackend;
/** The kernel backend in use. */
export function getBackend(): Backend {
  return backend;
}
/** Switches the kernel backend (e.g. to the native addon); returns the previous one. */
export function setBackend(b: Backend): Backend {
  const prev = backend;
  backend = b;
  return prev;
}

let gradEnabled = true;
/** Runs `fn` without recording a graph (inference, teacher forward passes, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}
export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Tensor {
  readonly shape: number[];
  /** row-major contiguous values; length === numel(shape) */
  data: Float32Array;
  /** leaf tensors with requiresGrad accumulate `.grad` in backward() */
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** the primitive application that produced this tensor (null for leaves / no-grad results) */
  node: AnyNode | null = null;
  /** optional name (parameters carry their Hugging Face tensor name) */
  name?: string;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    if (data.length !== numel(shape)) {
      throw new Error(`tensor data has ${data.length} elements but shape ${fmtShape(shape)} needs ${numel(shape)}`);
    }
    this.data = data;
    this.shape = [...shape];
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }
  get rank(): number {
    return this.shape.length;
  }
  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`item() on a tensor of shape ${fmtShape(this.shape)}`);
    return this.data[0];
  }
  /** A graph-free tensor sharing this tensor's data. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }
  /** Nested arrays (for tests and JSON output). */
  toArray(): unknown {
    const rec = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return this.data[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => rec(dim + 1, off + i * stride));
    };
    return rec(0, 0);
  }
  toString(): string {
    return `Tensor(${fmtShape(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** Attaches a graph node to `out` when gradients are being recorded and any input needs them. */
export function record<P extends Primitive>(out: Tensor, prim: P, inputs: Tensor[], params: PrimParams[P]): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    const node: Node<P> = { prim, inputs, params };
    out.node = node as unknown as AnyNode; // Node<P> is one member of the AnyNode union
  }
  return out;
}

// ---- creation ----

/** Below this many elements a plain (zeroed, possibly on-heap) typed array is cheaper. */
const UNINIT_MIN = 1024;
/**
 * A Float32Array of n elements whose contents are NOT initialised, for kernel outputs that the kernel
 * overwrites completely. `new Float32Array(n)` zero-fills (calloc), which for the large activations of a
 * training step is a full extra pass over memory; Node's unsafe buffers skip it. Never read before
 * writing.
 */
export function uninit(n: number): Float32Array {
  if (n < UNINIT_MIN) return new Float32Array(n);
  return new Float32Array(Buffer.allocUnsafeSlow(n * 4).buffer, 0, n);
}

export function tensor(data: ArrayLike<number>, shape?: Shape, requiresGrad = false): Tensor {
  const d = Float32Array.from(data);
  return new Tensor(d, shape ?? [d.length], requiresGrad);
}
export function scalar(v: number): Tensor {
  return new Tensor(Float32Array.of(v), []);
}
export function zeros(shape: Shape, requiresGrad = false): Tensor {
  return new Tensor(new Float32Array(numel(shape)), shape, requiresGrad);
}
export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}
export function full(shape: Shape, v: number): Tensor {
  return new Tensor(new Float32Array(numel(shape)).fill(v), shape);
}
/** A new leaf with requiresGrad = true (a trainable parameter). */
export function parameter(data: Float32Array, shape: Shape, name?: string): Tensor {
  const t = new Tensor(data, shape, true);
  if (name) t.name = name;
  return t;
}
