/**
 * Builds a Teacher from a config spec (src/config/schema.ts `teacherSpecSchema`). One interface,
 * whatever is behind it.
 */
import type { TeacherSpec } from '../config/schema.js';
import { UserError } from '../errors.js';
import { loadPretrained } from '../models/registry.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import path from 'node:path';
import { LocalTeacher } from './local.js';
import { OpenAITeacher } from './openai.js';
import { OnnxTeacher } from './onnx.js';
import { CachedTeacher } from './cache.js';
import type { PackedDataset } from '../data/packing.js';
import type { Teacher } from './teacher.js';

export interface TeacherContext {
  tokenizer: BpeTokenizer;
  /** run folder (default location of request caches) */
  outDir: string;
  /** the training rows (a top-k cache is keyed by them) */
  dataset?: PackedDataset;
}

export async function createTeacher(spec: TeacherSpec, ctx: TeacherContext): Promise<Teacher> {
  if ('url' in spec) {
    const apiKey = spec.api_key_env ? process.env[spec.api_key_env] : undefined;
    if (spec.api_key_env && !apiKey) throw new UserError(`distill.teacher.api_key_env: environment variable ${spec.api_key_env} is not set`, 2);
    return new OpenAITeacher({
      baseURL: spec.url, model: spec.model, apiKey, tokenizer: ctx.tokenizer, concurrency: spec.concurrency,
      cacheDir: spec.cache_dir ?? path.join(ctx.outDir, 'teacher-requests'),
    });
  }
  if ('model' in spec) return new LocalTeacher(loadPretrained(spec.model), `local:${spec.model}`);
  if ('onnx' in spec) return OnnxTeacher.open(spec.onnx);
  if ('cache' in spec) return CachedTeacher.open(spec.cache, { dataset: ctx.dataset });
  throw new UserError(`distill.teacher ${JSON.stringify(spec)}: this teacher source is not available in this build yet`, 2);
}

export { LocalTeacher } from './local.js';
export { OpenAITeacher, openaiTeacherOptionsSchema } from './openai.js';
export { OnnxTeacher } from './onnx.js';
export { CachedTeacher } from './cache.js';
export { buildTeacherCache } from './cache-build.js';
export type { Teacher, TeacherBatch, TopK } from './teacher.js';
