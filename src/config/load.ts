/** Reading YAML config files into validated configs, with one clear error per problem. */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import { trainConfigSchema, type TrainConfig } from './schema.js';
import { parseWith } from './zod.js';

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Parses a YAML file; a missing file or syntax error is a UserError (exit 2) naming the file and line. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new UserError(`${file}: not a file`, 2);
    if (st.size > MAX_CONFIG_BYTES) throw new UserError(`${file}: ${st.size} bytes is too large for a config file`, 2);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`config file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 2);
  }
  try {
    // maxAliasCount bounds "billion laughs" alias expansion
    return parseYaml(text, { maxAliasCount: 100, prettyErrors: true }) ?? {};
  } catch (e) {
    throw new UserError(`${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`, 2);
  }
}

/** Sets `obj.a.b.c = value` for a dotted key, creating objects on the way. */
export function setDotted(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

/** Loads and validates a training config; `overrides` (dotted keys, from CLI flags) win over the file. */
export function loadTrainConfig(file: string, overrides: Record<string, unknown> = {}): TrainConfig {
  const raw = readYamlFile(file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${file}: expected a YAML mapping at the top level`, 2);
  const obj = structuredClone(raw) as Record<string, unknown>;
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) setDotted(obj, k, v);
  return parseWith(trainConfigSchema, obj, file);
}
