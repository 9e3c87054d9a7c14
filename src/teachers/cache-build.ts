/**
 * Building a top-k teacher cache (format: src/teachers/cache.ts) from any `Teacher`s — in-process, ONNX
 * or OpenAI-compatible servers — splitting the work over all of them.
 *
 * Work-stealing: the missing shards are cut into batches of `batchSize` rows (never across a shard
 * boundary) in one queue; every teacher runs `concurrency` workers that take the next batch when they
 * are free, so a fast teacher simply takes more. A shard is committed once all its batches are back:
 * its file is written atomically, then the manifest (listing committed shards only) is replaced
 * atomically. Resuming after a crash = running again: listed shards are kept (size and header checked),
 * everything else is recomputed; unlisted shard files and temporary files are overwritten or removed.
 * A lock file stops two builders from writing the same directory.
 *
 * A teacher that fails is dropped (its batch goes back to the queue for the others) and reported via
 * `onLog`; when no teacher is left the build fails with the first error. Committed shards stay.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { PackedDataset } from '../data/packing.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { f32ToF16Bits } from '../io/safetensors.js';
import {
  CACHE_FORMAT, CACHE_VERSION, checkShardFile, datasetFingerprint, encodeShardHeader, idBytesFor, MANIFEST_FILE, readManifest,
  recordBytesFor, ROW_KEY_BYTES, rowKey, shardBytesFor, shardCount, shardFileName, type CacheManifest, type ShardEntry,
} from './cache.js';
import type { Teacher, TeacherBatch, TopK } from './teacher.js';

export interface CacheBuildProgress {
  /** rows in committed shards (including those found from an earlier run) */
  rowsDone: number;
  rowsTotal: number;
  shardsDone: number;
  shardsTotal: number;
  /** rows that were already committed when this run started */
  resumedRows: number;
}

export interface BuildCacheOptions {
  /** one or more teachers with the same vocabulary (e.g. several servers of one model) */
  teachers: readonly Teacher[];
  /** the packed dataset; record i = row i's T input positions */
  dataset: PackedDataset;
  /** top-k entries kept per position (capped at the vocabulary size) */
  k: number;
  /** the cache directory (created if missing; resumed if it holds a compatible cache) */
  dir: string;
  /**
   * rows per shard (default: as many as fit in 16 MiB of records, between 1 and 4096; or the existing
   * cache's). Each shard in flight is held in memory until committed.
   */
  shardRecords?: number;
  /** rows per teacher call (default 8) */
  batchSize?: number;
  /** batches in flight per teacher (default 1; e.g. 4 for an HTTP server), one number or one per teacher */
  concurrency?: number | readonly number[];
  /** name recorded in the manifest (default: the teachers' names joined); a resume must use the same */
  teacherName?: string;
  /** identifies the tokenizer (e.g. "sha256:…" of its tokenizer.json), recorded and checked on resume */
  tokenizerHash?: string | null;
  onProgress?: (p: CacheBuildProgress) => void;
  /** notices: resumed, shard redone, teacher dropped */
  onLog?: (msg: string) => void;
  /** stop early: shards already started are finished and committed, no new one is begun; rerun to finish */
  signal?: AbortSignal;
}

export interface CacheBuildResult {
  manifest: CacheManifest;
  /** rows computed by this run */
  rowsComputed: number;
  /** rows that were already committed */
  resumedRows: number;
}

const LOCK_FILE = '.lock';

/**
 * Rows per shard when not given: ~16 MiB of records. Fewer, larger shards keep the manifest (rewritten
 * at every commit) small; the cap bounds the memory a shard in flight holds and the work a crash redoes.
 */
export function defaultShardRecords(recordBytes: number): number {
  return Math.max(1, Math.min(4096, Math.floor((16 << 20) / recordBytes)));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the directory's lock (a stale lock of a dead process on this host is taken over). */
function acquireLock(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const me = JSON.stringify({ pid: process.pid, host: os.hostname() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, me, { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot create ${file}: ${(e as Error).message}`);
    }
    let owner: { pid?: unknown; host?: unknown } = {};
    try { owner = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof owner; } catch { /* half-written lock: stale */ }
    if (typeof owner.pid === 'number' && owner.host === os.hostname() && owner.pid !== process.pid && pidAlive(owner.pid)) {
      throw new UserError(`another teacher-cache build (pid ${owner.pid}) is writing ${dir}; wait for it or stop it`, 1);
    }
    if (typeof owner.pid === 'number' && owner.host !== undefined && owner.host !== os.hostname()) {
      throw new UserError(`${file} is held by a build on host ${String(owner.host)}; if no build is running there, delete the lock file`, 1);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new UserError(`cannot take the lock ${file}`);
}

/** Checks one teacher answer for a batch of `rows` rows and returns nothing or throws. */
function checkTopK(t: Teacher, r: TopK, rows: number, T: number, k: number, V: number): void {
  const n = rows * T * k;
  if (r.k !== k || r.ids.length !== n || r.logprobs.length !== n) {
    throw new UserError(`teacher ${t.name} returned top-${r.k} with ${r.ids.length} ids for ${rows}×${T} positions; expected top-${k} (${n} entries)`);
  }
  for (let i = 0; i < n; i++) {
    const id = r.ids[i], lp = r.logprobs[i];
    if (!(id >= 0 && id < V)) throw new UserError(`teacher ${t.name} returned token id ${id} outside its vocabulary of ${V}`);
    if (Number.isNaN(lp) || lp > 1e-3) throw new UserError(`teacher ${t.name} returned logprob ${lp} (must be ≤ 0)`);
  }
}

interface ShardWork {
  index: number;
  firstRow: number;
  count: number;
  pending: number;
  /** records [count · recordBytes] */
  records: Uint8Array;
}

/**
 * Computes (or finishes) the top-k cache of `dataset` in `dir`. Safe to kill at any instant; rerun with
 * the same arguments to resume (see module comment). Returns the final manifest.
 */
export async function buildTeacherCache(opts: BuildCacheOptions): Promise<CacheBuildResult> {
  const { teachers, dataset, dir } = opts;
  if (teachers.length === 0) throw new UserError('buildTeacherCache needs at least one teacher', 2);
  const V = teachers[0].vocabSize;
  for (const t of teachers) {
    if (t.vocabSize !== V) throw new UserError(`teachers disagree on the vocabulary: ${teachers[0].name} has ${V} tokens, ${t.name} has ${t.vocabSize}`, 2);
  }
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new UserError(`k must be a positive integer, got ${opts.k}`, 2);
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`batch size must be a positive integer, got ${batchSize}`, 2);
  const conc = teachers.map((_, i) => (typeof opts.concurrency === 'number' ? opts.concurrency : opts.concurrency?.[i]) ?? 1);
  if (conc.some((c) => !Number.isInteger(c) || c < 1)) throw new UserError(`concurrency must be a positive integer per teacher, got ${String(opts.concurrency)}`, 2);
  if (dataset.length === 0) throw new UserError('the dataset has no rows', 2);
  for (let i = 0; i < dataset.data.length; i++) {
    const id = dataset.data[i];
    if (id < 0 || id >= V) throw new UserError(`the dataset holds token id ${id} but the teacher's vocabulary has ${V} tokens (tokenizer and teacher do not match)`, 2);
  }

  const k = Math.min(opts.k, V);
  const T = dataset.seqLen;
  const idBytes = idBytesFor(V);
  const recordBytes = recordBytesFor(k, T, idBytes);
  const teacherName = opts.teacherName ?? teachers.map((t) => t.name).join(' + ');
  const fingerprint = datasetFingerprint(dataset);
  const log = opts.onLog ?? (() => {});

  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create ${dir}: ${(e as Error).message}`);
  }
  const release = acquireLock(dir);
  try {
    // ---------------------------------------------------------------- resume or start
    let manifest: CacheManifest;
    if (fs.existsSync(path.join(dir, MANIFEST_FILE))) {
      const m = readManifest(dir);
      const differs: string[] = [];
      if (m.datasetFingerprint !== fingerprint || m.rows !== dataset.length || m.seqLen !== T) differs.push(`dataset (${m.rows} rows of ${m.seqLen} tokens there, ${dataset.length} of ${T} here)`);
      if (m.k !== k) differs.push(`k (${m.k} there, ${k} here)`);
      if (m.vocabSize !== V) differs.push(`vocabulary (${m.vocabSize} there, ${V} here)`);
      if (m.teacher !== teacherName) differs.push(`teacher ("${m.teacher}" there, "${teacherName}" here; pass the recorded name as the teacher name if it is the same model)`);
      if ((opts.tokenizerHash ?? null) !== m.tokenizer) differs.push('tokenizer');
      if (opts.shardRecords !== undefined && opts.shardRecords !== m.shardRecords) differs.push(`shard size (${m.shardRecords} there, ${opts.shardRecords} here)`);
      if (differs.length) throw new UserError(`${dir} holds a teacher cache built with another ${differs.join(', ')}; use another --out directory or delete it`, 2);
      const good: ShardEntry[] = [];
      for (const s of m.shards) {
        const problem = checkShardFile(dir, m, s);
        if (problem) log(`shard ${s.file}: ${problem}; recomputing it`);
        else good.push(s);
      }
      manifest = { ...m, shards: good, complete: good.length === shardCount(m.rows, m.shardRecords) };
    } else {
      const shardRecords = opts.shardRecords ?? defaultShardRecords(recordBytes);
      if (!Number.isInteger(shardRecords) || shardRecords < 1) throw new UserError(`shard size must be a positive integer, got ${shardRecords}`, 2);
      manifest = {
        format: CACHE_FORMAT, version: CACHE_VERSION, k, vocabSize: V, seqLen: T, idBytes, logprobDtype: 'F16',
        rows: dataset.length, shardRecords, recordBytes, datasetFingerprint: fingerprint, rowKey: 'sha256-64(input int32le)',
        teacher: teacherName, tokenizer: opts.tokenizerHash ?? null, shards: [], complete: false,
      };
    }
    // leftovers of writes interrupted by a crash
    for (const e of fs.readdirSync(dir)) if (e.includes('.tmp-')) fs.rmSync(path.join(dir, e), { force: true });
    writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1) + '\n');

    const { shardRecords } = manifest;
    const nShards = shardCount(dataset.length, shardRecords);
    const resumedRows = manifest.shards.reduce((a, s) => a + s.count, 0);
    if (resumedRows > 0) log(`resuming: ${manifest.shards.length}/${nShards} shards (${resumedRows} rows) already in ${dir}`);
    let rowsDone = resumedRows;
    const progress = (): void => opts.onProgress?.({ rowsDone, rowsTotal: dataset.length, shardsDone: manifest.shards.length, shardsTotal: nShards, resumedRows });
    progress();

    // ---------------------------------------------------------------- the work queue
    const done = new Set(manifest.shards.map((s) => s.index));
    // Batches in shard order (read through a head index: shift() on a long array is O(n) per call), plus
    // batches given back by failed teachers, which go first.
    type Job = { shard: number; first: number; rows: number };
    const queue: Job[] = [];
    let head = 0;
    const retry: Job[] = [];
    const shards = new Map<number, ShardWork>();
    for (let s = 0; s < nShards; s++) {
      if (done.has(s)) continue;
      const first = s * shardRecords, count = Math.min(shardRecords, dataset.length - first);
      for (let r = 0; r < count; r += batchSize) queue.push({ shard: s, first: first + r, rows: Math.min(batchSize, count - r) });
    }
    // After an abort only batches of shards already started are handed out, so those shards still commit.
    // Shards are started in queue order, so the only started shard with batches left in `queue` is queue[head]'s.
    const started = new Set<number>();
    const workLeft = (): boolean => head < queue.length || retry.length > 0;
    const take = (): Job | undefined => {
      if (retry.length > 0) return retry.pop();
      if (head >= queue.length || (opts.signal?.aborted && !started.has(queue[head].shard))) return undefined;
      const job = queue[head++];
      started.add(job.shard);
      return job;
    };

    const commit = (w: ShardWork): void => {
      const crcs = new Uint32Array(w.count), keys = Buffer.alloc(ROW_KEY_BYTES * w.count);
      for (let r = 0; r < w.count; r++) {
        crcs[r] = crc32(w.records.subarray(r * recordBytes, (r + 1) * recordBytes));
        const [hi, lo] = rowKey(dataset.get(w.firstRow + r).subarray(0, T));
        keys.writeUInt32LE(hi, 8 * r);
        keys.writeUInt32LE(lo, 8 * r + 4);
      }
      const chunks = [encodeShardHeader({ k, seqLen: T, idBytes, vocabSize: V, count: w.count, firstRow: w.firstRow }), w.records, new Uint8Array(crcs.buffer), keys];
      const h = createHash('sha256');
      for (const c of chunks) h.update(c);
      const file = shardFileName(w.index);
      writeFileAtomic(path.join(dir, file), chunks);
      const entry: ShardEntry = { index: w.index, file, firstRow: w.firstRow, count: w.count, bytes: shardBytesFor(w.count, recordBytes), sha256: h.digest('hex') };
      manifest.shards = [...manifest.shards, entry].sort((a, b) => a.index - b.index);
      manifest.complete = manifest.shards.length === nShards;
      writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1) + '\n');
      shards.delete(w.index);
      started.delete(w.index);
      rowsDone += w.count;
      progress();
    };

    const store = (job: Job, r: TopK): void => {
      let w = shards.get(job.shard);
      if (!w) {
        const first = job.shard * shardRecords, count = Math.min(shardRecords, dataset.length - first);
        w = { index: job.shard, firstRow: first, count, pending: Math.ceil(count / batchSize), records: new Uint8Array(count * recordBytes) };
        shards.set(job.shard, w);
      }
      for (let b = 0; b < job.rows; b++) {
        const rec = new Uint8Array(w.records.buffer, (job.first - w.firstRow + b) * recordBytes, recordBytes);
        // a record starts at a multiple of recordBytes = T·k·(idBytes + 2): always 2-byte aligned, but with
        // uint32 ids only 4-byte aligned when T·k is even, so those go through the DataView
        const ids16 = idBytes === 2 ? new Uint16Array(rec.buffer, rec.byteOffset, T * k) : null;
        const dv = new DataView(rec.buffer, rec.byteOffset, recordBytes);
        const src = b * T * k, lpOff = T * k * idBytes;
        for (let i = 0; i < T * k; i++) {
          if (ids16) ids16[i] = r.ids[src + i];
          else dv.setUint32(4 * i, r.ids[src + i], true);
          dv.setUint16(lpOff + 2 * i, f32ToF16Bits(r.logprobs[src + i]), true);
        }
      }
      if (--w.pending === 0) commit(w);
    };

    // ---------------------------------------------------------------- workers
    const errors: Error[] = [];
    const alive = teachers.map(() => true);
    let rowsComputed = 0, inFlight = 0;
    let fatal: Error | undefined;
    // Workers that find the queue empty wait while batches are in flight: a failing teacher puts its batch back.
    let waiters: (() => void)[] = [];
    const wakeAll = (): void => { const w = waiters; waiters = []; for (const f of w) f(); };
    const worker = async (ti: number): Promise<void> => {
      const t = teachers[ti];
      for (;;) {
        if (!alive[ti]) return;
        const job = take();
        if (!job) {
          if (inFlight === 0) return;
          await new Promise<void>((resolve) => waiters.push(resolve));
          continue;
        }
        inFlight++;
        try {
          const input = new Int32Array(job.rows * T); // [rows, T]
          for (let b = 0; b < job.rows; b++) input.set(dataset.get(job.first + b).subarray(0, T), b * T);
          const batch: TeacherBatch = { input, batchSize: job.rows, seqLen: T };
          let r: TopK;
          try {
            r = await t.topk(batch, k);
            checkTopK(t, r, job.rows, T, k, V);
          } catch (e) {
            retry.push(job); // another teacher will do it
            if (alive[ti]) {
              alive[ti] = false;
              errors.push(e as Error);
              if (alive.some((x) => x)) log(`teacher ${t.name} failed and is dropped (its work goes to the others): ${(e as Error).message}`);
            }
            return;
          }
          try {
            store(job, r);
          } catch (e) { // writing failed (disk full, permissions): stop everyone, committed shards stay
            fatal ??= e as Error;
            alive.fill(false);
            return;
          }
          rowsComputed += job.rows;
        } finally {
          inFlight--;
          wakeAll();
        }
      }
    };
    const workers: Promise<void>[] = [];
    teachers.forEach((_, ti) => { for (let c = 0; c < conc[ti]; c++) workers.push(worker(ti)); });
    await Promise.all(workers);
    if (fatal) throw fatal;
    if (workLeft() || shards.size > 0) {
      if (opts.signal?.aborted) return { manifest, rowsComputed, resumedRows };
      const first = errors[0] ?? new Error('teacher cache build stopped with work left');
      if (first instanceof UserError) throw first;
      throw new UserError(`teacher cache build failed (${manifest.shards.length}/${nShards} shards committed; rerun to resume): ${first.message}`);
    }
    return { manifest, rowsComputed, resumedRows };
  } finally {
    release();
  }
}
