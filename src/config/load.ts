/** Reading YAML config files into validated configs, with one clear error per problem. */
import fs from 'node:fs';
import { parseDocument } from 'yaml';
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
  // logLevel 'silent': the library never prints; errors and warnings (e.g. unknown tags) become UserErrors.
  const doc = parseDocument(text, { prettyErrors: true, logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new UserError(`${file}: invalid YAML: ${problem.message.trim()}`, 2);
  try {
    // maxAliasCount bounds "billion laughs" alias expansion
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new UserError(`${file}: invalid YAML: ${(e as Error).message.trim()}`, 2);
  }
}

/** Sets `obj.a.b.c = value` for a dotted key, creating objects on the way. */
export function setDotted(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  parts.slice(0, -1).forEach((p, i) => {
    const next = cur[p];
    if (next === undefined || next === null) cur[p] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new UserError(`${parts.slice(0, i + 1).join('.')} must be a mapping to set ${key}, but it is ${JSON.stringify(next)}`, 2);
    }
    cur = cur[p] as Record<string, unknown>;
  });
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
