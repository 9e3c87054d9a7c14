/**
 * Training checkpoints. A checkpoint is a directory that is also a Hugging Face model folder
 * (config.json, model.safetensors, tokenizer.json) plus optimizer.safetensors (AdamW moments) and
 * trainer_state.json (step, data position, RNG states). It is written with writeDirAtomic — temp dir,
 * fsync, rename — so a crash at any instant leaves the previous complete checkpoint or the new one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseWith } from '../config/zod.js';
import { UserError } from '../errors.js';
import type { CausalLM } from '../models/base.js';
import { hfConfig, loadStateDict } from '../models/registry.js';
import type { AdamW } from '../optim/adamw.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { readSafetensors, serializeSafetensors } from './safetensors.js';
import { recoverDir, writeDirAtomic } from './atomic.js';

const u32 = z.number().int().min(0).max(0xffffffff);
/** an Rng state: 4 uint32 words, not all zero (the all-zero state is a fixed point of xoshiro) */
const rngState = z.array(u32).length(4).refine((w) => w.some((x) => x !== 0), 'an RNG state cannot be all zeros');
export const trainerStateSchema = z.strictObject({
  format: z.literal('lmdistill-checkpoint'),
  version: z.literal(1),
  /** optimizer updates completed */
  step: z.number().int().min(0),
  tokensSeen: z.number().int().min(0),
  elapsedMs: z.number().min(0),
  loader: z.strictObject({
    epoch: z.number().int().min(0),
    index: z.number().int().min(0),
    rng: rngState,
    datasetLength: z.number().int().min(0),
  }),
  dropoutRng: rngState,
  /** digest of the settings that must not change across a resume */
  configDigest: z.string(),
  /** free-form extras (e.g. eval history) */
  extra: z.record(z.string(), z.unknown()).default({}),
});
export type TrainerState = z.output<typeof trainerStateSchema>;

export const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json'] as const;

/** Writes a checkpoint directory atomically. */
export function saveCheckpoint(dir: string, model: CausalLM, optimizer: AdamW, state: TrainerState, tokenizerJson?: string): void {
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, p] of model.namedParameters()) weights.set(name, { shape: p.shape, data: p.data });
  const moments = new Map<string, { shape: number[]; data: Float32Array }>();
  optimizer.names.forEach((name, i) => {
    const shape = optimizer.params[i].shape;
    moments.set(`exp_avg.${name}`, { shape, data: optimizer.m[i] });
    moments.set(`exp_avg_sq.${name}`, { shape, data: optimizer.v[i] });
  });
  const files: Record<string, Uint8Array | string | Uint8Array[]> = {
    'config.json': JSON.stringify(hfConfig(model), null, 2) + '\n',
    'model.safetensors': serializeSafetensors(weights, { format: 'pt' }),
    'optimizer.safetensors': serializeSafetensors(moments, { step: String(optimizer.step) }),
    'trainer_state.json': JSON.stringify(state, null, 2) + '\n',
  };
  if (tokenizerJson !== undefined) files['tokenizer.json'] = tokenizerJson;
  writeDirAtomic(dir, files);
}

/** True when `dir` holds a checkpoint (after finishing any interrupted swap). */
export function hasCheckpoint(dir: string): boolean {
  recoverDir(dir);
  return fs.existsSync(path.join(dir, 'trainer_state.json'));
}

/**
 * Restores model weights and optimizer moments from `dir` into existing objects and returns the
 * trainer state. Every inconsistency is a UserError naming the file and what was expected.
 */
export function loadCheckpoint(dir: string, model: CausalLM, optimizer: AdamW): TrainerState {
  recoverDir(dir);
  for (const f of CHECKPOINT_FILES) {
    if (!fs.existsSync(path.join(dir, f))) throw new UserError(`checkpoint ${dir} is incomplete: ${f} is missing`, 2);
  }
  const stateFile = path.join(dir, 'trainer_state.json');
  let raw: unknown;
  try {
    const st = fs.statSync(stateFile);
    if (st.size > 16 * 1024 * 1024) throw new UserError(`${stateFile}: ${st.size} bytes is too large for a trainer state`, 2);
    raw = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${stateFile}: not valid JSON (${(e as Error).message})`, 2);
  }
  const state = parseWith(trainerStateSchema, raw, stateFile);
  // Read and check everything before touching the model, so a bad checkpoint leaves it unchanged.
  const weights = readSafetensors(path.join(dir, 'model.safetensors'));
  const optFile = path.join(dir, 'optimizer.safetensors');
  const opt = readSafetensors(optFile);
  if (opt.integers.size > 0) throw new UserError(`${optFile}: unexpected integer tensor "${[...opt.integers.keys()][0]}"`, 2);
  const step = Number(opt.metadata.step);
  if (!Number.isSafeInteger(step) || step !== state.step) {
    throw new UserError(`${optFile}: metadata step ${JSON.stringify(opt.metadata.step)} does not match trainer_state.json step ${state.step}`, 2);
  }
  const copies: [Float32Array, Float32Array][] = [];
  optimizer.names.forEach((name, i) => {
    for (const [key, buf] of [[`exp_avg.${name}`, optimizer.m[i]], [`exp_avg_sq.${name}`, optimizer.v[i]]] as const) {
      const t = opt.tensors.get(key);
      if (!t) throw new UserError(`${optFile}: missing tensor "${key}"`, 2);
      if (!shapeEq(t.shape, optimizer.params[i].shape)) {
        throw new UserError(`${optFile}: tensor "${key}" has shape ${fmtShape(t.shape)}; expected ${fmtShape(optimizer.params[i].shape)}`, 2);
      }
      copies.push([buf, t.data]);
    }
  });
  if (opt.tensors.size !== 2 * optimizer.names.length) {
    throw new UserError(`${optFile}: has ${opt.tensors.size} tensors; expected ${2 * optimizer.names.length} (exp_avg and exp_avg_sq per parameter)`, 2);
  }
  loadStateDict(model, weights.tensors, path.join(dir, 'model.safetensors')); // checks all, then copies
  for (const [dst, src] of copies) dst.set(src);
  optimizer.step = step;
  model.dropoutRng.setState(state.dropoutRng);
  return state;
}
