/**
 * GPT-2 (transformers' GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, GELU(tanh) MLP,
 * Conv1D weights [in, out], lm_head tied to wte. Parameter names are HF's.
 */
import { attention, attentionQKV, dropout, gelu } from '../nn/index.js';
import { Conv1D, Embedding, LayerNorm } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { add, narrow } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { appendCache, mergeHeads, splitHeads } from './attention-util.js';
import { CausalLM, checkIds, type ForwardOptions, type HiddenOutput, type KVCache } from './base.js';
import type { GPT2Config } from './config.js';

class GPT2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  constructor(private readonly cfg: GPT2Config, rng: Rng) {
    super();
    const C = cfg.n_embd;
    this.c_attn = this.registerChild('c_attn', new Conv1D(C, 3 * C, rng, cfg.initializer_range));
    // GPT-2 scales residual projections by 1/√(2·n_layer) at init
    this.c_proj = this.registerChild('c_proj', new Conv1D(C, C, rng, cfg.initializer_range / Math.sqrt(2 * cfg.n_layer)));
  }
  forward(x: Tensor, layer: number, cache: KVCache | undefined, rng: Rng): Tensor {
    const H = this.cfg.n_head;
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    // without a cache the kernel reads heads straight out of qkv and writes them merged (no copies)
    const y = cache ? this.cachedAttention(qkv, layer, cache) : attentionQKV(qkv, H, H, true); // [B, T, C]
    return this.training ? dropout(this.c_proj.forward(y), this.cfg.resid_pdrop, rng) : this.c_proj.forward(y);
  }
  private cachedAttention(qkv: Tensor, layer: number, cache: KVCache): Tensor {
    const C = this.cfg.n_embd, H = this.cfg.n_head;
    const q = splitHeads(narrow(qkv, 2, 0, C), H); // [B, H, T, D]
    const kNew = splitHeads(narrow(qkv, 2, C, 2 * C), H);
    const vNew = splitHeads(narrow(qkv, 2, 2 * C, 3 * C), H);
    const { k, v } = appendCache(cache, layer, kNew, vNew); // [B, H, S, D]
    return mergeHeads(attention(q, k, v, true)); // [B, T, C]
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  constructor(private readonly cfg: GPT2Config, rng: Rng) {
    super();
    const C = cfg.n_embd, inner = cfg.n_inner ?? 4 * C;
    this.c_fc = this.registerChild('c_fc', new Conv1D(C, inner, rng, cfg.initializer_range));
    this.c_proj = this.registerChild('c_proj', new Conv1D(inner, C, rng, cfg.initializer_range / Math.sqrt(2 * cfg.n_layer)));
  }
  forward(x: Tensor, rng: Rng): Tensor {
    const y = this.c_proj.forward(gelu(this.c_fc.forward(x))); // [B, T, C]
    return this.training ? dropout(y, this.cfg.resid_pdrop, rng) : y;
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(cfg: GPT2Config, rng: Rng) {
    super();
    this.ln_1 = this.registerChild('ln_1', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
    this.attn = this.registerChild('attn', new GPT2Attention(cfg, rng));
    this.ln_2 = this.registerChild('ln_2', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
    this.mlp = this.registerChild('mlp', new GPT2MLP(cfg, rng));
  }
  forward(x: Tensor, layer: number, cache: KVCache | undefined, rng: Rng): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x), layer, cache, rng)); // [B, T, C]
    return add(h, this.mlp.forward(this.ln_2.forward(h), rng));
  }
}

class GPT2Body extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: GPT2Block[];
  readonly ln_f: LayerNorm;
  constructor(cfg: GPT2Config, rng: Rng) {
    super();
    this.wte = this.registerChild('wte', new Embedding(cfg.vocab_size, cfg.n_embd, rng, cfg.initializer_range));
    this.wpe = this.registerChild('wpe', new Embedding(cfg.n_positions, cfg.n_embd, rng, cfg.initializer_range));
    this.h = this.registerList('h', Array.from({ length: cfg.n_layer }, () => new GPT2Block(cfg, rng)));
    this.ln_f = this.registerChild('ln_f', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  }
}

export class GPT2LMHeadModel extends CausalLM {
  readonly transformer: GPT2Body;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLayers: number;
  constructor(readonly config: GPT2Config, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.transformer = this.registerChild('transformer', new GPT2Body(config, rng));
    this.vocabSize = config.vocab_size;
    this.maxPositions = config.n_positions;
    this.numLayers = config.n_layer;
  }

  forwardHidden(ids: Int32Array, batch: number, seqLen: number, opts: ForwardOptions = {}): HiddenOutput {
    const t = this.transformer;
    const offset = opts.cache?.length ?? 0;
    checkIds(ids, batch, seqLen, this.vocabSize, this.maxPositions, offset);
    const pos = Int32Array.from({ length: seqLen }, (_, i) => i + offset);
    let x = add(t.wte.forward(ids, [batch, seqLen]), t.wpe.forward(pos, [seqLen])); // [B, T, C]
    if (this.training) x = dropout(x, this.config.embd_pdrop, this.dropoutRng);
    const hidden: Tensor[] = [];
    t.h.forEach((block, i) => {
      if (opts.outputHiddenStates) hidden.push(x);
      x = block.forward(x, i, opts.cache, this.dropoutRng);
    });
    x = t.ln_f.forward(x); // [B, T, C]
    if (opts.outputHiddenStates) hidden.push(x);
    if (opts.cache) opts.cache.length += seqLen;
    return opts.outputHiddenStates ? { hidden: x, hiddenStates: hidden } : { hidden: x };
  }

  lmHeadWeight(): Tensor {
    return this.transformer.wte.weight; // tied: [V, C]
  }

  tiedAliases(): [string, string][] {
    return [['lm_head.weight', 'transformer.wte.weight']];
  }
}
