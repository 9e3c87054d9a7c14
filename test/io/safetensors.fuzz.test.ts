/**
 * Fuzz test for the safetensors reader: thousands of corrupt, truncated and malicious files written as real
 * files and read back. Each must either load (with sizes consistent with the file) or throw a UserError
 * naming the file — never another exception, a hang, or a huge allocation. Seeded: failures reproduce;
 * set LMDISTILL_FUZZ_SEED / LMDISTILL_FUZZ_N to explore further.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { parseSafetensors, readSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { Rng } from '../../src/util/rng.js';

const SEED = Number(process.env.LMDISTILL_FUZZ_SEED ?? 20240601);
const N = Number(process.env.LMDISTILL_FUZZ_N ?? 3000);
const here = path.dirname(fileURLToPath(import.meta.url));

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) (out.set(c, o), (o += c.byteLength));
  return out;
}

function seeds(): Uint8Array[] {
  const rng = new Rng(1);
  const f = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  return [
    concat(serializeSafetensors({
      'h.0.w': { shape: [4, 4], data: f(16) },
      'h.0.b': { shape: [4], data: f(4), dtype: 'F16' },
      'emb': { shape: [3, 2], data: f(6), dtype: 'BF16' },
      'ids': { shape: [3], data: BigInt64Array.of(1n, 2n, 3n) },
      'pos': { shape: [2], data: Int32Array.of(0, 1) },
      'none': { shape: [0, 5], data: new Float32Array(0) },
    }, { format: 'pt', step: '10' })),
    concat(serializeSafetensors({ only: { shape: [], data: Float32Array.of(1) } })),
    new Uint8Array(fs.readFileSync(path.join(here, '..', 'fixtures', 'safetensors', 'py-mixed.safetensors'))),
  ];
}

function splitFile(b: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, unknown>, data: b.subarray(8 + n) };
}

function build(headerText: string | Uint8Array, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const h = typeof headerText === 'string' ? Buffer.from(headerText, 'utf8') : headerText;
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

const NASTY_NUMBERS: unknown[] = [
  -1, 1.5, 2 ** 53, 2 ** 64, 1e308, -0, '4', null, true, [], {}, Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 32 + 4,
];
const NASTY_SHAPES: unknown[] = [
  [2 ** 53, 2 ** 53], [1e15, 1e15], [2 ** 52, 2 ** 52, 0], [-1], [1.5], ['4'], [], [null], 'x', null, 7,
  Array.from({ length: 2000 }, () => 2), [[4]], [Infinity],
];
const NASTY_DTYPES: unknown[] = ['F4', 'f32', 'F8_E8M0', 'C64', '', 'F32 ', 5, null, ['F32'], 'I64', 'BOOL', 'U8', 'F64'];

/** One structured (JSON-level) mutation of a valid file. */
function mutateHeader(rng: Rng, src: Uint8Array): Uint8Array {
  const { header, data } = splitFile(src);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
  const name = names.length ? pick(names) : 'x';
  const entry = (header[name] ?? {}) as Record<string, unknown>;
  let data2 = data;
  switch (rng.int(12)) {
    case 0: entry.shape = pick(NASTY_SHAPES); break;
    case 1: entry.data_offsets = [pick(NASTY_NUMBERS), pick(NASTY_NUMBERS)]; break;
    case 2: {
      const [b, e] = (entry.data_offsets as number[]) ?? [0, 0];
      entry.data_offsets = pick([[e, b], [b + 1, e], [b, e + 1], [Math.max(0, b - 2), e - 2], [0], [b, e, 0], 'x', null]);
      break;
    }
    case 3: entry.dtype = pick(NASTY_DTYPES); break;
    case 4: header.__metadata__ = pick([{ a: 1 }, { a: { b: 'c' } }, [], 'meta', null, { ok: 'x' }, { __proto__x: 'y' }]); break;
    case 5: header[pick(['__proto__', 'constructor', 'extra', name + '2'])] = { ...entry }; break; // duplicates overlap
    case 6: header[name] = pick([null, 1, 'str', [], { dtype: 'F32' }, { shape: [1] }]); break;
    case 7: data2 = data.subarray(0, rng.int(data.length + 1)); break;
    case 8: data2 = concat([data, new Uint8Array(1 + rng.int(16))]); break;
    case 9: {
      // Deep nesting somewhere in the header, balanced or not.
      const depth = pick([130, 1000, 100000]);
      const text = `{"deep":${'['.repeat(depth)}${rng.int(2) ? ']'.repeat(depth) : ''}}`;
      return build(text, data);
    }
    case 10: {
      // Non-UTF-8 / control bytes injected into the header text.
      const h = Buffer.from(JSON.stringify(header));
      const at = rng.int(h.length);
      return build(concat([h.subarray(0, at), Uint8Array.of(pick([0xff, 0xc0, 0x80, 0xed, 0x00, 0x0a])), h.subarray(at)]), data);
    }
    default: {
      // Whole header replaced by other JSON values.
      return build(pick(['[]', 'null', '1', '"s"', '{', '{}', '  {}', '{"a":}', 'true', '{"__metadata__":{}}']), data2);
    }
  }
  if (names.length && header[name] !== undefined && typeof header[name] === 'object') header[name] = entry;
  return build(JSON.stringify(header), data2);
}

/** One mutation of raw bytes (flip, truncate, absurd length prefix, splice). */
function mutateBytes(rng: Rng, src: Uint8Array): Uint8Array {
  const b = src.slice();
  switch (rng.int(5)) {
    case 0: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips; i++) b[rng.int(b.length)] = rng.int(256);
      return b;
    }
    case 1: return b.subarray(0, rng.int(b.length));
    case 2: {
      const dv = new DataView(b.buffer);
      const n = dv.getBigUint64(0, true);
      const vals = [2n ** 63n, 2n ** 64n - 1n, BigInt(b.length), BigInt(b.length - 7), 0n, 1n, n + 1n, n - 1n, 100_000_001n, BigInt(rng.nextU32())];
      dv.setBigUint64(0, vals[rng.int(vals.length)], true);
      return b;
    }
    case 3: {
      // Flip bytes inside the header only (most likely to produce subtle JSON damage).
      if (b.length <= 8) return b;
      const n = Math.min(Number(new DataView(b.buffer).getBigUint64(0, true)), b.length - 8) || 1;
      for (let i = 0; i < 1 + rng.int(3); i++) b[8 + rng.int(n)] = 0x20 + rng.int(95);
      return b;
    }
    default: return concat([b.subarray(0, rng.int(b.length)), b.subarray(rng.int(b.length))]);
  }
}

test(`fuzz: ${N} mutated safetensors files either load or throw a UserError naming the file (seed ${SEED})`, { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-fuzz-'));
  const rng = new Rng(SEED);
  const base = seeds();
  let loaded = 0;
  let rejected = 0;
  const t0 = Date.now();
  try {
    for (let i = 0; i < N; i++) {
      const src = base[rng.int(base.length)];
      let bytes = rng.int(2) ? mutateHeader(rng, src) : mutateBytes(rng, src);
      if (rng.int(4) === 0) bytes = mutateBytes(rng, bytes.length >= 8 ? bytes : src);
      const name = `case-${SEED}-${i}.safetensors`;
      const file = path.join(dir, name);
      fs.writeFileSync(file, bytes);
      for (const run of [() => readSafetensors(file), () => parseSafetensors(bytes, name)]) {
        try {
          const r = run();
          let total = 0;
          for (const t of [...r.tensors.values(), ...r.integers.values()]) total += t.data.byteLength;
          assert.ok(total <= bytes.byteLength * 4, `case ${i}: decoded ${total} bytes from a ${bytes.byteLength}-byte file`);
          loaded++;
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          assert.ok(err instanceof UserError, `case ${i}: threw ${String(err)} (not a UserError); LMDISTILL_FUZZ_KEEP=1 keeps ${file}`);
          assert.ok(err.message.includes(name), `case ${i}: message does not name the file: ${err.message}`);
          rejected++;
        }
      }
      fs.rmSync(file);
    }
  } finally {
    if (process.env.LMDISTILL_FUZZ_KEEP === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
  // Both outcomes must actually occur, or the mutators are not exercising the reader.
  assert.ok(loaded > 50 && rejected > N, `loaded ${loaded}, rejected ${rejected}`);
});
