/**
 * Reverse-mode autodiff: one vector-Jacobian rule per primitive, in a table typed over the primitive
 * set (a missing rule does not compile), and `backward()` which walks the recorded graph once in
 * reverse topological order. Rules run with recording off (no higher-order gradients).
 */
import type { UnaryOp } from '../backend/backend.js';
import * as op from './ops.js';
import type { Node, Primitive } from './primitives.js';
import { fmtShape, numel, reducedAxes, shapeEq, stridesOf, type Shape } from './shape.js';
import { currentArena, getBackend, noGrad, Tensor, uninit, type BufferArena } from './tensor.js';

type Grads = (Tensor | null)[];
export type VjpRule<P extends Primitive> = (g: Tensor, node: Node<P>, out: Tensor) => Grads;

/** Sums a broadcast gradient back down to `shape`. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const { axes } = reducedAxes(shape, g.shape);
  return op.reshape(op.sum(g, axes, true), [...shape]);
}

function unaryRule(name: UnaryOp): VjpRule<UnaryOp> {
  return (g, node, out) => {
    const gx = uninit(g.size);
    getBackend().unaryBackward(name, node.inputs[0].data, out.data, g.data, gx);
    return [new Tensor(gx, g.shape)];
  };
}

/** Zero tensor of `shape` with `g` written into the region starting at `starts` (slice's adjoint). */
function pad(g: Tensor, shape: number[], starts: number[]): Tensor {
  const out = new Float32Array(numel(shape));
  const st = stridesOf(shape);
  const gst = stridesOf(g.shape);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const inner = g.shape[rank - 1] ?? 1;
  const rows = g.size / Math.max(1, inner);
  for (let r = 0; r < rows; r++) {
    let o = 0, s = 0;
    for (let d = 0; d < rank - 1; d++) { o += (idx[d] + starts[d]) * st[d]; s += idx[d] * gst[d]; }
    if (rank > 0) o += starts[rank - 1];
    out.set(g.data.subarray(s, s + inner), o);
    for (let d = rank - 2; d >= 0; d--) { if (++idx[d] < g.shape[d]) break; idx[d] = 0; }
  }
  return new Tensor(out, shape);
}

/** Gradient of max: the upstream gradient split evenly between the positions that attain the max. */
const maxRule: VjpRule<'max'> = (g, node, out) => {
  const x = node.inputs[0];
  const keep = x.shape.map((d, i) => (node.params.axes.includes(i) ? 1 : d));
  const m = op.reshape(out, keep);
  const mask = op.eq(x, m);
  const count = op.sum(mask, node.params.axes, true);
  return [op.mul(mask, op.div(op.reshape(g, keep), count))];
};

// C = A·B: dA = G·Bᵀ, dB = Aᵀ·G.  C = A·Bᵀ (transB, B stored [n, k]): dA = G·B, dB = Gᵀ·A.
// Both gradient GEMMs run in the forward's precision (bf16 operands under autocast, as torch's
// autocast backward does for mm), whatever scope backward() itself runs in.
/** Gradients of a [..., k] · 2-D B product (one GEMM each over all leading rows). */
function matmul2dGrads(g: Tensor, a: Tensor, b: Tensor, tb: boolean, bf16: boolean): Grads {
  const k = a.shape[a.rank - 1];
  const n = g.shape[g.rank - 1];
  const rows = a.size / k;
  const ga = a.requiresGrad ? new Tensor(op.gemm(g.data, b.data, 1, rows, k, n, false, !tb, 0, 0, bf16), a.shape) : null;
  const gb = !b.requiresGrad ? null : tb
    ? new Tensor(op.gemm(g.data, a.data, 1, n, k, rows, true, false, 0, 0, bf16), b.shape)
    : new Tensor(op.gemm(a.data, g.data, 1, k, n, rows, true, false, 0, 0, bf16), b.shape);
  return [ga, gb];
}

const matmulRule: VjpRule<'matmul'> = (g, node) => {
  const [a, b] = node.inputs;
  const { transB: tb, bf16 } = node.params;
  if (b.rank === 2) return matmul2dGrads(g, a, b, tb, bf16);
  const k = a.shape[a.rank - 1];
  const n = g.shape[g.rank - 1];
  const m = a.shape[a.rank - 2];
  const batchShape = g.shape.slice(0, -2);
  const batch = numel(batchShape);
  const bShape = tb ? [...batchShape, n, k] : [...batchShape, k, n];
  const ea = op.expandRaw(a, [...batchShape, m, k]);
  const eb = op.expandRaw(b, bShape);
  const ga = a.requiresGrad ? sumTo(new Tensor(op.gemm(g.data, eb.data, batch, m, k, n, false, !tb, m * n, k * n, bf16), [...batchShape, m, k]), a.shape) : null;
  const gb = !b.requiresGrad ? null : tb
    ? sumTo(new Tensor(op.gemm(g.data, ea.data, batch, n, k, m, true, false, m * n, m * k, bf16), bShape), b.shape)
    : sumTo(new Tensor(op.gemm(ea.data, g.data, batch, k, n, m, true, false, m * k, m * n, bf16), bShape), b.shape);
  return [ga, gb];
};

const softmaxRule = (log: boolean): VjpRule<'softmax' | 'logSoftmax'> => (g, _node, out) => {
  const cols = out.shape[out.rank - 1];
  const gx = uninit(g.size);
  getBackend().softmaxBackward(out.data, g.data, gx, g.size / cols, cols, log);
  return [new Tensor(gx, g.shape)];
};

const vjp = {
  neg: unaryRule('neg'), exp: unaryRule('exp'), log: unaryRule('log'), sqrt: unaryRule('sqrt'),
  tanh: unaryRule('tanh'), sigmoid: unaryRule('sigmoid'), relu: unaryRule('relu'), gelu: unaryRule('gelu'),
  silu: unaryRule('silu'), abs: unaryRule('abs'),
  pow: (g, node) => {
    const e = node.params.exponent;
    return [op.mul(g, op.mul(op.pow(node.inputs[0], e - 1), e))];
  },
  add: (g, { inputs: [a, b] }) => [sumTo(g, a.shape), sumTo(g, b.shape)],
  sub: (g, { inputs: [a, b] }) => [sumTo(g, a.shape), sumTo(op.neg(g), b.shape)],
  mul: (g, { inputs: [a, b] }) => [
    a.requiresGrad ? sumTo(op.mul(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(op.mul(g, a), b.shape) : null,
  ],
  div: (g, { inputs: [a, b] }, out) => [
    a.requiresGrad ? sumTo(op.div(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(op.neg(op.div(op.mul(g, out), b)), b.shape) : null,
  ],
  maximum: (g, { inputs: [a, b] }) => {
    const pick = op.lt(a, b); // 1 where b wins (ties go to a, as in the forward kernel)
    return [sumTo(op.where(pick, 0, g), a.shape), sumTo(op.where(pick, g, 0), b.shape)];
  },
  eq: () => [null, null],
  lt: () => [null, null],
  gt: () => [null, null],
  where: (g, { inputs: [c, a, b] }) => [null, sumTo(op.where(c, g, 0), a.shape), sumTo(op.where(c, 0, g), b.shape)],
  sum: (g, node) => {
    const x = node.inputs[0];
    const keep = x.shape.map((d, i) => (node.params.axes.includes(i) ? 1 : d));
    return [op.expandRaw(op.reshape(g, keep), x.shape)];
  },
  max: maxRule,
  matmul: matmulRule,
  linear: (g, node) => {
    const [x, w, b] = node.inputs;
    return [...matmul2dGrads(g, x, w, node.params.transB, node.params.bf16), b.requiresGrad ? sumTo(g, b.shape) : null];
  },
  reshape: (g, node) => [op.reshape(g, node.inputs[0].shape)],
  permute: (g, node) => {
    const inv = new Array<number>(node.params.dims.length);
    node.params.dims.forEach((d, i) => (inv[d] = i));
    return [op.permute(g, inv)];
  },
  slice: (g, node) => [pad(g, node.inputs[0].shape, node.params.starts)],
  concat: (g, node) => {
    const ax = node.params.axis;
    let at = 0;
    return node.inputs.map((t) => {
      const piece = op.narrow(g, ax, at, at + t.shape[ax]);
      at += t.shape[ax];
      return piece;
    });
  },
  gather: (g, node) => {
    const [rows, d] = node.inputs[0].shape;
    return [op.scatterAdd(op.reshape(g, [-1, d]), node.params.ids, rows)];
  },
  scatterAdd: (g, node) => [op.reshape(op.gather(g, node.params.ids), node.inputs[0].shape)],
  softmax: softmaxRule(false),
  logSoftmax: softmaxRule(true),
  norm: (g, node) => {
    const [x, w, b] = node.inputs;
    const cols = x.shape[x.rank - 1];
    const gx = uninit(x.size), gw = new Float32Array(cols), gb = b ? new Float32Array(cols) : null;
    const { mean, rstd } = node.params.saved;
    getBackend().normBackward(x.data, w.data, mean, rstd, g.data, gx, gw, gb, x.size / cols, cols, node.params.rms);
    const grads: Grads = [new Tensor(gx, x.shape), new Tensor(gw, w.shape)];
    if (b && gb) grads.push(new Tensor(gb, b.shape));
    return grads;
  },
  fusedLinearLoss: (g, node) => {
    const [h, W] = node.inputs;
    const scale = g.data[0];
    // the saved gradients are this node's alone and the graph is consumed once: scale them in place
    const scaled = (d: Float32Array | null, shape: number[]): Tensor | null => {
      if (!d) return null;
      if (scale !== 1) for (let i = 0; i < d.length; i++) d[i] *= scale;
      return new Tensor(d, shape);
    };
    return [scaled(node.params.saved.gh, h.shape), scaled(node.params.saved.gW, W.shape)];
  },
  attention: (g, node, out) => {
    const [q, k, v] = node.inputs;
    const [B, H, T, D] = q.shape;
    const [, Hkv, S] = k.shape;
    const gq = uninit(q.size), gk = uninit(k.size), gv = uninit(v.size);
    getBackend().attentionBackward(q.data, k.data, v.data, out.data, node.params.saved.lse, g.data, gq, gk, gv,
      { B, H, Hkv, T, S, D, causal: node.params.causal, scale: node.params.scale });
    return [new Tensor(gq, q.shape), new Tensor(gk, k.shape), new Tensor(gv, v.shape)];
  },
  attentionPacked: (g, node, out) => {
    const qkv = node.inputs[0];
    const { H, Hkv, causal, scale, saved } = node.params;
    const d = op.packedAttentionDims(qkv.shape, H, Hkv, causal, scale);
    const gqkv = uninit(qkv.size); // the q, k and v regions together cover it; the kernel writes all three
    getBackend().attentionBackward(qkv.data, qkv.data, qkv.data, out.data, saved.lse, g.data, gqkv, gqkv, gqkv, d);
    return [new Tensor(gqkv, qkv.shape)];
  },
} satisfies { [P in Primitive]: VjpRule<P> };

function applyVjp<P extends Primitive>(node: Node<P>, g: Tensor, out: Tensor): Grads {
  // vjp[P] is VjpRule<P> by the `satisfies` above; TypeScript cannot correlate the union itself.
  const rule = vjp[node.prim] as unknown as VjpRule<P>;
  return rule(g, node, out);
}

/** Tensors reachable from `root` through recorded nodes, in topological order (inputs first). */
function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].node?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order;
}

/**
 * Back-propagates from `root` (a scalar unless `gradOutput` is given) and accumulates into `.grad` of
 * every leaf that requires grad. The graph is released as it is consumed (like PyTorch's default).
 */
export function backward(root: Tensor, gradOutput?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward() on a tensor that does not require grad');
  if (!gradOutput && root.size !== 1) throw new Error(`backward() needs gradOutput for non-scalar ${fmtShape(root.shape)}`);
  const order = topoSort(root);
  const grads = new Map<Tensor, Tensor>();
  const live = new GradBuffers(currentArena());
  live.hold(gradOutput ?? new Tensor(Float32Array.of(1), root.shape), grads, root);
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      const node = t.node;
      if (!node) {
        if (!t.grad && live.adopt(g)) t.grad = new Tensor(g.data, t.shape);
        else accumulateLeaf(t, g);
        live.drop(g);
        continue;
      }
      const gi = applyVjp(node, g, t);
      node.inputs.forEach((inp, j) => {
        const gj = gi[j];
        if (!gj || !inp.requiresGrad) return;
        if (!shapeEq(gj.shape, inp.shape)) {
          throw new Error(`internal: ${node.prim} gradient ${fmtShape(gj.shape)} for input ${fmtShape(inp.shape)}`);
        }
        const prev = grads.get(inp);
        if (!prev) return live.hold(gj, grads, inp);
        const sum = op.add(prev, gj);
        live.hold(sum, grads, inp);
        live.drop(prev);
        live.dropIfUnheld(gj);
      });
      live.drop(g);
      t.node = null; // release the graph behind us
    }
  });
}

/**
 * Which gradient buffers backward() still holds, so that those it made itself go back to the step's
 * buffer arena (if any) the moment the last gradient on them is consumed. Keyed by ArrayBuffer: a
 * gradient may be a view of another (reshape, broadcast sums) or feed two inputs (add). Buffers lent
 * before backward began (forward activations, a caller's gradOutput) are never returned here.
 */
class GradBuffers {
  private refs = new Map<ArrayBufferLike, number>();
  private readonly mark: number;
  constructor(private readonly arena: BufferArena | null) {
    this.mark = arena ? arena.mark() : 0;
  }
  hold(g: Tensor, grads: Map<Tensor, Tensor>, t: Tensor): void {
    grads.set(t, g);
    if (this.arena) this.refs.set(g.data.buffer, (this.refs.get(g.data.buffer) ?? 0) + 1);
  }
  drop(g: Tensor): void {
    if (!this.arena) return;
    const b = g.data.buffer;
    const n = (this.refs.get(b) ?? 0) - 1;
    if (n > 0) return void this.refs.set(b, n);
    this.refs.delete(b);
    this.releaseIfOurs(b);
  }
  /**
   * Whether leaf gradient g may become the leaf's .grad as it is (no copy): inside an arena, when
   * backward made its buffer, nothing else holds it and g covers it exactly. It then stays out (the
   * following drop() does not return it) until the arena's run ends.
   */
  adopt(g: Tensor): boolean {
    const b = g.data.buffer;
    if (!this.arena || this.refs.get(b) !== 1 || g.data.byteOffset !== 0 || g.data.byteLength !== b.byteLength) return false;
    if (!this.arena.lentSince(this.mark, b)) return false;
    this.refs.set(b, 2); // the leaf's reference: drop() leaves one
    return true;
  }
  /** a gradient that was combined into a sum and is not otherwise held */
  dropIfUnheld(g: Tensor): void {
    if (this.arena && !this.refs.has(g.data.buffer)) this.releaseIfOurs(g.data.buffer);
  }
  /** returns b to the arena if backward made it (forward activations and a caller's buffers stay) */
  private releaseIfOurs(b: ArrayBufferLike): void {
    if (this.arena?.lentSince(this.mark, b)) this.arena.release(b);
  }
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!t.grad) {
    // own the buffer: g may alias other data (inside a step arena the copy is the arena's too)
    const own = uninit(g.size);
    own.set(g.data);
    t.grad = new Tensor(own, t.shape);
    return;
  }
  const a = t.grad.data, strides = stridesOf(t.shape);
  getBackend().binary('add', a, strides, g.data, strides, a, t.shape); // in place: elementwise
}
