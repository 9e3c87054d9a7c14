import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import {
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  type TensorToWrite,
} from '../../src/io/safetensors.js';
import { Rng } from '../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtureDir = path.join(here, '..', 'fixtures', 'safetensors');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-st-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsToF32 = (b: number): number => ((u32[0] = b >>> 0), f32[0]);
const fromJson = (v: number | string): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v));

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) (out.set(c, o), (o += c.byteLength));
  return out;
}

interface FixtureJson {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
}

test('reads the PyTorch-written fixture exactly (F32, F16 incl. subnormal/inf/nan, BF16, F8, I64, empty)', () => {
  const want = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'py-mixed.json'), 'utf8')) as FixtureJson;
  const got = readSafetensors(path.join(fixtureDir, 'py-mixed.safetensors'));
  assert.deepEqual(got.metadata, want.metadata);
  const dtypeName: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float8_e4m3fn: 'F8_E4M3', float8_e5m2: 'F8_E5M2' };
  for (const [name, w] of Object.entries(want.tensors)) {
    if (w.dtype === 'int64') {
      const t = got.integers.get(name);
      assert.ok(t, name);
      assert.equal(t.dtype, 'I64');
      assert.deepEqual(t.shape, w.shape);
      assert.deepEqual([...(t.data as BigInt64Array)], w.values.map((v) => BigInt(v)));
      continue;
    }
    const t = got.tensors.get(name);
    assert.ok(t, name);
    assert.equal(t.dtype, dtypeName[w.dtype], name);
    assert.deepEqual(t.shape, w.shape, name);
    assert.equal(t.data.length, w.values.length, name);
    w.values.forEach((v, i) => assert.ok(Object.is(t.data[i], fromJson(v)), `${name}[${i}]: ${t.data[i]} vs ${v}`));
  }
});

test('F16 and BF16 encoders round exactly like torch .to(float16/bfloat16) on the fixture probes', () => {
  const got = readSafetensors(path.join(fixtureDir, 'py-mixed.safetensors')).tensors;
  const src = got.get('probe.f32')!.data;
  const t16 = got.get('probe.f16')!.data;
  const tbf = got.get('probe.bf16')!.data;
  for (let i = 0; i < src.length; i++) {
    assert.ok(Object.is(f16BitsToF32(f32ToF16Bits(src[i])), t16[i]), `f16 of ${src[i]}: torch ${t16[i]}`);
    assert.ok(Object.is(bitsToF32(f32ToBf16Bits(src[i]) << 16), tbf[i]), `bf16 of ${src[i]}: torch ${tbf[i]}`);
  }
});

test('F16 decode/encode is a bijection on all 65536 non-NaN bit patterns', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16BitsToF32(h);
    if (Number.isNaN(v)) {
      assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
      assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(v))));
      continue;
    }
    assert.equal(f32ToF16Bits(v), h, `h=0x${h.toString(16)} (${v})`);
  }
});

/** Independent reference: nearest binary16 by searching the sorted table of all values, ties to even. */
function refF16(x: number): number {
  if (Number.isNaN(x)) return NaN;
  // Positive finite f16 values ascending (bits 0..0x7bff), then 2^16 standing for +inf: IEEE rounds to inf
  // exactly when |x| >= 65504 + half an ulp, i.e. as if inf were the next value with an even mantissa.
  const a = Math.abs(x);
  let lo = 0;
  let hi = 0x7c00; // table index 0x7c00 = 65536 ("inf")
  const val = (i: number): number => (i === 0x7c00 ? 65536 : f16BitsToF32(i));
  if (a >= 65536) return Math.sign(x) * Infinity;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (val(mid) <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - val(lo);
  const dh = val(hi) - a;
  const pick = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
  const r = pick === 0x7c00 ? Infinity : val(pick);
  return x < 0 || Object.is(x, -0) ? -r : r;
}

test('F16/BF16 encoding is round-to-nearest-even (random f32 bit patterns vs an independent search)', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 40000; i++) {
    // Mix raw bit patterns (all exponents) with values concentrated in the f16 range and exact ties.
    const kind = i % 3;
    let x: number;
    if (kind === 0) x = bitsToF32(rng.nextU32());
    else if (kind === 1) x = bitsToF32(((rng.int(2) << 31) | ((rng.int(36) + 97) << 23) | rng.int(1 << 23)) >>> 0);
    else x = bitsToF32(((rng.int(2) << 31) | ((rng.int(36) + 97) << 23) | (rng.int(1 << 10) << 13) | 0x1000) >>> 0);
    const got = f16BitsToF32(f32ToF16Bits(x));
    const want = refF16(x);
    assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), `f16(${x}) = ${got}, want ${want}`);

    // BF16: candidates are the f32 values with the low 16 bits cleared and the next one up.
    f32[0] = x;
    const u = u32[0];
    if (Number.isNaN(x)) {
      assert.ok(Number.isNaN(bitsToF32(f32ToBf16Bits(x) << 16)));
      continue;
    }
    const down = (u & 0xffff0000) >>> 0;
    const up = down + 0x10000;
    const [vd, vu] = [bitsToF32(down), bitsToF32(up)];
    const dd = Math.abs(x - vd);
    const du = Math.abs(vu - x); // vu may be ±inf when x is near the f32 max: then du = inf unless x is a tie
    let want16: number;
    if (!Number.isFinite(vu) && Number.isFinite(x)) {
      // Overflow threshold: halfway between max bf16 (0x7f7f) and 2^128.
      const maxBf = bitsToF32(down);
      const halfway = (maxBf + 2 ** 128) / 2;
      want16 = Math.abs(x) >= halfway ? up >>> 16 : down >>> 16;
    } else want16 = dd < du ? down >>> 16 : du < dd ? up >>> 16 : ((down >>> 16) & 1) === 0 ? down >>> 16 : up >>> 16;
    assert.equal(f32ToBf16Bits(x), want16 & 0xffff, `bf16(${x})`);
  }
});

test('round trip: F32 exact, F16/BF16 equal to their encoding, I32/I64 exact, metadata, Map input', () => {
  const rng = new Rng(3);
  const a = Float32Array.from({ length: 60 }, () => rng.normal() * 10);
  const file = path.join(tmp, 'rt.safetensors');
  const tensors = new Map<string, TensorToWrite>([
    ['w.f32', { shape: [3, 4, 5], data: a }],
    ['w.f16', { shape: [60], data: a, dtype: 'F16' }],
    ['w.bf16', { shape: [6, 10], data: a, dtype: 'BF16' }],
    ['ids32', { shape: [4], data: Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]) }],
    ['ids64', { shape: [2, 1], data: BigInt64Array.from([2n ** 62n, -5n]) }],
    ['scalar', { shape: [], data: Float32Array.of(0.5) }],
    ['zero', { shape: [0], data: new Float32Array(0) }],
    ['sub', { shape: [2], data: a.subarray(3, 5) }],
  ]);
  writeSafetensors(file, tensors, { epoch: '3', 'κ': 'λ' });
  const r = readSafetensors(file);
  assert.deepEqual(r.metadata, { epoch: '3', 'κ': 'λ' });
  assert.deepEqual(r.tensors.get('w.f32'), { dtype: 'F32', shape: [3, 4, 5], data: a });
  assert.deepEqual([...r.tensors.get('w.f16')!.data], [...a].map((v) => f16BitsToF32(f32ToF16Bits(v))));
  assert.deepEqual([...r.tensors.get('w.bf16')!.data], [...a].map((v) => bitsToF32(f32ToBf16Bits(v) << 16)));
  assert.deepEqual(r.integers.get('ids32'), { dtype: 'I32', shape: [4], data: Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]) });
  assert.deepEqual(r.integers.get('ids64')?.data, BigInt64Array.from([2n ** 62n, -5n]));
  assert.deepEqual(r.tensors.get('scalar'), { dtype: 'F32', shape: [], data: Float32Array.of(0.5) });
  assert.deepEqual(r.tensors.get('zero')?.shape, [0]);
  assert.deepEqual([...r.tensors.get('sub')!.data], [a[3], a[4]]);
  // A float dtype option applies to tensors without an explicit dtype.
  writeSafetensors(file, { x: { shape: [2], data: Float32Array.of(1 / 3, 70000) } }, {}, { floatDtype: 'F16' });
  const x = readSafetensors(file).tensors.get('x')!;
  assert.equal(x.dtype, 'F16');
  assert.deepEqual([...x.data], [f16BitsToF32(0x3555), Infinity]);
});

test('writer layout matches the Python library: 8-byte padded header, metadata first, dtype-desc then name order', () => {
  const bytes = concat(serializeSafetensors(
    { b: { shape: [1], data: Float32Array.of(1) }, a: { shape: [3], data: Float32Array.of(1, 2, 3), dtype: 'F16' }, c: { shape: [1], data: BigInt64Array.of(1n) } },
    { k: 'v' },
  ));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.equal(header.trimEnd(), '{"__metadata__":{"k":"v"},"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"F16","shape":[3],"data_offsets":[12,18]}}');
  assert.equal(bytes.byteLength, 8 + n + 18);
  assert.equal(parseSafetensors(bytes, 'mem').tensors.size, 2);
});

test('writer rejects data that does not match the shape', () => {
  assert.throws(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }), /shape \[2,2\] but 3 values/);
});

function header(obj: unknown, buf = new Uint8Array(0)): Uint8Array {
  const h = Buffer.from(JSON.stringify(obj));
  const out = new Uint8Array(8 + h.length + buf.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(buf, 8 + h.length);
  return out;
}

test('malformed files give UserErrors that name the file, the problem and the expectation', () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(3), /model\.safetensors: file is 3 bytes/],
    [header({ 'h.0.w': { dtype: 'F32', shape: [4, 4], data_offsets: [0, 96] } }, new Uint8Array(96)),
      /model\.safetensors: tensor "h\.0\.w" has data_offsets \[0, 96\] \(96 bytes\) but shape \[4,4\] of F32 needs 64 bytes/],
    [header({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype "Q4"; expected one of F64, F32/],
    [header({ w: { dtype: 'F32', shape: [2 ** 53, 2 ** 53], data_offsets: [0, 8] } }, new Uint8Array(8)), /every dimension must be a non-negative integer/],
    [header({ w: { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs more than the 8-byte buffer/],
    [header({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, new Uint8Array(6)), /"b" data_offsets \[2, 6\] overlap tensor "a"/],
    [header({ a: { dtype: 'U8', shape: [2], data_offsets: [2, 4] } }, new Uint8Array(4)), /bytes \[0, 2\) .* not covered/],
    [header({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(5)), /3 trailing bytes/],
    [header({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }), /data buffer is only 0 bytes/],
    [header({ __metadata__: { a: 1 } }), /"__metadata__" value for "a" is number; expected a string/],
    [header({ a: { dtype: 'U8', shape: [1], data_offsets: [-1, 0] } }), /expected two integers 0 <= begin <= end/],
    [header([1, 2]), /must be a JSON object/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes, 'model.safetensors'), (e: unknown) => {
      assert.ok(e instanceof UserError, `not a UserError: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
  const huge = header({});
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  assert.throws(() => parseSafetensors(huge, 'x.st'), /x\.st: header length 9223372036854775808 exceeds/);
});

test('readSafetensors: missing file and directories are UserErrors naming the path', () => {
  assert.throws(() => readSafetensors(path.join(tmp, 'nope.safetensors')), (e: unknown) => e instanceof UserError && /nope\.safetensors: no such file/.test(e.message));
  assert.throws(() => readSafetensors(tmp), (e: unknown) => e instanceof UserError && /not a regular file/.test(e.message));
});

const python = process.env.LMDISTILL_PYTHON;
test('Python safetensors.torch.load_file reads what we write (LMDISTILL_PYTHON)', { skip: python ? false : 'set LMDISTILL_PYTHON to a python with torch + safetensors to run this interop check' }, () => {
  const rng = new Rng(11);
  const a = Float32Array.from({ length: 257 }, (_, i) => (i < 8 ? [0, -0, 65504, 65520, 2 ** -25, 3 * 2 ** -25, 1e-8, 3.4e38][i] : rng.normal() * 10 ** rng.int(8) * 1e-4));
  const file = path.join(tmp, 'ours.safetensors');
  writeSafetensors(file, {
    'x.f32': { shape: [257], data: a },
    'x.f16': { shape: [257], data: a, dtype: 'F16' },
    'x.bf16': { shape: [257], data: a, dtype: 'BF16' },
    'm.f32': { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
    'ids.i64': { shape: [3], data: BigInt64Array.of(-1n, 2n ** 40n, 7n) },
    'ids.i32': { shape: [1, 2], data: Int32Array.of(-7, 9) },
  }, { who: 'lmdistill' });
  const script = `
import json, sys, torch
from safetensors import safe_open
from safetensors.torch import load_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], "pt") as f: meta = f.metadata()
x = t["x.f32"]
print(json.dumps({
  "meta": meta,
  "keys": sorted(t.keys()),
  "dtypes": {k: str(v.dtype) for k, v in t.items()},
  "shapes": {k: list(v.shape) for k, v in t.items()},
  "f32": [float(v) for v in x.tolist()],
  "f16_matches_torch": bool(torch.equal(t["x.f16"], x.to(torch.float16))),
  "bf16_matches_torch": bool(torch.equal(t["x.bf16"], x.to(torch.bfloat16))),
  "m": t["m.f32"].flatten().tolist(),
  "i64": [str(v) for v in t["ids.i64"].tolist()],
  "i32": t["ids.i32"].flatten().tolist(),
}))`;
  const out = JSON.parse(execFileSync(python!, ['-c', script, file], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.deepEqual(out.meta, { who: 'lmdistill' });
  assert.deepEqual(out.keys, ['ids.i32', 'ids.i64', 'm.f32', 'x.bf16', 'x.f16', 'x.f32']);
  assert.deepEqual(out.dtypes, { 'ids.i32': 'torch.int32', 'ids.i64': 'torch.int64', 'm.f32': 'torch.float32', 'x.bf16': 'torch.bfloat16', 'x.f16': 'torch.float16', 'x.f32': 'torch.float32' });
  assert.deepEqual((out.shapes as Record<string, number[]>)['ids.i32'], [1, 2]);
  assert.deepEqual(out.f32, [...a]);
  assert.equal(out.f16_matches_torch, true);
  assert.equal(out.bf16_matches_torch, true);
  assert.deepEqual(out.m, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(out.i64, ['-1', String(2 ** 40), '7']);
  assert.deepEqual(out.i32, [-7, 9]);
});
