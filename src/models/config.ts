/**
 * Model configurations mirroring Hugging Face `config.json` fields (same names, same defaults as
 * transformers), one zod schema per family. Reading a config.json tolerates the many bookkeeping keys
 * HF writes (architectures, torch_dtype, ...); fields we do not implement (e.g. rope_scaling) are
 * rejected with a clear error instead of being silently ignored.
 */
import { z } from 'zod';

const posInt = z.number().int().positive();
const prob = z.number().min(0).max(1);

export const gpt2ConfigSchema = z.object({
  model_type: z.literal('gpt2'),
  vocab_size: posInt.max(1 << 22),
  n_positions: posInt.max(1 << 20).default(1024),
  n_embd: posInt.max(1 << 16),
  n_layer: posInt.max(1024),
  n_head: posInt.max(1024),
  n_inner: posInt.max(1 << 18).nullable().default(null),
  activation_function: z.enum(['gelu_new', 'gelu_pytorch_tanh']).default('gelu_new'),
  resid_pdrop: prob.default(0.1),
  embd_pdrop: prob.default(0.1),
  attn_pdrop: prob.default(0.1),
  layer_norm_epsilon: z.number().positive().default(1e-5),
  initializer_range: z.number().positive().default(0.02),
  tie_word_embeddings: z.literal(true).default(true),
  scale_attn_weights: z.literal(true).default(true),
  scale_attn_by_inverse_layer_idx: z.literal(false).default(false),
  reorder_and_upcast_attn: z.boolean().default(false),
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.number().int().nullable().optional(),
});
export type GPT2Config = z.output<typeof gpt2ConfigSchema>;

const ropeParameters = z.looseObject({
  rope_type: z.literal('default').optional(),
  rope_theta: z.number().positive().optional(),
});

export const llamaConfigSchema = z.object({
  model_type: z.enum(['llama', 'qwen2']),
  vocab_size: posInt.max(1 << 22),
  hidden_size: posInt.max(1 << 16),
  intermediate_size: posInt.max(1 << 18),
  num_hidden_layers: posInt.max(1024),
  num_attention_heads: posInt.max(1024),
  num_key_value_heads: posInt.max(1024).nullable().optional(),
  head_dim: posInt.max(4096).nullable().optional(),
  max_position_embeddings: posInt.max(1 << 22).default(2048),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().optional(),
  rope_parameters: ropeParameters.nullable().optional(),
  rope_scaling: z.null().optional(),
  hidden_act: z.literal('silu').default('silu'),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().default(false),
  attention_dropout: prob.default(0),
  initializer_range: z.number().positive().default(0.02),
  tie_word_embeddings: z.boolean().default(false),
  use_sliding_window: z.literal(false).optional(),
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullable().optional(),
});
export type LlamaConfigIn = z.output<typeof llamaConfigSchema>;

/** A LLaMA-family config with every derived field resolved. */
export interface LlamaConfig extends LlamaConfigIn {
  num_key_value_heads: number;
  head_dim: number;
  rope_theta: number;
  /** q/k/v projections have biases (Qwen2; LLaMA's attention_bias) */
  qkvBias: boolean;
  /** o_proj has a bias (LLaMA's attention_bias; never in Qwen2) */
  oBias: boolean;
}

export function resolveLlamaConfig(c: LlamaConfigIn): LlamaConfig {
  const heads = c.num_attention_heads;
  const kv = c.num_key_value_heads ?? heads;
  if (heads % kv !== 0) throw new Error(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kv}`);
  const headDim = c.head_dim ?? c.hidden_size / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`head_dim ${headDim} must be an even integer (hidden_size / num_attention_heads)`);
  const qwen = c.model_type === 'qwen2';
  return {
    ...c,
    num_key_value_heads: kv,
    head_dim: headDim,
    rope_theta: c.rope_parameters?.rope_theta ?? c.rope_theta ?? (qwen ? 1000000 : 10000),
    qkvBias: qwen ? true : c.attention_bias ?? false,
    oBias: qwen ? false : c.attention_bias ?? false,
  };
}

export const modelConfigSchema = z.discriminatedUnion('model_type', [gpt2ConfigSchema, llamaConfigSchema]);
export type ModelConfig = GPT2Config | LlamaConfigIn;
