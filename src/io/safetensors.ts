/**
 * Hand-written reader/writer for the Hugging Face safetensors format:
 *
 *   [u64 little-endian N][N bytes of JSON header][byte buffer]
 *   header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
 *              "__metadata__": { "<key>": "<string>" } }      (offsets are relative to the byte buffer)
 *
 * The reader is built for hostile input: every malformed file is a `UserError` that names the file, what is
 * wrong and what was expected; sizes are validated before anything is allocated, so absurd shapes or
 * header lengths cannot trigger huge allocations. Validation follows the Python/Rust `safetensors` crate:
 * tensors must tile the buffer exactly (no overlaps, no holes, no trailing bytes).
 */
import * as fs from 'node:fs';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

/** Every dtype name the format defines that we can decode (sub-byte F4/F6 and F8_E8M0 are rejected). */
export type Dtype =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'U64' | 'I32' | 'U32' | 'I16' | 'U16' | 'I8' | 'U8' | 'BOOL';
export type FloatDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2';
export type IntDtype = Exclude<Dtype, FloatDtype>;

/** Bytes per element. */
const DTYPE_SIZE: Record<Dtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};
const FLOAT_DTYPES = new Set<string>(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);
/** The Rust crate's `Dtype` enum order; its writer lays data out by descending order (alignment), then name. */
const RUST_DTYPE_ORDER: Dtype[] = [
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
];
/** Same limit as the Python/Rust library. */
export const MAX_HEADER_BYTES = 100_000_000;

/** A floating-point tensor, decoded to float32. `data.length` = product of `shape`. */
export interface FloatTensor {
  dtype: FloatDtype;
  shape: number[];
  data: Float32Array;
}
/** An integer/bool tensor, kept exact: I64/U64 → BigInt64Array/BigUint64Array, BOOL → Uint8Array (0/1). */
export type IntTensor =
  | { dtype: 'I64'; shape: number[]; data: BigInt64Array }
  | { dtype: 'U64'; shape: number[]; data: BigUint64Array }
  | { dtype: 'I32'; shape: number[]; data: Int32Array }
  | { dtype: 'U32'; shape: number[]; data: Uint32Array }
  | { dtype: 'I16'; shape: number[]; data: Int16Array }
  | { dtype: 'U16'; shape: number[]; data: Uint16Array }
  | { dtype: 'I8'; shape: number[]; data: Int8Array }
  | { dtype: 'U8' | 'BOOL'; shape: number[]; data: Uint8Array };

/** Contents of a safetensors file. Float dtypes land in `tensors`; integer/bool dtypes in `integers`. */
export interface SafetensorsContents {
  tensors: Map<string, FloatTensor>;
  integers: Map<string, IntTensor>;
  metadata: Record<string, string>;
}

/** What `writeSafetensors` accepts per tensor. `dtype` defaults to the option/the array's natural dtype. */
export type TensorToWrite =
  | { shape: readonly number[]; data: Float32Array; dtype?: 'F32' | 'F16' | 'BF16' }
  | { shape: readonly number[]; data: Int32Array; dtype?: 'I32' }
  | { shape: readonly number[]; data: BigInt64Array; dtype?: 'I64' };

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

const INT_ARRAY = {
  I64: BigInt64Array, U64: BigUint64Array, I32: Int32Array, U32: Uint32Array,
  I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
} satisfies Record<IntDtype, unknown>;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------- fp16 / bf16 / fp8 conversions

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Exact IEEE binary16 bits → number (subnormals, ±inf, NaN). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** number → binary16 bits, rounding the float32 value of `x` to nearest, ties to even; overflow → ±inf. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN stays NaN (quiet)
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rem > half || (rem === half && m & 1) ? m + 1 : m);
  }
  const m = mant >>> 13;
  const rem = mant & 0x1fff;
  // Adding to (e << 10 | m) lets a mantissa carry roll into the exponent (and up to inf) correctly.
  return sign | (((e << 10) | m) + (rem > 0x1000 || (rem === 0x1000 && m & 1) ? 1 : 0));
}

/** number → bfloat16 bits (upper half of float32), round to nearest even; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** FP8 decoders (OCP spec): E4M3 has no inf and NaN at S.1111.111; E5M2 is IEEE-like. */
function fp8Lut(dtype: 'F8_E4M3' | 'F8_E5M2'): Float32Array {
  const lut = new Float32Array(256);
  const [mBits, bias] = dtype === 'F8_E4M3' ? [3, 7] : [2, 15];
  const eMax = dtype === 'F8_E4M3' ? 15 : 31;
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b & 0x7f) >>> mBits;
    const mant = b & ((1 << mBits) - 1);
    if (dtype === 'F8_E4M3' && (b & 0x7f) === 0x7f) lut[b] = NaN;
    else if (dtype === 'F8_E5M2' && exp === eMax) lut[b] = mant ? NaN : sign * Infinity;
    else if (exp === 0) lut[b] = sign * mant * 2 ** (1 - bias - mBits);
    else lut[b] = sign * ((1 << mBits) + mant) * 2 ** (exp - bias - mBits);
  }
  return lut;
}

// ---------------------------------------------------------------- parsing

function fail(source: string, msg: string): never {
  throw new UserError(`${source}: ${msg}`);
}

/** Short, safe rendering of an untrusted JSON value (never recurses: nested values may be very deep). */
function fmtValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  if (Array.isArray(v)) {
    const shown = v.slice(0, 8).map((d) => (Array.isArray(d) ? '[…]' : typeof d === 'object' && d !== null ? '{…}' : fmtValue(d)));
    return `[${shown.join(',')}${v.length > 8 ? `,…(${v.length} items)` : ''}]`;
  }
  return typeof v === 'object' ? '{…}' : typeOf(v);
}

function quote(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

/**
 * Reads the 8-byte length prefix. Returns the header length after checking it against the file size and
 * MAX_HEADER_BYTES (both checked in BigInt before any allocation).
 */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) fail(source, `file is ${fileSize} bytes; a safetensors file needs at least an 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    fail(source, `header length ${n} exceeds the ${fileSize - 8} bytes after the length prefix (truncated or not a safetensors file)`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) fail(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) fail(source, `header length ${n} is too small for a JSON object`);
  return Number(n);
}

/** serde_json's default recursion limit, which the Python library inherits. */
const MAX_JSON_DEPTH = 128;

/**
 * Maximum bracket nesting of a JSON text, ignoring brackets inside strings. Checked before JSON.parse
 * because V8 parses pathological million-level nesting slowly (seconds), which a valid header never has.
 */
function maxNesting(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
      if (max > MAX_JSON_DEPTH) return max;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** Validates the JSON header against a byte buffer of `bufLen` bytes; returns entries sorted by offset. */
function parseHeader(headerBytes: Uint8Array, bufLen: number, source: string): { entries: Entry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(source, `header must be a JSON object starting with "{", found ${JSON.stringify(text.slice(0, 20))}`);
  if (maxNesting(headerBytes) > MAX_JSON_DEPTH) {
    fail(source, `header JSON nests deeper than ${MAX_JSON_DEPTH} levels; a safetensors header needs 3`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(source, `header is not valid JSON (${err instanceof Error ? err.message.slice(0, 200) : 'parse error'})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(source, 'header must be a JSON object');

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null) continue; // the Rust crate reads `null` as "no metadata"
      if (typeof info !== 'object' || info === null || Array.isArray(info)) fail(source, '"__metadata__" must be an object of strings');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(source, `"__metadata__" value for ${quote(k)} is ${typeOf(v)}; expected a string`);
      }
      metadata = Object.fromEntries(Object.entries(info)) as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(name, info, bufLen, source));
  }

  // Tensors must tile [0, bufLen) exactly, as the Rust crate requires.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin < pos) {
      fail(source, `tensor ${quote(e.name)} data_offsets [${e.begin}, ${e.end}] overlap tensor ${quote(prev?.name ?? '')} which ends at ${pos}`);
    }
    if (e.begin > pos) fail(source, `bytes [${pos}, ${e.begin}) of the data buffer are not covered by any tensor (hole before ${quote(e.name)})`);
    pos = e.end;
    prev = e;
  }
  if (pos !== bufLen) fail(source, `data buffer is ${bufLen} bytes but tensors cover only [0, ${pos}); ${bufLen - pos} trailing bytes`);
  return { entries, metadata };
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function parseEntry(name: string, info: unknown, bufLen: number, source: string): Entry {
  const t = `tensor ${quote(name)}`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) fail(source, `${t} must be an object with dtype, shape, data_offsets; got ${typeOf(info)}`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(source, `${t} has dtype ${fmtValue(dtype)}; expected a string like "F32"`);
  if (!Object.hasOwn(DTYPE_SIZE, dtype)) {
    fail(source, `${t} has unsupported dtype ${JSON.stringify(dtype.slice(0, 20))}; expected one of ${Object.keys(DTYPE_SIZE).join(', ')}`);
  }
  const dt = dtype as Dtype;
  if (!Array.isArray(shape)) fail(source, `${t} has shape ${typeOf(shape)}; expected an array of non-negative integers`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(source, `${t} has shape ${fmtValue(shape)}; every dimension must be a non-negative integer`);
    }
  }
  const dims = shape as number[];
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(source, `${t} has data_offsets ${fmtValue(offsets)}; expected [begin, end]`);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
    fail(source, `${t} has data_offsets ${fmtValue(offsets)}; expected two integers 0 <= begin <= end`);
  }
  if (end > bufLen) fail(source, `${t} has data_offsets [${begin}, ${end}] but the data buffer is only ${bufLen} bytes (truncated file?)`);
  // Element count, bailing out as soon as it exceeds what the buffer could hold (no overflow, no BigInt).
  const size = DTYPE_SIZE[dt];
  let elems = dims.includes(0) ? 0 : 1;
  for (const d of dims) if (elems > 0 && (elems *= d) * size > bufLen) break;
  const need = elems * size;
  const tooBig = need > bufLen;
  if (tooBig || need !== end - begin) {
    const needStr = tooBig ? `more than the ${bufLen}-byte buffer` : `${need} bytes`;
    fail(source, `${t} has data_offsets [${begin}, ${end}] (${end - begin} bytes) but shape ${fmtValue(dims)} of ${dt} needs ${needStr}`);
  }
  return { name, dtype: dt, shape: dims.slice(), begin, end };
}

/**
 * Decodes one tensor's bytes (exactly `elems * size` of them). `owned`: `bytes` is a fresh buffer of its
 * own that can be adopted without a copy; otherwise the bytes are copied (they may be unaligned).
 */
function decode(e: Entry, bytes: Uint8Array, owned: boolean): FloatTensor | IntTensor {
  const n = bytes.byteLength / DTYPE_SIZE[e.dtype];
  const shape = e.shape;
  const copy = (): ArrayBuffer => {
    if (owned && LITTLE_ENDIAN && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
    const buf = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(buf).set(bytes);
    if (!LITTLE_ENDIAN && DTYPE_SIZE[e.dtype] > 1) {
      const v = new Uint8Array(buf);
      const s = DTYPE_SIZE[e.dtype];
      for (let i = 0; i < v.length; i += s) v.subarray(i, i + s).reverse();
    }
    return buf;
  };
  switch (e.dtype) {
    case 'F32':
      return { dtype: 'F32', shape, data: new Float32Array(copy()) };
    case 'F64':
      return { dtype: 'F64', shape, data: Float32Array.from(new Float64Array(copy())) };
    case 'F16': {
      const lut = f16Lut();
      const h = new Uint16Array(copy());
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = lut[h[i]];
      return { dtype: 'F16', shape, data: out };
    }
    case 'BF16': {
      const h = new Uint16Array(copy());
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return { dtype: 'BF16', shape, data: out };
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const lut = fp8Lut(e.dtype);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = lut[bytes[i]];
      return { dtype: e.dtype, shape, data: out };
    }
    default:
      // Integer dtypes: adopt the bytes as the matching typed array (the union is keyed by dtype).
      return { dtype: e.dtype, shape, data: new INT_ARRAY[e.dtype](copy()) } as IntTensor;
  }
}

function collect(entries: Entry[], metadata: Record<string, string>, read: (e: Entry) => Uint8Array, owned: boolean): SafetensorsContents {
  const tensors = new Map<string, FloatTensor>();
  const integers = new Map<string, IntTensor>();
  // Map insertion follows name order so iteration is deterministic whatever the header order was.
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const t = decode(e, read(e), owned);
    if (FLOAT_DTYPES.has(t.dtype)) tensors.set(e.name, t as FloatTensor);
    else integers.set(e.name, t as IntTensor);
  }
  return { tensors, integers, metadata };
}

/**
 * Parses a whole safetensors file held in memory. `source` names it in error messages.
 * Float tensors (F64/F32/F16/BF16/F8) are decoded to float32; integer tensors are returned exactly.
 * Throws `UserError` ("<source>: <what is wrong>; <what was expected>") on any malformed input.
 */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const n = headerLength(bytes.subarray(0, 8), bytes.byteLength, source);
  const base = 8 + n;
  const { entries, metadata } = parseHeader(bytes.subarray(8, base), bytes.byteLength - base, source);
  return collect(entries, metadata, (e) => bytes.subarray(base + e.begin, base + e.end), false);
}

/**
 * Reads a safetensors file from disk. The header is read and validated against the file size first,
 * then each tensor is read on its own (no whole-file buffer; files over 2 GB work if each tensor is
 * smaller). Throws `UserError` naming `filePath` for missing/unreadable/malformed files.
 */
export function readSafetensors(filePath: string): SafetensorsContents {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(filePath, code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? String(err)})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) fail(filePath, 'not a regular file');
    const size = st.size;
    const readAt = (pos: number, len: number): Uint8Array => {
      const buf = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const r = fs.readSync(fd, buf, got, len - got, pos + got);
        if (r === 0) fail(filePath, `file shrank while reading (expected ${len} bytes at offset ${pos})`);
        got += r;
      }
      return buf;
    };
    const n = headerLength(readAt(0, Math.min(8, size)), size, filePath);
    const base = 8 + n;
    const { entries, metadata } = parseHeader(readAt(8, n), size - base, filePath);
    return collect(entries, metadata, (e) => readAt(base + e.begin, e.end - e.begin), true);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code) fail(filePath, `read failed (${code})`);
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- writing

function encode(name: string, t: TensorToWrite, floatDtype: 'F32' | 'F16' | 'BF16'): { dtype: Dtype; bytes: Uint8Array } {
  const elems = t.shape.reduce((a, b) => a * b, 1);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elems !== t.data.length) {
    throw new RangeError(`safetensors: tensor ${quote(name)} has shape [${t.shape.join(',')}] but ${t.data.length} values`);
  }
  const view = (a: Float32Array | Int32Array | BigInt64Array | Uint16Array): Uint8Array => {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return b;
    const c = b.slice();
    for (let i = 0; i < c.length; i += a.BYTES_PER_ELEMENT) c.subarray(i, i + a.BYTES_PER_ELEMENT).reverse();
    return c;
  };
  if (t.data instanceof Int32Array) return { dtype: 'I32', bytes: view(t.data) };
  if (t.data instanceof BigInt64Array) return { dtype: 'I64', bytes: view(t.data) };
  const data = t.data;
  const dtype = (t.dtype as 'F32' | 'F16' | 'BF16' | undefined) ?? floatDtype;
  if (dtype === 'F32') return { dtype, bytes: view(data) };
  const out = new Uint16Array(data.length);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]);
  return { dtype, bytes: view(out) };
}

/**
 * Serialises tensors to safetensors chunks: [length prefix + header, tensor bytes...]. Data is laid out like
 * the Rust crate (descending dtype, then name) so every tensor stays aligned to its element size; the header
 * lists `__metadata__` first, then tensors in that order, and is space-padded to a multiple of 8 bytes.
 * `floatDtype` (default F32) applies to Float32Array tensors without their own `dtype`.
 */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
  floatDtype: 'F32' | 'F16' | 'BF16' = 'F32',
): Uint8Array[] {
  const items = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].map(([name, t]) => {
    if (name === '__metadata__') throw new RangeError('safetensors: "__metadata__" cannot be a tensor name');
    return { name, shape: [...t.shape], ...encode(name, t, floatDtype) };
  });
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new RangeError(`safetensors: metadata ${quote(k)} must be a string`);
  }
  const rank = (d: Dtype): number => RUST_DTYPE_ORDER.indexOf(d);
  items.sort((a, b) => rank(b.dtype) - rank(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const it of items) {
    header[it.name] = { dtype: it.dtype, shape: it.shape, data_offsets: [off, off + it.bytes.byteLength] };
    off += it.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.from(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes.byteLength % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const head = new Uint8Array(8 + headerBytes.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  head.set(headerBytes, 8);
  return [head, ...items.map((it) => it.bytes)];
}

/**
 * Writes tensors to `filePath` atomically (temp file + fsync + rename). Float32Array tensors are stored
 * as `floatDtype` (F32 default; F16/BF16 round to nearest even) unless they set `dtype`; Int32Array →
 * I32, BigInt64Array → I64. Throws `UserError` on I/O failure, `RangeError` on shape/data mismatch.
 */
export function writeSafetensors(
  filePath: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
  options: { floatDtype?: 'F32' | 'F16' | 'BF16' } = {},
): void {
  writeFileAtomic(filePath, serializeSafetensors(tensors, metadata, options.floatDtype ?? 'F32'));
}
