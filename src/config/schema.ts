/**
 * The training config (YAML) — one zod schema per section holding types, defaults and docs. Unknown
 * keys are errors naming the key. CLI flags are applied to the parsed YAML object before validation,
 * so both go through the same schema.
 */
import { z } from 'zod';
import { gpt2ConfigSchema, llamaConfigSchema } from '../models/config.js';

const posInt = z.number().int().positive();

export const corpusSourceSchema = z.union([
  z.strictObject({ embedded: z.enum(['moby-dick']).describe('a corpus shipped in an npm data package') }),
  z.strictObject({ text: z.string().min(1).describe('a plain UTF-8 text file') }),
  z.strictObject({ dir: z.string().min(1).describe('a directory of .txt/.md files, read recursively') }),
  z.strictObject({ jsonl: z.string().min(1).describe('a JSON-lines file'), field: z.string().default('text').describe('the string field holding the text') }),
]);
export type CorpusSourceConfig = z.output<typeof corpusSourceSchema>;

export const dataSchema = z.strictObject({
  source: corpusSourceSchema.default({ embedded: 'moby-dick' }),
  /** fraction of documents held out for validation (deterministic hash split) */
  val_fraction: z.number().gt(0).lt(1).default(0.05),
  split_seed: z.number().int().default(0),
  /** tokens per training sequence */
  seq_len: posInt.max(1 << 16).default(64),
});

export const tokenizerSchema = z.strictObject({
  /** an existing HF tokenizer.json; when absent a byte-level BPE is trained on the training split */
  path: z.string().min(1).optional(),
  vocab_size: z.number().int().min(257).max(1 << 20).default(1024),
  min_frequency: posInt.default(2),
});

// In YAML the model mirrors HF config.json but strictly (a typo is an error), vocab_size comes from the
// tokenizer when omitted, and the position limit defaults to seq_len.
const strictGpt2 = z.strictObject({ ...gpt2ConfigSchema.shape, vocab_size: gpt2ConfigSchema.shape.vocab_size.optional(), n_positions: posInt.optional() });
const strictLlama = z.strictObject({ ...llamaConfigSchema.shape, vocab_size: llamaConfigSchema.shape.vocab_size.optional(), max_position_embeddings: posInt.optional() });
const pretrainedSchema = z.strictObject({ pretrained: z.string().min(1).describe('a Hugging Face model folder (config.json + model.safetensors)') });
/** model: {pretrained: DIR} or an HF-style config (chosen by model_type, so errors name the right keys). */
export const modelSectionSchema = z.unknown().transform((v, ctx) => {
  const obj = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  const schema = obj && 'pretrained' in obj ? pretrainedSchema
    : obj?.model_type === 'gpt2' ? strictGpt2
    : obj?.model_type === 'llama' || obj?.model_type === 'qwen2' ? strictLlama : null;
  if (!schema) {
    const got = obj && 'model_type' in obj ? `model_type ${JSON.stringify(obj.model_type)}` : JSON.stringify(v);
    ctx.addIssue({ code: 'custom', message: `expected {pretrained: DIR} or a config with model_type "gpt2", "llama" or "qwen2"; got ${got}` });
    return z.NEVER;
  }
  const r = schema.safeParse(v);
  if (!r.success) {
    for (const iss of r.error.issues) ctx.addIssue({ ...iss, path: iss.path } as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  }
  return r.data as z.output<typeof pretrainedSchema> | z.output<typeof strictGpt2> | z.output<typeof strictLlama>;
});

export const trainSchema = z.strictObject({
  steps: posInt.default(300),
  batch_size: posInt.default(16),
  grad_accum: posInt.default(1),
  lr: z.number().positive().default(3e-3),
  min_lr: z.number().min(0).default(3e-4),
  warmup_steps: z.number().int().min(0).default(30),
  schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
  weight_decay: z.number().min(0).default(0.1),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
  eps: z.number().positive().default(1e-8),
  grad_clip: z.number().min(0).default(1.0),
  seed: z.number().int().default(0),
  eval_every: posInt.default(50),
  /** validation batches per evaluation (0 = the whole validation split) */
  eval_batches: z.number().int().min(0).default(0),
  checkpoint_every: posInt.default(50),
});

export const sampleSchema = z.strictObject({
  prompts: z.array(z.string()).default(['Call me Ishmael.', 'The whale']),
  max_new_tokens: posInt.default(40),
  temperature: z.number().min(0).default(0.8),
  top_k: z.number().int().min(0).default(40),
  top_p: z.number().gt(0).max(1).default(1),
});

export const trainConfigSchema = z.strictObject({
  out_dir: z.string().min(1).default('runs/train'),
  data: dataSchema.default(dataSchema.parse({})),
  tokenizer: tokenizerSchema.default(tokenizerSchema.parse({})),
  model: modelSectionSchema,
  train: trainSchema.default(trainSchema.parse({})),
  sample: sampleSchema.default(sampleSchema.parse({})),
});
export type TrainConfig = z.output<typeof trainConfigSchema>;
