/**
 * Builds a Teacher from a config spec (src/config/schema.ts `teacherSpecSchema`). One interface,
 * whatever is behind it.
 */
import type { TeacherSpec } from '../config/schema.js';
import { UserError } from '../errors.js';
import { loadPretrained } from '../models/registry.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import { LocalTeacher } from './local.js';
import type { Teacher } from './teacher.js';

export interface TeacherContext {
  tokenizer: BpeTokenizer;
  /** run folder (default location of request caches) */
  outDir: string;
}

export async function createTeacher(spec: TeacherSpec, _ctx: TeacherContext): Promise<Teacher> {
  if ('model' in spec && !('url' in spec)) return new LocalTeacher(loadPretrained(spec.model), `local:${spec.model}`);
  throw new UserError(`distill.teacher ${JSON.stringify(spec)}: this teacher source is not available in this build yet`, 2);
}

export { LocalTeacher } from './local.js';
export type { Teacher, TeacherBatch, TopK } from './teacher.js';
