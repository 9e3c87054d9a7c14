/**
 * Batches over a PackedDataset, in a fresh seeded permutation every epoch, resumable exactly.
 *
 * Resume design: the state is {epoch, index, rng} where `rng` is the generator state at the *start* of the
 * current epoch. Restoring replays that epoch's shuffle (deterministic), jumps to `index`, and leaves the
 * generator exactly where the uninterrupted run had it, so every later epoch matches too. The state is a
 * handful of numbers, whatever the dataset size.
 */
import { UserError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { PackedDataset } from './packing.js';

/** One batch. Row b of input/target is sequence b: input[b*T + t] predicts target[b*T + t]. */
export interface Batch {
  /** Token ids [B * T]. */
  input: Int32Array;
  /** Next-token ids [B * T] (input shifted left by one); -100 where the dataset's mask excludes a target. */
  target: Int32Array;
  /** Dataset row of each sequence (e.g. to look up a teacher cache or a prompt length). */
  rows?: Int32Array;
  /** B: sequences in this batch (smaller than the configured size only for a final batch with dropLast=false). */
  batchSize: number;
  /** T: tokens per sequence. */
  seqLen: number;
}

/** JSON-serialisable position of a BatchLoader. */
export interface LoaderState {
  /** Epochs completed before the current one (0-based epoch number). */
  epoch: number;
  /** Position in the current epoch's permutation of the next sequence to serve. */
  index: number;
  /** Rng state at the start of the current epoch (4 uint32). */
  rng: number[];
  /** Dataset length the state was taken with; restoring onto a different dataset is refused. */
  datasetLength: number;
}

export interface BatchLoaderOptions {
  /** Sequences per batch, B. */
  batchSize: number;
  /** Seed of the shuffling PRNG (default 0). */
  seed?: number;
  /** Shuffle each epoch (default true). Validation loaders use false: fixed, sequential order. */
  shuffle?: boolean;
  /** Drop the final partial batch of each epoch (default true, so every batch has B rows). */
  dropLast?: boolean;
}

/** Endless stream of batches over `dataset` (epoch after epoch); see module comment for resume semantics. */
export class BatchLoader implements Iterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly rng: Rng;
  private perm: Uint32Array;
  private epochStart: number[] = [];
  private epochNo = 0;
  private index = 0;

  constructor(private readonly dataset: PackedDataset, opts: BatchLoaderOptions) {
    const { batchSize, seed = 0, shuffle = true, dropLast = true } = opts;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new UserError(`batch size must be a positive integer, got ${batchSize}`, 2);
    if (dataset.length === 0) throw new UserError('the dataset has no sequences', 2);
    if (dropLast && dataset.length < batchSize) {
      throw new UserError(`the dataset has ${dataset.length} sequences of ${dataset.seqLen} tokens, fewer than one batch of ${batchSize}; use more text, a smaller batch size or a shorter sequence length`, 2);
    }
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.rng = new Rng(seed);
    this.perm = new Uint32Array(dataset.length);
    this.startEpoch(0);
  }

  /** Batches per epoch: floor(N / B) with dropLast, else ceil(N / B). */
  get batchesPerEpoch(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Current epoch number (0-based). */
  get epoch(): number {
    return this.epochNo;
  }

  private startEpoch(epoch: number): void {
    this.epochNo = epoch;
    this.index = 0;
    this.epochStart = this.rng.state();
    for (let i = 0; i < this.perm.length; i++) this.perm[i] = i;
    if (this.shuffle) this.rng.shuffle(this.perm);
  }

  /** Next batch; starts a new epoch (new permutation) when the current one is exhausted. */
  next(): Batch {
    const n = this.dataset.length;
    const remaining = n - this.index;
    if (remaining === 0 || (this.dropLast && remaining < this.batchSize)) this.startEpoch(this.epochNo + 1);
    const B = Math.min(this.batchSize, n - this.index);
    const T = this.dataset.seqLen;
    const input = new Int32Array(B * T); // [B, T]
    const target = new Int32Array(B * T); // [B, T]
    for (let b = 0; b < B; b++) {
      const i = this.perm[this.index + b];
      const row = this.dataset.get(i); // [T + 1]
      input.set(row.subarray(0, T), b * T);
      target.set(row.subarray(1), b * T);
      const m = this.dataset.maskRow(i);
      if (m) for (let t = 0; t < T; t++) if (!m[t]) target[b * T + t] = -100; // not trained on
    }
    const rows = Int32Array.from(this.perm.subarray(this.index, this.index + B));
    this.index += B;
    return { input, target, batchSize: B, seqLen: T, rows };
  }

  *[Symbol.iterator](): Iterator<Batch> {
    for (;;) yield this.next();
  }

  /** Current position, JSON-serialisable; `restore(state())` on a fresh loader replays the same batches. */
  state(): LoaderState {
    return { epoch: this.epochNo, index: this.index, rng: this.epochStart.slice(), datasetLength: this.dataset.length };
  }

  /** Resumes from `state()` (e.g. read from a checkpoint). Throws `UserError` on a malformed/mismatched state. */
  restore(state: LoaderState): void {
    const s = state as Partial<LoaderState> | null;
    const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (typeof s !== 'object' || s === null || !isCount(s.epoch) || !isCount(s.index) || !Array.isArray(s.rng)) {
      throw new UserError('invalid data loader state; expected {epoch, index, rng, datasetLength} with non-negative integer epoch and index');
    }
    if (s.datasetLength !== this.dataset.length) {
      throw new UserError(`data loader state was saved for a dataset of ${s.datasetLength} sequences, but this one has ${this.dataset.length}; the data or seqLen changed since the checkpoint`);
    }
    if (s.index > this.dataset.length) throw new UserError(`data loader state index ${s.index} exceeds the dataset length ${this.dataset.length}`);
    try {
      this.rng.setState(s.rng);
    } catch (err) {
      throw new UserError(`invalid data loader rng state: ${(err as Error).message}`);
    }
    this.startEpoch(s.epoch);
    this.index = s.index;
  }
}
