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
  if (activeArena) return activeArena.take(n);
  return new Float32Array(Buffer.allocUnsafeSlow(n * 4).buffer, 0, n);
}

/**
 * Recycles the kernel-output buffers of a training step. A step allocates the same few hundred activation
 * and gradient buffers every time; fresh ArrayBuffers cost malloc + page faults and, worse, V8 answers
 * the external-memory growth with a garbage collection every few dozen megabytes (several full and a
 * dozen minor GCs per kd-small step, partly on helper threads that compete with the kernel pool for the
 * cores). Inside `arena.run(fn)` every `uninit` buffer comes from the arena (the smallest free buffer that
 * holds it, at most twice its size, else a new one). Buffers come back when `fn` returns or throws, and
 * earlier where their last user is known: `backward()` returns gradient buffers as soon as it has
 * consumed them, and a nested `run(fn, keep)` (e.g. a frozen teacher's forward pass) returns everything
 * but the buffers of the tensors `keep` names. A buffer that comes back is DETACHED: every view handed
 * out on it gets length 0, so a tensor that wrongly outlives its scope fails loudly (a length error)
 * instead of reading recycled memory. Free buffers that a whole step did not use are dropped, so the
 * arena keeps about one step's worth of memory.
 */
export class BufferArena {
  /** free buffers, ascending byteLength */
  private free: ArrayBuffer[] = [];
  /** buffers handed out and not yet back → their place in the lending order */
  private out = new Map<ArrayBuffer, number>();
  private lent = 0;
  private depth = 0;
  private unused = new Set<ArrayBuffer>();
  /** buffers handed out / of those recycled / returned early (for tests and diagnostics) */
  readonly stats = { taken: 0, reused: 0, released: 0 };

  /** A view of n floats on a recycled or new buffer (contents undefined). */
  take(n: number): Float32Array {
    const bytes = n * 4;
    const i = this.firstFree(bytes);
    let buf: ArrayBuffer;
    if (i < this.free.length && this.free[i].byteLength <= 2 * bytes) {
      buf = this.free[i];
      this.free.splice(i, 1);
      this.unused.delete(buf);
      this.stats.reused++;
    } else {
      buf = Buffer.allocUnsafeSlow(bytes).buffer;
    }
    this.stats.taken++;
    this.out.set(buf, this.lent++);
    return new Float32Array(buf, 0, n);
  }

  /** Buffers currently handed out. */
  get outstanding(): number {
    return this.out.size;
  }
  /** Bytes held in free buffers. */
  get freeBytes(): number {
    return this.free.reduce((a, b) => a + b.byteLength, 0);
  }

  /** A position in the lending order: `lentSince(mark, buf)` tells whether buf was handed out after it. */
  mark(): number {
    return this.lent;
  }
  /** Whether `buf` is out and was handed out after `mark`. */
  lentSince(mark: number, buf: ArrayBufferLike): boolean {
    return (this.out.get(buf as ArrayBuffer) ?? -1) >= mark;
  }

  /** Takes back a buffer whose last user is gone (detaching its views); false if it is not out. */
  release(buf: ArrayBufferLike): boolean {
    if (!this.out.delete(buf as ArrayBuffer)) return false;
    this.stats.released++;
    this.putFree(buf as ArrayBuffer);
    return true;
  }

  /**
   * Runs fn with this arena serving `uninit`; afterwards every buffer handed out inside comes back,
   * except (in a nested run) those under the tensors or arrays that `keep(result)` lists, which stay out
   * until the enclosing run ends.
   */
  run<T>(fn: () => T, keep?: (result: T) => Iterable<Tensor | Float32Array | null | undefined>): T {
    const prev = activeArena;
    const mark = this.lent;
    if (this.depth === 0) this.unused = new Set(this.free);
    activeArena = this;
    this.depth++;
    const kept = new Set<ArrayBufferLike>();
    try {
      const r = fn();
      if (keep) for (const k of keep(r)) if (k) kept.add(k instanceof Tensor ? k.data.buffer : k.buffer);
      return r;
    } finally {
      this.depth--;
      activeArena = prev;
      // a nested run returns what it lent except the kept buffers; the outermost one returns everything
      for (const [b, at] of this.out) {
        if (this.depth > 0 && (at < mark || kept.has(b))) continue;
        this.out.delete(b);
        this.putFree(b);
      }
      if (this.depth === 0) {
        if (this.unused.size) this.free = this.free.filter((b) => !this.unused.has(b));
        this.unused.clear();
      }
    }
  }

  private firstFree(bytes: number): number {
    let lo = 0, hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.free[mid].byteLength < bytes) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private putFree(b: ArrayBuffer): void {
    const fresh = structuredClone(b, { transfer: [b] }); // detaches every view of b; same memory
    this.free.splice(this.firstFree(fresh.byteLength), 0, fresh);
  }
}
let activeArena: BufferArena | null = null;
/**
 * Runs fn; inside a buffer arena (a trainer step), everything fn allocates except the buffers under
 * `keep(result)` goes back to the arena when fn returns — for passes whose intermediates die with them,
 * like a frozen teacher's forward pass. Outside an arena it is just fn().
 */
export function scoped<T>(fn: () => T, keep: (result: T) => Iterable<Tensor | Float32Array | null | undefined>): T {
  return activeArena ? activeArena.run(fn, keep) : fn();
}
/** The arena serving `uninit` right now, if any. */
export function currentArena(): BufferArena | null {
  return activeArena;
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
