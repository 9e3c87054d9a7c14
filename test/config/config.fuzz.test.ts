/**
 * Fuzz test for the training-config loader: thousands of mutations of configs/tiny-gpt.yaml (byte flips,
 * truncation, deleted and duplicated lines, wrong types, huge numbers, deep nesting, YAML alias bombs,
 * binary garbage), each written as a real file and loaded with `loadTrainConfig`. Every file must either
 * validate or throw a `UserError` whose message names the file — never another exception type, and never
 * a hang. Seeded: failures reproduce; set LMDISTILL_FUZZ_SEED / LMDISTILL_FUZZ_N to explore further.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrainConfig } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { Rng } from '../../src/util/rng.js';

const SEED = Number(process.env.LMDISTILL_FUZZ_SEED ?? 20240917);
const N = Number(process.env.LMDISTILL_FUZZ_N ?? 2000);
const BASE = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs', 'tiny-gpt.yaml'), 'utf8');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-cfgfuzz-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const NASTY_VALUES = [
  '"ten"', "'3'", '[]', '{}', 'null', '~', 'true', 'no', '1e308', '-1e308', '1e400', '-1', '0', '-0', '1.5', '0x10', '0o17',
  '9007199254740992', '9007199254740993', '18446744073709551616', '.nan', '.inf', '-.inf', '""', '[1, 2]', '{a: 1}', '2001-12-14',
  '!!binary aGVsbG8=', '!!set {a, b}', '!!omap [a: 1]', '!!js/function "x"', '!<tag:yaml.org,2002:str> 5', '|\n    block', '>-\n    folded',
  '*undefined_alias', '&anchor 5', '"\\u0000"', '"\\uD800"', 'x'.repeat(10_000), '1_000', '+5', '5.', '.5e1',
];
const SPECIAL_CHARS = [':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '#', ',', '?', '\t', '\n', '\r', '\0', '\ufeff', '\u2028', '\ud800'];


function deepNest(rng: Rng): string {
  const depth = [5, 50, 300][rng.int(3)]; // deeper (stack-overflowing) inputs are fixed cases below
  switch (rng.int(3)) {
    case 0: return '['.repeat(depth) + ']'.repeat(depth);
    case 1: return '{a: '.repeat(depth) + '1' + '}'.repeat(depth);
    default: return '\n' + Array.from({ length: Math.min(depth, 500) }, (_, i) => '  '.repeat(i + 2) + 'k:').join('\n') + ' 1';
  }
}

/** "Billion laughs": each level references the previous one `width` times. */
function aliasBomb(rng: Rng): string {
  return aliasBombText(3 + rng.int(8), 2 + rng.int(9));
}
function aliasBombText(levels: number, width: number): string {
  const lines = ['lol0: &lol0 "lol"'];
  for (let l = 1; l < levels; l++) lines.push(`lol${l}: &lol${l} [${Array.from({ length: width }, () => `*lol${l - 1}`).join(', ')}]`);
  return lines.join('\n') + '\n';
}

function garbage(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

/** Applies one mutation to `text`; returns the new contents and a short label for reports. */
function mutate(rng: Rng, text: string): { data: string | Uint8Array; kind: string } {
  const lines = text.split('\n');
  // lines that hold a key (of the current text: mutations stack); fall back to any line
  const keyed = lines.map((l, i) => ({ l, i })).filter(({ l }) => /^\s*[a-z_]+:/.test(l));
  const KEYED_LINES = keyed.length ? keyed : [{ l: lines[0], i: 0 }];
  const nums = [...text.matchAll(/\b\d+(\.\d+)?(e-?\d+)?\b/g)];
  if (nums.length === 0) nums.push(Object.assign([''] , { index: 0, input: text, groups: undefined }) as unknown as RegExpExecArray);
  switch (rng.int(14)) {
    case 0: { // flip bytes
      const b = Buffer.from(text, 'utf8');
      for (let k = 1 + rng.int(8); k > 0; k--) if (b.length) b[rng.int(b.length)] = rng.int(256);
      return { data: new Uint8Array(b), kind: 'byte-flip' };
    }
    case 1: { // truncate
      const b = Buffer.from(text, 'utf8');
      return { data: new Uint8Array(b.subarray(0, rng.int(b.length + 1))), kind: 'truncate' };
    }
    case 2: { // delete lines
      for (let k = 1 + rng.int(3); k > 0 && lines.length; k--) lines.splice(rng.int(lines.length), 1);
      return { data: lines.join('\n'), kind: 'delete-lines' };
    }
    case 3: { // duplicate a key line (in place: duplicate key; elsewhere: maybe another section)
      const { l, i } = pick(rng, KEYED_LINES);
      lines.splice(rng.int(2) ? i + 1 : rng.int(lines.length + 1), 0, l);
      return { data: lines.join('\n'), kind: 'duplicate-key' };
    }
    case 4: { // wrong type / nasty value for a real key
      const { i } = pick(rng, KEYED_LINES);
      lines[i] = lines[i].replace(/:.*$/, `: ${pick(rng, NASTY_VALUES)}`);
      return { data: lines.join('\n'), kind: 'wrong-type' };
    }
    case 5: { // huge / negative / fractional numbers in place of a number
      const m = pick(rng, nums);
      const v = pick(rng, ['1e308', '-1', '9007199254740992', '-9007199254740992', '1e-320', '0.5', '4294967296', '65537', '1048577', '1e20']);
      return { data: text.slice(0, m.index) + v + text.slice(m.index! + m[0].length), kind: 'huge-number' };
    }
    case 6: { // deep nesting as the value of a real key
      const { i } = pick(rng, KEYED_LINES);
      lines[i] = lines[i].replace(/:.*$/, `: ${deepNest(rng)}`);
      return { data: lines.join('\n'), kind: 'deep-nesting' };
    }
    case 7: { // alias bomb: alone, prepended, or referenced from a real value
      const bomb = aliasBomb(rng);
      const variant = rng.int(3);
      if (variant === 0) return { data: bomb, kind: 'alias-bomb' };
      if (variant === 1) return { data: bomb + text, kind: 'alias-bomb' };
      const levels = bomb.split('\n').filter(Boolean).length;
      return { data: bomb + text.replace(/prompts: .*/, `prompts: *lol${levels - 1}`), kind: 'alias-bomb' };
    }
    case 8: { // binary garbage: whole file, or spliced in
      const g = garbage(rng, rng.int(4096));
      if (rng.int(2)) return { data: g, kind: 'garbage' };
      const b = Buffer.from(text, 'utf8');
      const at = rng.int(b.length + 1);
      return { data: new Uint8Array(Buffer.concat([b.subarray(0, at), g, b.subarray(at)])), kind: 'garbage-splice' };
    }
    case 9: { // YAML-significant characters
      let s = text;
      for (let k = 1 + rng.int(4); k > 0; k--) {
        const at = rng.int(s.length + 1);
        s = s.slice(0, at) + pick(rng, SPECIAL_CHARS) + s.slice(at);
      }
      return { data: s, kind: 'special-chars' };
    }
    case 10: { // re-indent a line
      const i = rng.int(lines.length);
      lines[i] = rng.int(2) ? ' '.repeat(1 + rng.int(6)) + lines[i] : lines[i].trimStart();
      return { data: lines.join('\n'), kind: 'indent' };
    }
    case 11: { // a plausible edit of a number (often still valid)
      const m = pick(rng, nums);
      const v = String(1 + rng.int(200));
      return { data: text.slice(0, m.index) + v + text.slice(m.index! + m[0].length), kind: 'number-edit' };
    }
    case 12: { // unknown key in a random section
      const { l, i } = pick(rng, KEYED_LINES);
      const indent = /^\s*/.exec(l)![0];
      lines.splice(i + 1, 0, `${indent}${pick(rng, ['stepz', 'trian', '__proto__', 'constructor', 'toString', 'n_embed', 'lr '])}: 3`);
      return { data: lines.join('\n'), kind: 'unknown-key' };
    }
    default: // unchanged (valid)
      return { data: text, kind: 'identity' };
  }
}

test(`config loader fuzz: ${N} mutated (+ fixed nasty) YAML files either validate or throw a UserError naming the file`, { timeout: 120_000 }, (t) => {
  const rng = new Rng(SEED);
  const counts = { valid: 0, rejected: 0 };
  const byKind = new Map<string, { valid: number; rejected: number }>();
  const failures: string[] = [];
  const timeByKind = new Map<string, number>();
  let slowest = { ms: 0, i: -1, kind: '' };
  const t0 = performance.now();
  // fixed cases first: inputs too costly to draw thousands of times, then the random mutations
  const fixed: { data: string | Uint8Array; kind: string }[] = [
    { data: `model: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, kind: 'deep-flow-20000' },
    { data: `model: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`, kind: 'deep-map-5000' },
    { data: aliasBombText(9, 9) + BASE, kind: 'billion-laughs-9x9' },
    { data: BASE.replace(/prompts: .*/, 'prompts: *lol8').replace(/^/, aliasBombText(9, 9)), kind: 'billion-laughs-in-prompts' },
    { data: garbage(rng, 5 * 1024 * 1024), kind: 'garbage-5MB' },
    { data: '', kind: 'empty' },
    { data: '\ufeff', kind: 'bom-only' },
  ];
  for (let i = 0; i < N + fixed.length; i++) {
    let data: string | Uint8Array = BASE;
    const kinds: string[] = [];
    if (i < fixed.length) {
      data = fixed[i].data;
      kinds.push(fixed[i].kind);
    } else {
      // mostly one mutation; sometimes two or three stacked on top of each other
      for (let k = rng.int(4) === 0 ? 2 + rng.int(2) : 1; k > 0; k--) {
        const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
        const m = mutate(rng, text);
        data = m.data;
        kinds.push(m.kind);
      }
    }
    const kind = kinds.join('+');
    const file = path.join(work, `cfg-${i}.yaml`);
    fs.writeFileSync(file, data);
    const s0 = performance.now();
    let outcome: 'valid' | 'rejected';
    try {
      const cfg = loadTrainConfig(file);
      assert.ok(cfg.model && cfg.train.steps >= 1 && cfg.data.seq_len >= 1, 'a valid config has its sections filled in');
      outcome = 'valid';
    } catch (e) {
      if (e instanceof UserError && e.message.includes(file)) outcome = 'rejected';
      else {
        if (failures.length < 20) failures.push(`#${i} ${kind}: ${e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : String(e)}`);
        continue;
      }
    }
    const ms = performance.now() - s0;
    timeByKind.set(kinds[0], (timeByKind.get(kinds[0]) ?? 0) + ms);
    if (ms > slowest.ms) slowest = { ms, i, kind };
    counts[outcome]++;
    const k = kinds[0];
    const entry = byKind.get(k) ?? { valid: 0, rejected: 0 };
    entry[outcome]++;
    byKind.set(k, entry);
  }
  const total = performance.now() - t0;
  t.diagnostic(`seed ${SEED}: ${counts.valid} valid, ${counts.rejected} rejected of ${N + fixed.length} in ${(total / 1000).toFixed(2)} s; slowest #${slowest.i} (${slowest.kind}) ${slowest.ms.toFixed(0)} ms`);
  t.diagnostic(`by first mutation: ${[...byKind].sort().map(([k, v]) => `${k} ${v.valid}/${v.rejected}`).join(', ')}`);
  t.diagnostic(`ms by kind: ${[...timeByKind].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
  assert.deepEqual(failures, [], `loadTrainConfig threw something other than a UserError naming the file:\n${failures.join('\n')}`);
  assert.ok(counts.valid > 0 && counts.rejected > 0, `degenerate fuzz: ${JSON.stringify(counts)}`);
});
