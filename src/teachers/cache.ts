/**
 * An on-disk top-k teacher cache: the teacher's k most likely next tokens at every position of every row
 * of a packed dataset, computed once (`buildTeacherCache`, src/teachers/cache-build.ts, or
 * `lmdistill teacher-cache`) and read back by `CachedTeacher` during any number of training runs.
 *
 * Layout of a cache directory (see docs/teacher-cache.md):
 *
 *   manifest.json        format/version, k, vocabSize, seqLen, id width, dataset fingerprint, teacher name,
 *                        tokenizer hash and the list of *committed* shards (row range, bytes, sha256)
 *   shard-000000.bin …   shard s holds rows [s·shardRecords, min((s+1)·shardRecords, rows))
 *
 * Shard file (little-endian):
 *
 *   header   64 bytes   magic "LMDTOPK1", u32 version, k, seqLen, idBytes, vocabSize, count, f64 firstRow
 *   records  count × recordBytes; record r = row firstRow + r:
 *              ids      [T, k] uint16 (vocabSize ≤ 65536) or uint32
 *              logprobs [T, k] IEEE fp16, natural log, sorted descending per position
 *   crcs     count × u32   CRC-32 of each record (checked on every read)
 *   keys     count × 8 B   row key: the first 8 bytes of sha256 over the row's T input tokens (int32 LE)
 *
 * Bytes per token = k · (idBytes + 2): k = 16 and V ≤ 65536 → 16 · (2 + 2) = 64 B/token (+12 B per row
 * of crc and key). A row's record depends only on its T input tokens (the teacher is causal and sees only
 * the input), which is why rows can be found by the hash of their input.
 *
 * Shards are written whole and atomically, then the manifest is replaced atomically, so a crash at any
 * instant leaves only complete shards listed; an unlisted shard file is simply redone on resume.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import type { PackedDataset } from '../data/packing.js';
import { UserError } from '../errors.js';
import { f16BitsToF32 } from '../io/safetensors.js';
import type { Teacher, TeacherBatch, TopK } from './teacher.js';

export const CACHE_FORMAT = 'lmdistill-topk-cache';
export const CACHE_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const SHARD_MAGIC = 'LMDTOPK1';
export const SHARD_HEADER_BYTES = 64;
/** bytes of a row key (truncated sha256 of the row's input tokens) */
export const ROW_KEY_BYTES = 8;

// Records are decoded through typed-array views; every platform Node ships on is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('teacher cache: big-endian hosts are not supported');

const shardEntrySchema = z.strictObject({
  index: z.number().int().min(0),
  file: z.string().regex(/^shard-\d{6,}\.bin$/),
  firstRow: z.number().int().min(0),
  count: z.number().int().positive(),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ShardEntry = z.output<typeof shardEntrySchema>;

export const manifestSchema = z.strictObject({
  format: z.literal(CACHE_FORMAT),
  version: z.literal(CACHE_VERSION),
  /** top-k entries per position */
  k: z.number().int().positive(),
  vocabSize: z.number().int().positive(),
  seqLen: z.number().int().positive(),
  /** 2 = uint16 ids (vocabSize ≤ 65536), 4 = uint32 */
  idBytes: z.union([z.literal(2), z.literal(4)]),
  logprobDtype: z.literal('F16'),
  /** rows of the dataset = records of the complete cache */
  rows: z.number().int().positive(),
  shardRecords: z.number().int().positive(),
  /** k · seqLen · (idBytes + 2) */
  recordBytes: z.number().int().positive(),
  /** sha256 of the packed dataset (see datasetFingerprint) */
  datasetFingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  rowKey: z.literal('sha256-64(input int32le)'),
  teacher: z.string(),
  tokenizer: z.string().nullable(),
  /** committed shards, sorted by index */
  shards: z.array(shardEntrySchema),
  /** true once every shard is committed */
  complete: z.boolean(),
});
export type CacheManifest = z.output<typeof manifestSchema>;

/** Record geometry shared by the writer and the reader. */
export function recordBytesFor(k: number, seqLen: number, idBytes: 2 | 4): number {
  return k * seqLen * (idBytes + 2);
}
/** uint16 ids when every id fits (V ≤ 65536), else uint32. */
export function idBytesFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}
export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(6, '0')}.bin`;
}
export function shardCount(rows: number, shardRecords: number): number {
  return Math.ceil(rows / shardRecords);
}
/** Bytes of a whole shard file holding `count` records. */
export function shardBytesFor(count: number, recordBytes: number): number {
  return SHARD_HEADER_BYTES + count * (recordBytes + 4 + ROW_KEY_BYTES);
}

const bytesOf = (a: Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/**
 * sha256 over a packed dataset ([rows, seqLen + 1] int32 LE, with seqLen in front), as "sha256:<hex>".
 * Two datasets share it only if every row matches, so a cache is never read against other data.
 */
export function datasetFingerprint(dataset: PackedDataset): string {
  const h = createHash('sha256');
  const head = Buffer.alloc(8);
  head.writeUInt32LE(dataset.seqLen, 0);
  head.writeUInt32LE(dataset.length, 4);
  h.update(head);
  h.update(bytesOf(dataset.data));
  return `sha256:${h.digest('hex')}`;
}

/** Row key: the first 8 bytes of sha256 over the T input tokens (int32 LE), as two uint32 [hi, lo]. */
export function rowKey(input: Int32Array): [number, number] {
  const d = createHash('sha256').update(bytesOf(input)).digest();
  return [d.readUInt32LE(0), d.readUInt32LE(4)];
}

/** The 64-byte shard header (see module comment). */
export function encodeShardHeader(h: { k: number; seqLen: number; idBytes: 2 | 4; vocabSize: number; count: number; firstRow: number }): Buffer {
  const b = Buffer.alloc(SHARD_HEADER_BYTES);
  b.write(SHARD_MAGIC, 0, 'latin1');
  b.writeUInt32LE(CACHE_VERSION, 8);
  b.writeUInt32LE(h.k, 12);
  b.writeUInt32LE(h.seqLen, 16);
  b.writeUInt32LE(h.idBytes, 20);
  b.writeUInt32LE(h.vocabSize, 24);
  b.writeUInt32LE(h.count, 28);
  b.writeDoubleLE(h.firstRow, 32);
  return b;
}

/** Reads and parses a manifest; any problem is a UserError naming the file. */
export function readManifest(dir: string): CacheManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${dir} is not a teacher cache (no ${MANIFEST_FILE}); build one with \`lmdistill teacher-cache\``, 2);
    throw new UserError(`cannot read ${file}: ${code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file} is corrupt (invalid JSON: ${(e as Error).message})`);
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) {
    const iss = r.error.issues[0];
    throw new UserError(`${file} is not a valid teacher-cache manifest: ${iss.path.join('.') || '(root)'}: ${iss.message}`);
  }
  const m = r.data;
  const check = (cond: boolean, what: string): void => { if (!cond) throw new UserError(`${file} is inconsistent: ${what}`); };
  check(m.idBytes === idBytesFor(m.vocabSize) || m.idBytes === 4, `idBytes ${m.idBytes} cannot hold vocabSize ${m.vocabSize}`);
  check(m.recordBytes === recordBytesFor(m.k, m.seqLen, m.idBytes), `recordBytes ${m.recordBytes} ≠ k·seqLen·(idBytes+2)`);
  const nShards = shardCount(m.rows, m.shardRecords);
  let prev = -1;
  for (const s of m.shards) {
    check(s.index > prev && s.index < nShards, `shard ${s.index} listed out of order or out of range`);
    prev = s.index;
    const first = s.index * m.shardRecords;
    check(s.file === shardFileName(s.index) && s.firstRow === first && s.count === Math.min(m.shardRecords, m.rows - first),
      `shard entry ${s.index} (${s.file}) does not match rows/shardRecords`);
    check(s.bytes === shardBytesFor(s.count, m.recordBytes), `shard ${s.file} has the wrong byte size`);
  }
  check(m.complete === (m.shards.length === nShards), `"complete" is ${m.complete} with ${m.shards.length}/${nShards} shards`);
  return m;
}

/**
 * Checks a shard file's size and header against its manifest entry (cheap: one 64-byte read).
 * Returns null if it is fine, else the reason.
 */
export function checkShardFile(dir: string, m: CacheManifest, s: ShardEntry): string | null {
  const file = path.join(dir, s.file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    return `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== s.bytes) return `${size} bytes, expected ${s.bytes} (truncated or overwritten)`;
    const h = Buffer.alloc(SHARD_HEADER_BYTES);
    fs.readSync(fd, h, 0, SHARD_HEADER_BYTES, 0);
    const want = encodeShardHeader({ k: m.k, seqLen: m.seqLen, idBytes: m.idBytes, vocabSize: m.vocabSize, count: s.count, firstRow: s.firstRow });
    if (!h.equals(want)) return 'header does not match the manifest (not a shard of this cache, or corrupt)';
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Streams a file through sha256 in 1 MiB reads (never the whole file in memory). */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export interface OpenCacheOptions {
  /**
   * The dataset the cache is meant for: its fingerprint must match the manifest's (clear error
   * otherwise), and rows found by `topk(batch)` are then confirmed token by token against it.
   */
  dataset?: PackedDataset;
  /** also check every shard's sha256 (reads each shard once, streamed); default false: size + header only */
  verify?: boolean;
  /** open a cache whose build has not finished (reading a missing row is then an error); default false */
  allowPartial?: boolean;
  /** open shard file descriptors kept at once (least recently used are closed); default 32 */
  maxOpenFiles?: number;
}

/** Counters of what the reader did, for tests and diagnostics. */
export interface CacheReadStats {
  /** bytes read from shard files (records, crc and key tables, headers) */
  bytesRead: number;
  /** records decoded */
  records: number;
}

let f16Lut: Float32Array | undefined;
/** fp16 bits → float32 through a 65536-entry table (256 KB, built once): ~10× faster than decoding each value. */
function f16Table(): Float32Array {
  if (!f16Lut) {
    f16Lut = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Lut[h] = f16BitsToF32(h);
  }
  return f16Lut;
}

interface OpenShard {
  fd: number;
  crcs: Uint32Array | null;
}

/**
 * A `Teacher` (dense = false) backed by a top-k cache. Two ways to ask for rows:
 *  - `topkForRows(rows, k)`: by dataset row index (fastest; for loaders that know their row indices);
 *  - `topk(batch, k)`: by content. Each batch row's T input tokens are hashed (the row key) and looked
 *    up in an in-memory table built lazily from the shards' key tables (12 bytes per row); with
 *    `dataset` given at open, the found row's tokens are compared with the batch to rule out collisions.
 * Only the records asked for are read (positional reads); shards are never loaded whole.
 */
export class CachedTeacher implements Teacher {
  readonly dense = false;
  readonly name: string;
  readonly vocabSize: number;
  readonly k: number;
  readonly seqLen: number;
  readonly rows: number;
  readonly stats: CacheReadStats = { bytesRead: 0, records: 0 };
  private readonly byIndex: (ShardEntry | undefined)[];
  private readonly open = new Map<number, OpenShard>();
  private readonly maxOpen: number;
  private table: { hi: Uint32Array; lo: Uint32Array; row: Int32Array; mask: number } | null = null;
  private closed = false;

  private constructor(readonly dir: string, readonly manifest: CacheManifest, private readonly dataset: PackedDataset | undefined, maxOpen: number) {
    this.name = `cache:${dir} (${manifest.teacher})`;
    this.vocabSize = manifest.vocabSize;
    this.k = manifest.k;
    this.seqLen = manifest.seqLen;
    this.rows = manifest.rows;
    this.byIndex = new Array(shardCount(manifest.rows, manifest.shardRecords));
    for (const s of manifest.shards) this.byIndex[s.index] = s;
    this.maxOpen = maxOpen;
  }

  /** Opens and validates a cache directory (see OpenCacheOptions). Throws UserError naming the bad file. */
  static open(dir: string, opts: OpenCacheOptions = {}): CachedTeacher {
    const m = readManifest(dir);
    if (!m.complete && !opts.allowPartial) {
      const n = shardCount(m.rows, m.shardRecords);
      throw new UserError(`teacher cache ${dir} is incomplete (${m.shards.length}/${n} shards): rerun \`lmdistill teacher-cache\` with the same arguments to finish it`, 2);
    }
    if (opts.dataset) {
      const d = opts.dataset;
      if (d.seqLen !== m.seqLen || d.length !== m.rows || datasetFingerprint(d) !== m.datasetFingerprint) {
        throw new UserError(`teacher cache ${dir} was built for a different dataset (${m.rows} rows of ${m.seqLen} tokens, ${m.datasetFingerprint.slice(0, 19)}…); `
          + `this one has ${d.length} rows of ${d.seqLen} tokens${d.seqLen === m.seqLen && d.length === m.rows ? ' with different tokens' : ''}. `
          + 'Rebuild the cache from the same data config, tokenizer and split', 2);
      }
    }
    for (const s of m.shards) {
      const problem = checkShardFile(dir, m, s);
      if (problem) throw new UserError(`teacher cache shard ${path.join(dir, s.file)}: ${problem}; delete it and rerun \`lmdistill teacher-cache\` to rebuild it`);
      if (opts.verify && sha256File(path.join(dir, s.file)) !== s.sha256) {
        throw new UserError(`teacher cache shard ${path.join(dir, s.file)} is corrupt (sha256 mismatch); delete it and rerun \`lmdistill teacher-cache\` to rebuild it`);
      }
    }
    return new CachedTeacher(dir, m, opts.dataset, opts.maxOpenFiles ?? 32);
  }

  /** Bytes one token costs on disk: k · (idBytes + 2). */
  get bytesPerToken(): number {
    return this.manifest.k * (this.manifest.idBytes + 2);
  }

  private shardFor(row: number): ShardEntry {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) throw new UserError(`row ${row} is outside the teacher cache ${this.dir} (${this.rows} rows)`, 2);
    const s = this.byIndex[Math.floor(row / this.manifest.shardRecords)];
    if (!s) throw new UserError(`row ${row} is not in the teacher cache ${this.dir} yet (its shard is not built); rerun \`lmdistill teacher-cache\` to finish the cache`, 2);
    return s;
  }

  private read(fd: number, file: string, buf: Uint8Array, pos: number): void {
    let off = 0;
    while (off < buf.byteLength) {
      const n = fs.readSync(fd, buf, off, buf.byteLength - off, pos + off);
      if (n === 0) throw new UserError(`teacher cache shard ${file} is truncated (read past its end at byte ${pos + off})`);
      off += n;
    }
    this.stats.bytesRead += buf.byteLength;
  }

  private shardHandle(s: ShardEntry): OpenShard {
    if (this.closed) throw new Error('CachedTeacher used after close()');
    let h = this.open.get(s.index);
    if (h) { // LRU: move to the back
      this.open.delete(s.index);
      this.open.set(s.index, h);
      return h;
    }
    if (this.open.size >= this.maxOpen) {
      const [oldest, oh] = this.open.entries().next().value as [number, OpenShard];
      fs.closeSync(oh.fd);
      this.open.delete(oldest);
    }
    const file = path.join(this.dir, s.file);
    try {
      h = { fd: fs.openSync(file, 'r'), crcs: null };
    } catch (e) {
      throw new UserError(`cannot open teacher cache shard ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    this.open.set(s.index, h);
    return h;
  }

  private crcTable(s: ShardEntry, h: OpenShard): Uint32Array {
    if (!h.crcs) {
      const b = new Uint8Array(4 * s.count);
      this.read(h.fd, path.join(this.dir, s.file), b, SHARD_HEADER_BYTES + s.count * this.manifest.recordBytes);
      h.crcs = new Uint32Array(b.buffer);
    }
    return h.crcs;
  }

  /** Reads, checks (CRC-32) and decodes the record of `row` into ids/logprobs at `out*[o ..]`, keeping the first `k`. */
  private readRecord(row: number, k: number, ids: Int32Array, lps: Float32Array, o: number): void {
    const s = this.shardFor(row);
    const h = this.shardHandle(s);
    const { recordBytes, k: K, seqLen: T, idBytes } = this.manifest;
    const r = row - s.firstRow;
    const buf = new Uint8Array(recordBytes);
    const file = path.join(this.dir, s.file);
    this.read(h.fd, file, buf, SHARD_HEADER_BYTES + r * recordBytes);
    if (crc32(buf) !== this.crcTable(s, h)[r]) {
      throw new UserError(`teacher cache shard ${file} is corrupt (record of row ${row} fails its CRC-32); delete the file and rerun \`lmdistill teacher-cache\``);
    }
    const idv = idBytes === 2 ? new Uint16Array(buf.buffer, 0, T * K) : new Uint32Array(buf.buffer, 0, T * K);
    const lpv = new Uint16Array(buf.buffer, T * K * idBytes, T * K); // fp16 bits, [T, K]
    const lut = f16Table();
    const V = this.vocabSize;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < k; j++) {
        const id = idv[t * K + j];
        if (id >= V) throw new UserError(`teacher cache shard ${file} is corrupt (row ${row} holds token id ${id} ≥ vocabSize ${V})`);
        ids[o + t * k + j] = id;
        lps[o + t * k + j] = lut[lpv[t * K + j]];
      }
    }
    this.stats.records++;
  }

  private checkK(k: number): number {
    if (!Number.isInteger(k) || k < 1) throw new UserError(`top-k must be a positive integer, got ${k}`, 2);
    if (k > this.k) throw new UserError(`the teacher cache ${this.dir} holds the top ${this.k} tokens per position; ${k} were asked for (rebuild it with --k ${k})`, 2);
    return k;
  }

  /**
   * Top-k of the given dataset rows: ids/logprobs [R·T·k] (row-major [R, T, k]); k ≤ the cache's k
   * (the first k of the stored, sorted entries are exactly the top k).
   */
  topkForRows(rows: ArrayLike<number>, k: number = this.k): TopK {
    this.checkK(k);
    const T = this.seqLen;
    const ids = new Int32Array(rows.length * T * k), logprobs = new Float32Array(rows.length * T * k);
    for (let i = 0; i < rows.length; i++) this.readRecord(rows[i], k, ids, logprobs, i * T * k);
    return { k, ids, logprobs };
  }

  /** Builds the row-key → row table from every shard's key table (12 bytes per row in memory). */
  private keyTable(): NonNullable<CachedTeacher['table']> {
    if (this.table) return this.table;
    let cap = 1;
    while (cap < 2 * this.rows) cap *= 2;
    const hi = new Uint32Array(cap), lo = new Uint32Array(cap), rowOf = new Int32Array(cap).fill(-1);
    const mask = cap - 1;
    for (const s of this.manifest.shards) {
      const h = this.shardHandle(s);
      const b = new Uint8Array(ROW_KEY_BYTES * s.count);
      this.read(h.fd, path.join(this.dir, s.file), b, SHARD_HEADER_BYTES + s.count * (this.manifest.recordBytes + 4));
      const dv = new DataView(b.buffer);
      for (let r = 0; r < s.count; r++) {
        const kh = dv.getUint32(8 * r, true), kl = dv.getUint32(8 * r + 4, true);
        let p = (kl ^ Math.imul(kh, 0x9e3779b1)) & mask;
        while (rowOf[p] !== -1 && !(hi[p] === kh && lo[p] === kl)) p = (p + 1) & mask; // linear probing
        if (rowOf[p] === -1) { hi[p] = kh; lo[p] = kl; rowOf[p] = s.firstRow + r; } // identical inputs: keep the first row
      }
    }
    this.table = { hi, lo, row: rowOf, mask };
    return this.table;
  }

  /**
   * Dataset row index of each batch row, found by the hash of its T input tokens; -1 where the cache has
   * no such row. With `dataset` given at open, a hit is confirmed token by token.
   */
  lookupRows(batch: TeacherBatch): Int32Array {
    if (batch.seqLen !== this.seqLen) {
      throw new UserError(`the teacher cache ${this.dir} holds sequences of ${this.seqLen} tokens; this batch has ${batch.seqLen} (use data.seq_len ${this.seqLen})`, 2);
    }
    const { hi, lo, row, mask } = this.keyTable();
    const T = this.seqLen;
    const out = new Int32Array(batch.batchSize).fill(-1);
    for (let b = 0; b < batch.batchSize; b++) {
      const input = batch.input.subarray(b * T, (b + 1) * T);
      const [kh, kl] = rowKey(input);
      let p = (kl ^ Math.imul(kh, 0x9e3779b1)) & mask;
      while (row[p] !== -1 && !(hi[p] === kh && lo[p] === kl)) p = (p + 1) & mask;
      const r = row[p];
      if (r === -1) continue;
      if (this.dataset) {
        const d = this.dataset.get(r);
        let same = true;
        for (let t = 0; t < T && same; t++) same = d[t] === input[t];
        if (!same) continue;
      }
      out[b] = r;
    }
    return out;
  }

  /** Top-k [B·T·k] for a batch, whose rows are found by content (see `lookupRows`). */
  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    this.checkK(k);
    const rows = this.lookupRows(batch);
    const missing = rows.indexOf(-1);
    if (missing >= 0) {
      throw new UserError(`batch row ${missing} is not in the teacher cache ${this.dir}: the cache was built from other data (another split, seq_len or tokenizer?) `
        + 'or the sequence was generated during training; a cache can only serve the offline regime on the dataset it was built from', 2);
    }
    return this.topkForRows(rows, k);
  }

  async logits(_batch: TeacherBatch): Promise<Float32Array> {
    throw new UserError(`the teacher cache ${this.dir} stores only the top ${this.k} tokens per position; full logits need a dense teacher (set distill.top_k > 0 to use the cache)`, 2);
  }

  async close(): Promise<void> {
    for (const h of this.open.values()) fs.closeSync(h.fd);
    this.open.clear();
    this.table = null;
    this.closed = true;
  }
}
