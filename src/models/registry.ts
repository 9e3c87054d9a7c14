/**
 * Model families by `model_type`, and Hugging Face folder load/save (config.json + model.safetensors,
 * or a sharded model.safetensors.index.json), with HF tensor names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseWith } from '../config/zod.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../io/safetensors.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import type { CausalLM } from './base.js';
import { modelConfigSchema, resolveLlamaConfig, type ModelConfig } from './config.js';
import { GPT2LMHeadModel } from './gpt2.js';
import { LlamaForCausalLM } from './llama.js';

const families = {
  gpt2: { architecture: 'GPT2LMHeadModel', create: (c: ModelConfig, seed: number) => new GPT2LMHeadModel(c as Extract<ModelConfig, { model_type: 'gpt2' }>, seed) },
  llama: { architecture: 'LlamaForCausalLM', create: (c: ModelConfig, seed: number) => new LlamaForCausalLM(resolveLlamaConfig(c as Extract<ModelConfig, { model_type: 'llama' | 'qwen2' }>), seed) },
  qwen2: { architecture: 'Qwen2ForCausalLM', create: (c: ModelConfig, seed: number) => new LlamaForCausalLM(resolveLlamaConfig(c as Extract<ModelConfig, { model_type: 'llama' | 'qwen2' }>), seed) },
} satisfies Record<ModelConfig['model_type'], { architecture: string; create: (c: ModelConfig, seed: number) => CausalLM }>;

/** A freshly initialised model (HF-style init, seeded) from a config object (validated). */
export function createModel(config: unknown, seed = 0, source = 'model config'): CausalLM {
  const cfg = parseWith(modelConfigSchema, config, source);
  try {
    return families[cfg.model_type].create(cfg, seed);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${source}: ${(e as Error).message}`, 2);
  }
}

// Non-parameter buffers some checkpoints carry; safe to ignore.
const IGNORED = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /rotary_emb\.inv_freq$/];

function readJson(file: string): unknown {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > 64 * 1024 * 1024) throw new UserError(`${file}: ${st.size} bytes is too large for a JSON config`, 2);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 2);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`, 2);
  }
}

/** Reads every tensor of a HF folder (single file or sharded index). */
function readWeights(dir: string): Map<string, FloatTensor> {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return readSafetensors(single).tensors;
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) throw new UserError(`${dir}: no model.safetensors or model.safetensors.index.json`, 2);
  const index = readJson(indexFile);
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (!map || typeof map !== 'object') throw new UserError(`${indexFile}: missing "weight_map" object`, 2);
  const out = new Map<string, FloatTensor>();
  for (const shard of new Set(Object.values(map as Record<string, unknown>))) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new UserError(`${indexFile}: weight_map value ${JSON.stringify(shard)} is not a shard file name`, 2);
    }
    for (const [k, v] of readSafetensors(path.join(dir, shard)).tensors) out.set(k, v);
  }
  return out;
}

/** Copies named tensors into the model's parameters, checking names and shapes. */
export function loadStateDict(model: CausalLM, tensors: Map<string, { shape: number[]; data: Float32Array }>, source: string): void {
  const params = model.namedParameters();
  const aliases = new Map(model.tiedAliases());
  const missing: string[] = [];
  const copies: [Float32Array, Float32Array][] = [];
  for (const [name, p] of params) {
    const t = tensors.get(name) ?? tensors.get([...aliases].find(([, src]) => src === name)?.[0] ?? '');
    if (!t) { missing.push(name); continue; }
    if (!shapeEq(t.shape, p.shape)) {
      throw new UserError(`${source}: tensor "${name}" has shape ${fmtShape(t.shape)}; the config needs ${fmtShape(p.shape)}`, 2);
    }
    copies.push([p.data, t.data]);
  }
  if (missing.length) {
    throw new UserError(`${source}: missing tensor${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).map((m) => `"${m}"`).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`, 2);
  }
  const unexpected = [...tensors.keys()].filter((k) => !params.has(k) && !aliases.has(k) && !IGNORED.some((re) => re.test(k)));
  if (unexpected.length) {
    throw new UserError(`${source}: unexpected tensor${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).map((m) => `"${m}"`).join(', ')} (does config.json match these weights?)`, 2);
  }
  for (const [dst, src] of copies) dst.set(src); // only after every check passed
}

/** Loads a Hugging Face model folder (as save_pretrained writes it). */
export function loadPretrained(dir: string): CausalLM {
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new UserError(`${dir}: not a model folder (no config.json)`, 2);
  const model = createModel(readJson(cfgFile), 0, cfgFile);
  loadStateDict(model, readWeights(dir), dir);
  return model;
}

/** The config.json object HF expects for this model. */
export function hfConfig(model: CausalLM): Record<string, unknown> {
  const cfg: Record<string, unknown> = { ...model.config };
  for (const k of ['qkvBias', 'oBias']) delete cfg[k];
  if (cfg.model_type !== 'gpt2') {
    cfg.rope_parameters = { rope_type: 'default', rope_theta: cfg.rope_theta };
  }
  return { architectures: [families[model.config.model_type].architecture], ...cfg, torch_dtype: 'float32' };
}

/** Writes config.json + model.safetensors (HF names, tied aliases omitted as HF does) into `dir`. */
export function savePretrained(model: CausalLM, dir: string, opts: { dtype?: 'F32' | 'F16' | 'BF16' } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, p] of model.namedParameters()) tensors.set(name, { shape: p.shape, data: p.data });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { floatDtype: opts.dtype ?? 'F32' });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(hfConfig(model), null, 2) + '\n');
}
