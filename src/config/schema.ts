/**
 * The training config (YAML) — one zod schema per section holding types, defaults and docs. Unknown
 * keys are errors naming the key. CLI flags are applied to the parsed YAML object before validation,
 * so both go through the same schema.
 */
import { z } from 'zod';
import { gpt2ConfigSchema, llamaConfigSchema } from '../models/config.js';
import { PRECISIONS } from '../tensor/precision.js';

const posInt = z.number().int().positive();

export const corpusSourceSchema = z.union([
  z.strictObject({ embedded: z.enum(['moby-dick']).describe('a corpus shipped in an npm data package') }),
  z.strictObject({ text: z.string().min(1).describe('a plain UTF-8 text file') }),
  z.strictObject({ dir: z.string().min(1).describe('a directory of .txt/.md files, read recursively') }),
  z.strictObject({ jsonl: z.string().min(1).describe('a JSON-lines file'), field: z.string().default('text').describe('the string field holding the text') }),
  z.strictObject({
    pairs: z.string().min(1).describe('a JSON-lines file of prompt/response examples (only responses are trained on)'),
    prompt_field: z.string().min(1).default('prompt'),
    response_field: z.string().min(1).default('response'),
  }),
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
  /**
   * matmul precision of forward + backward: bf16 rounds GEMM operands to bfloat16 (fp32 accumulation;
   * loss, softmax, norms, optimizer and master weights stay fp32). Emulated on CPUs without
   * AVX512-BF16: same speed as fp32. fp32 is the reference.
   */
  precision: z.enum(PRECISIONS).default('fp32'),
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

/** Where the teacher comes from (one interface behind all of them, see src/teachers/). */
export const teacherSpecSchema = z.union([
  z.strictObject({ model: z.string().min(1).describe('a Hugging Face model folder, run in-process (frozen, no grad)') }),
  z.strictObject({ onnx: z.string().min(1).describe('an ONNX causal LM (input_ids → logits), via onnxruntime-node') }),
  z.strictObject({
    url: z.string().url().describe('an OpenAI-compatible server (vLLM, llama.cpp, Ollama, lmdistill serve), e.g. http://127.0.0.1:8000/v1'),
    model: z.string().optional().describe('model name on the server'),
    api_key_env: z.string().optional().describe('environment variable holding the API key'),
    cache_dir: z.string().optional().describe('on-disk request cache (default: <out_dir>/teacher-requests)'),
    concurrency: posInt.max(256).default(4),
  }),
  z.strictObject({ cache: z.string().min(1).describe('a top-k cache written by `lmdistill teacher-cache`') }),
]);
export type TeacherSpec = z.output<typeof teacherSpecSchema>;

/** Data regimes (methods.md §2b), switched by `kind`. */
export const regimeSchema = z.strictObject({
  kind: z.enum(['offline', 'sequence', 'on_policy', 'mixed', 'replay']).default('offline')
    .describe('offline: dataset scored by the teacher · sequence: teacher-generated targets · on_policy: student samples, teacher scores (GKD λ=1) · mixed: student samples with probability lambda (GKD) · replay: DistiLLM adaptive off-policy replay'),
  lambda: z.number().min(0).max(1).default(0.5).describe('mixed: probability of a student-generated batch'),
  prompt_len: posInt.default(16).describe('raw-text data: tokens of each sequence used as the prompt'),
  max_new_tokens: posInt.optional().describe('tokens to generate (default: fill the sequence)'),
  temperature: z.number().min(0).default(1).describe('sampling temperature of generated responses (0 = greedy)'),
  top_k: z.number().int().min(0).default(0),
  capacity: posInt.default(1000).describe('replay: buffer size in sequences'),
  replay_ratio: z.enum(['decreasing', 'constant', 'increasing']).default('decreasing'),
  init_threshold: z.number().min(0).max(1).default(0),
  loss_eps: z.number().min(0).default(0.1).describe('replay: raise p_gen when validation CE rises by this much'),
});
export type RegimeConfig = z.output<typeof regimeSchema>;

export const distillSchema = z.strictObject({
  teacher: teacherSpecSchema,
  /** a mixture of objectives; validated by Mixture.parse (src/distill/mixture.ts) */
  loss: z.unknown().default([{ objective: 'fkl' }]),
  top_k: z.number().int().min(0).default(0).describe('0 = full distributions when the teacher can give them; k > 0 = sparse top-k teacher'),
  regime: regimeSchema.default(regimeSchema.parse({})),
  /**
   * feature KD added to the logit loss (in-process teacher only): hidden-state MSE / cosine through a
   * learned projection when widths differ, student block s ← teacher block t by `layer_map`
   */
  features: z.array(z.looseObject({ objective: z.enum(['hidden_mse', 'hidden_cosine']), weight: z.number().min(0).default(1) })).default([]),
  /** fused chunked LM head + loss: only `chunk_rows` rows of logits exist at a time (student and local teacher) */
  fused: z.boolean().default(true),
  chunk_rows: posInt.default(256),
});
export type DistillConfig = z.output<typeof distillSchema>;

export const trainConfigSchema = z.strictObject({
  out_dir: z.string().min(1).default('runs/train'),
  data: dataSchema.default(dataSchema.parse({})),
  tokenizer: tokenizerSchema.default(tokenizerSchema.parse({})),
  model: modelSectionSchema,
  train: trainSchema.default(trainSchema.parse({})),
  sample: sampleSchema.default(sampleSchema.parse({})),
  /** present = a distillation run (`lmdistill distill`); absent = plain language-model training */
  distill: distillSchema.optional(),
});
export type TrainConfig = z.output<typeof trainConfigSchema>;
