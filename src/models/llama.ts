/**
 * LLaMA family (transformers' LlamaForCausalLM; Qwen2 = biases on q/k/v): RMSNorm pre-norm blocks,
 * rotary positions (rotate_half layout), grouped-query attention, SwiGLU MLP, nn.Linear weights
 * [out, in], optional tied lm_head. Parameter names are HF's.
 */
import { attention, rope, ropeTables } from '../nn/functional.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { add, mul, silu } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { appendCache, mergeHeads, splitHeads } from './attention-util.js';
import { CausalLM, checkIds, type ForwardOptions, type HiddenOutput, type KVCache } from './base.js';
import type { LlamaConfig } from './config.js';

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  constructor(private readonly cfg: LlamaConfig, rng: Rng) {
    super();
    const C = cfg.hidden_size, D = cfg.head_dim, std = cfg.initializer_range;
    this.q_proj = this.registerChild('q_proj', new Linear(C, cfg.num_attention_heads * D, cfg.qkvBias, rng, std));
    this.k_proj = this.registerChild('k_proj', new Linear(C, cfg.num_key_value_heads * D, cfg.qkvBias, rng, std));
    this.v_proj = this.registerChild('v_proj', new Linear(C, cfg.num_key_value_heads * D, cfg.qkvBias, rng, std));
    this.o_proj = this.registerChild('o_proj', new Linear(cfg.num_attention_heads * D, C, cfg.oBias, rng, std));
  }
  forward(x: Tensor, layer: number, cos: Tensor, sin: Tensor, cache: KVCache | undefined): Tensor {
    const q = rope(splitHeads(this.q_proj.forward(x), this.cfg.num_attention_heads), cos, sin); // [B, H, T, D]
    const kNew = rope(splitHeads(this.k_proj.forward(x), this.cfg.num_key_value_heads), cos, sin); // [B, Hkv, T, D]
    const vNew = splitHeads(this.v_proj.forward(x), this.cfg.num_key_value_heads);
    const { k, v } = appendCache(cache, layer, kNew, vNew); // [B, Hkv, S, D]
    return this.o_proj.forward(mergeHeads(attention(q, k, v, true))); // [B, T, C]
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    const C = cfg.hidden_size, I = cfg.intermediate_size, std = cfg.initializer_range;
    this.gate_proj = this.registerChild('gate_proj', new Linear(C, I, cfg.mlp_bias, rng, std));
    this.up_proj = this.registerChild('up_proj', new Linear(C, I, cfg.mlp_bias, rng, std));
    this.down_proj = this.registerChild('down_proj', new Linear(I, C, cfg.mlp_bias, rng, std));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(mul(silu(this.gate_proj.forward(x)), this.up_proj.forward(x))); // SwiGLU [B, T, C]
  }
}

class LlamaDecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: LlamaAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: LlamaMLP;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    this.self_attn = this.registerChild('self_attn', new LlamaAttention(cfg, rng));
    this.mlp = this.registerChild('mlp', new LlamaMLP(cfg, rng));
    this.input_layernorm = this.registerChild('input_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
    this.post_attention_layernorm = this.registerChild('post_attention_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  }
  forward(x: Tensor, layer: number, cos: Tensor, sin: Tensor, cache: KVCache | undefined): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), layer, cos, sin, cache));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

class LlamaBody extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: LlamaDecoderLayer[];
  readonly norm: RMSNorm;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    this.embed_tokens = this.registerChild('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size, rng, cfg.initializer_range));
    this.layers = this.registerList('layers', Array.from({ length: cfg.num_hidden_layers }, () => new LlamaDecoderLayer(cfg, rng)));
    this.norm = this.registerChild('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  }
}

export class LlamaForCausalLM extends CausalLM {
  readonly model: LlamaBody;
  readonly lmHead: Linear | null;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLayers: number;
  constructor(readonly config: LlamaConfig, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.model = this.registerChild('model', new LlamaBody(config, rng));
    this.lmHead = config.tie_word_embeddings
      ? null
      : this.registerChild('lm_head', new Linear(config.hidden_size, config.vocab_size, false, rng, config.initializer_range));
    this.vocabSize = config.vocab_size;
    this.maxPositions = config.max_position_embeddings;
    this.numLayers = config.num_hidden_layers;
  }

  forwardHidden(ids: Int32Array, batch: number, seqLen: number, opts: ForwardOptions = {}): HiddenOutput {
    const offset = opts.cache?.length ?? 0;
    checkIds(ids, batch, seqLen, this.vocabSize, this.maxPositions, offset);
    const { cos, sin } = ropeTables(seqLen, this.config.head_dim, this.config.rope_theta, offset); // [T, D]
    let x = this.model.embed_tokens.forward(ids, [batch, seqLen]); // [B, T, C]
    const hidden: Tensor[] = [];
    this.model.layers.forEach((layer, i) => {
      if (opts.outputHiddenStates) hidden.push(x);
      x = layer.forward(x, i, cos, sin, opts.cache);
    });
    x = this.model.norm.forward(x);
    if (opts.outputHiddenStates) hidden.push(x);
    if (opts.cache) opts.cache.length += seqLen;
    return opts.outputHiddenStates ? { hidden: x, hiddenStates: hidden } : { hidden: x };
  }

  lmHeadWeight(): Tensor {
    return this.lmHead ? this.lmHead.weight : this.model.embed_tokens.weight; // [V, C]
  }

  tiedAliases(): [string, string][] {
    return this.lmHead ? [] : [['lm_head.weight', 'model.embed_tokens.weight']];
  }
}
