/**
 * Module: a tree of named parameters. Children and parameters are registered explicitly under the
 * names Hugging Face uses, so `namedParameters()` yields HF tensor names directly
 * (e.g. `transformer.h.0.attn.c_attn.weight`) and load/save needs no rename table.
 */
import { parameter, Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';

export class Module {
  private readonly params = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  /** true during training (dropout on); see train()/eval() */
  training = true;

  protected registerParam(name: string, t: Tensor): Tensor {
    this.params.set(name, t);
    return t;
  }
  protected registerChild<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }
  /** Registers a list of children named "0", "1", ... under `name` (HF's ModuleList). */
  protected registerList<M extends Module>(name: string, ms: M[]): M[] {
    const list = new Module();
    ms.forEach((m, i) => list.registerChild(String(i), m));
    this.children.set(name, list);
    return ms;
  }

  /** All parameters with their dotted HF names, in registration order (shared tensors once). */
  namedParameters(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const seen = new Set<Tensor>();
    const walk = (m: Module, p: string): void => {
      for (const [n, t] of m.params) {
        if (!seen.has(t)) { seen.add(t); out.set(p + n, t); }
      }
      for (const [n, c] of m.children) walk(c, `${p}${n}.`);
    };
    walk(this, prefix);
    return out;
  }
  parameters(): Tensor[] {
    return [...this.namedParameters().values()];
  }
  numParameters(): number {
    return this.parameters().reduce((a, t) => a + t.size, 0);
  }
  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}

/** A normal(0, std) initialised parameter. */
export function normalParam(shape: number[], std: number, rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * std;
  return parameter(d, shape);
}
export function constParam(shape: number[], v: number): Tensor {
  return parameter(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v), shape);
}
