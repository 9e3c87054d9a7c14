/**
 * Basic layers. Weight layouts follow the Hugging Face module each mirrors: `Linear` is nn.Linear
 * (weight [out, in]), `Conv1D` is GPT-2's transposed linear (weight [in, out]).
 */
import { gather, linear, matmul } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { layerNorm, rmsNorm } from './functional.js';
import { constParam, Module, normalParam } from './module.js';

/** y = x·Wᵀ + b, W [out, in] (torch.nn.Linear). */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(inFeatures: number, outFeatures: number, bias: boolean, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParam('weight', normalParam([outFeatures, inFeatures], std, rng));
    this.bias = bias ? this.registerParam('bias', constParam([outFeatures], 0)) : null;
  }
  forward(x: Tensor): Tensor {
    return this.bias ? linear(x, this.weight, this.bias, true) : matmul(x, this.weight, true); // [..., out]
  }
}

/** y = x·W + b, W [in, out] (transformers' GPT-2 Conv1D). */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(inFeatures: number, outFeatures: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParam('weight', normalParam([inFeatures, outFeatures], std, rng));
    this.bias = this.registerParam('bias', constParam([outFeatures], 0));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias); // [..., out]
  }
}

/** Token (or position) embedding table [num, dim]. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(num: number, dim: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParam('weight', normalParam([num, dim], std, rng));
  }
  /** ids [B·T] (row-major) → [B, T, dim] */
  forward(ids: Int32Array, shape: number[]): Tensor {
    return gather(this.weight, ids, shape);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(dim: number, readonly eps: number) {
    super();
    this.weight = this.registerParam('weight', constParam([dim], 1));
    this.bias = this.registerParam('bias', constParam([dim], 0));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(dim: number, readonly eps: number) {
    super();
    this.weight = this.registerParam('weight', constParam([dim], 1));
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
