/**
 * Checkpoints: a save → load round trip restores weights, AdamW moments, step and RNG state exactly; then a
 * fuzz of the checkpoint files (corrupt safetensors, corrupt trainer_state.json, deleted or swapped files)
 * written as real files, where every `loadCheckpoint` must succeed or throw a `UserError` naming the
 * checkpoint — never another exception, a hang or a huge allocation; and a directory left mid-swap by a
 * crash is recovered. Seeded: failures reproduce; set LMDISTILL_FUZZ_SEED / LMDISTILL_FUZZ_N to explore.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../src/errors.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type TrainerState } from '../../src/io/checkpoint.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import type { CausalLM } from '../../src/models/base.js';
import { createModel } from '../../src/models/registry.js';
import { AdamW } from '../../src/optim/adamw.js';
import { Rng } from '../../src/util/rng.js';

const SEED = Number(process.env.LMDISTILL_FUZZ_SEED ?? 20240918);
const N = Number(process.env.LMDISTILL_FUZZ_N ?? 3000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lmdistill-ckptfuzz-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const MODEL_CFG = { model_type: 'gpt2', vocab_size: 300, n_embd: 8, n_layer: 1, n_head: 2, n_positions: 16 } as const;
const STEP = 7;

/** A model + optimizer in a non-trivial state: random moments, a step count, an advanced dropout RNG. */
function trainedPair(seed: number): { model: CausalLM; optimizer: AdamW } {
  const model = createModel(MODEL_CFG, seed);
  const optimizer = new AdamW(model.namedParameters());
  const rng = new Rng(seed + 100);
  for (const m of optimizer.m) for (let j = 0; j < m.length; j++) m[j] = rng.normal() * 1e-3;
  for (const v of optimizer.v) for (let j = 0; j < v.length; j++) v[j] = Math.abs(rng.normal()) * 1e-6;
  optimizer.step = STEP;
  model.dropoutRng = new Rng(seed + 200);
  for (let k = 0; k < 10; k++) model.dropoutRng.nextU32();
  return { model, optimizer };
}

function stateFor(model: CausalLM): TrainerState {
  return {
    format: 'lmdistill-checkpoint', version: 1, step: STEP, tokensSeen: STEP * 32, elapsedMs: 1234.5,
    loader: { epoch: 1, index: 3, rng: new Rng(5).state(), datasetLength: 10 },
    dropoutRng: model.dropoutRng.state(), configDigest: '0123456789abcdef',
    extra: { evals: [{ step: 5, val_loss: 4.25 }] },
  };
}

function fresh(): { model: CausalLM; optimizer: AdamW } {
  const model = createModel(MODEL_CFG, 12345);
  return { model, optimizer: new AdamW(model.namedParameters()) };
}

const TOKENIZER_JSON = JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } });

test('saveCheckpoint → loadCheckpoint restores weights, moments, step and RNG state exactly', () => {
  const dir = path.join(work, 'roundtrip', 'checkpoint');
  fs.mkdirSync(path.dirname(dir));
  const src = trainedPair(1);
  const state = stateFor(src.model);
  saveCheckpoint(dir, src.model, src.optimizer, state, TOKENIZER_JSON);
  for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'tokenizer.json']) {
    assert.ok(fs.statSync(path.join(dir, f)).size > 0, f);
  }
  assert.ok(hasCheckpoint(dir));

  const dst = fresh();
  const srcParams = [...src.model.namedParameters()];
  // the fresh model really differs, so equality afterwards means the load did it
  assert.notDeepEqual(dst.model.namedParameters().get(srcParams[0][0])!.data, srcParams[0][1].data);
  const loaded = loadCheckpoint(dir, dst.model, dst.optimizer);
  assert.deepEqual(loaded, state);
  for (const [name, p] of srcParams) assert.deepEqual(dst.model.namedParameters().get(name)!.data, p.data, name);
  assert.deepEqual(dst.optimizer.names, src.optimizer.names);
  src.optimizer.m.forEach((m, i) => assert.deepEqual(dst.optimizer.m[i], m, `exp_avg ${src.optimizer.names[i]}`));
  src.optimizer.v.forEach((v, i) => assert.deepEqual(dst.optimizer.v[i], v, `exp_avg_sq ${src.optimizer.names[i]}`));
  assert.equal(dst.optimizer.step, STEP);
  assert.deepEqual(dst.model.dropoutRng.state(), src.model.dropoutRng.state());
  assert.equal(dst.model.dropoutRng.nextU32(), src.model.dropoutRng.nextU32(), 'the dropout stream continues identically');
});

// ---------------------------------------------------------------------------------------------- fuzz

/** The pristine checkpoint every fuzz case starts from (file name → bytes). */
function pristine(): Map<string, Buffer> {
  const dir = path.join(work, 'pristine');
  const src = trainedPair(2);
  saveCheckpoint(dir, src.model, src.optimizer, stateFor(src.model), TOKENIZER_JSON);
  return new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

function splitSafetensors(b: Buffer): { header: Record<string, Record<string, unknown>>; data: Buffer } {
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, Record<string, unknown>>, data: b.subarray(8 + n) };
}
function joinSafetensors(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}
function concat(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

const NASTY: unknown[] = [
  -1, 1.5, 2 ** 53, 2 ** 53 - 1, 2 ** 64, 1e308, -1e308, 0, '7', '', null, true, [], {}, [1, 2, 3], { a: 1 }, 4294967296, 'lmdistill-checkpoint', 'x'.repeat(5000),
];
const NASTY_SHAPES: unknown[] = [[2 ** 53, 2 ** 53], [1e15, 1e15], [2 ** 52, 2 ** 52, 0], [-1], [1.5], ['4'], [], [0], [null], 'x', null, [Infinity], Array.from({ length: 3000 }, () => 1)];
const NASTY_RNG: unknown[] = [[], [1, 2, 3], [1, 2, 3, 4, 5], [0, 0, 0, 0], [-1, 2, 3, 4], [1.5, 2, 3, 4], [4294967296, 1, 2, 3], ['1', 2, 3, 4], [null, 1, 2, 3], 'abcd', { 0: 1, 1: 2, 2: 3, 3: 4 }, [4294967295, 4294967295, 4294967295, 4294967295]];
const DTYPES: unknown[] = ['F16', 'BF16', 'F64', 'I32', 'U8', 'BOOL', 'F8_E4M3', 'F4', 'f32', '', 5, null];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

type Files = Map<string, Buffer | 'delete' | 'dir'>;

/** A structured mutation of a safetensors file's header or layout. */
function mutateSafetensors(rng: Rng, file: Buffer, isOptimizer: boolean): { out: Buffer; kind: string } {
  const { header, data } = splitSafetensors(file);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  const entry = header[name];
  switch (rng.int(13)) {
    case 0: return { out: file.subarray(0, rng.int(file.length)), kind: 'truncate' };
    case 1: { // flip bytes anywhere
      const b = Buffer.from(file);
      for (let k = 1 + rng.int(8); k > 0; k--) b[rng.int(b.length)] = rng.int(256);
      return { out: b, kind: 'byte-flip' };
    }
    case 2: { // flip bytes in the header (JSON) region only
      const b = Buffer.from(file);
      const n = Number(b.readBigUInt64LE(0));
      for (let k = 1 + rng.int(3); k > 0; k--) b[8 + rng.int(n)] = rng.int(256);
      return { out: b, kind: 'header-flip' };
    }
    case 3: { // absurd header length
      const len = pick(rng, [2n ** 63n, 2n ** 64n - 1n, 0n, 1n, 7n, BigInt(file.length), BigInt(file.length - 7), 100_000_001n, BigInt(rng.nextU32())]);
      const b = Buffer.from(file);
      b.writeBigUInt64LE(len);
      return { out: b, kind: 'header-length' };
    }
    case 4: entry.shape = pick(rng, NASTY_SHAPES); return { out: joinSafetensors(header, data), kind: 'nasty-shape' };
    case 5: entry.dtype = pick(rng, DTYPES); return { out: joinSafetensors(header, data), kind: 'dtype' };
    case 6: entry.data_offsets = [pick(rng, NASTY), pick(rng, NASTY)]; return { out: joinSafetensors(header, data), kind: 'offsets' };
    case 7: { // same bytes, another shape (e.g. a transpose)
      const shape = entry.shape as number[];
      entry.shape = shape.length === 2 ? [shape[1], shape[0]] : [1, ...shape];
      return { out: joinSafetensors(header, data), kind: 'reshape' };
    }
    case 8: { // rename or drop a tensor entry (its bytes become a hole) / add an entry
      const v = rng.int(3);
      if (v === 0) { header[`${name}.x`] = entry; delete header[name]; return { out: joinSafetensors(header, data), kind: 'rename' }; }
      if (v === 1) { delete header[name]; return { out: joinSafetensors(header, data), kind: 'drop-entry' }; }
      header.extra = { dtype: 'F32', shape: [1], data_offsets: [data.length, data.length + 4] };
      return { out: joinSafetensors(header, Buffer.concat([data, Buffer.alloc(4)])), kind: 'add-entry' };
    }
    case 9: { // metadata
      const meta = (header.__metadata__ ?? {}) as Record<string, unknown>;
      const v = rng.int(3);
      if (v === 0) delete header.__metadata__;
      else if (v === 1) meta.step = pick(rng, [String(STEP + 1), 'x', '7.0', '1e3', ' 7', '-7', '9007199254740993', 7, null, ['7']]);
      else (header as Record<string, unknown>).__metadata__ = pick(rng, NASTY);
      if (v === 1) header.__metadata__ = meta;
      return { out: joinSafetensors(header, data), kind: 'metadata' };
    }
    default: { // a well-formed file whose tensors do not fit: wrong shape, missing, extra, other dtype
      const tensors = new Map<string, { shape: number[]; data: Float32Array; dtype?: 'F16' | 'BF16' }>();
      for (const k of names) {
        const e = header[k];
        const [b, en] = e.data_offsets as [number, number];
        const f = new Float32Array(data.buffer.slice(data.byteOffset + b, data.byteOffset + en));
        tensors.set(k, { shape: e.shape as number[], data: f });
      }
      const v = rng.int(4);
      let kind: string;
      if (v === 0) {
        const t = tensors.get(name)!;
        const shape = t.shape.length ? [t.shape[0] + 1, ...t.shape.slice(1)] : [2];
        tensors.set(name, { shape, data: new Float32Array(shape.reduce((a, c) => a * c, 1)) });
        kind = 'swap-shape';
      } else if (v === 1) { tensors.delete(name); kind = 'missing-tensor'; } else if (v === 2) {
        tensors.set(isOptimizer ? 'exp_avg.bogus' : 'transformer.bogus', { shape: [3], data: new Float32Array(3) });
        kind = 'extra-tensor';
      } else {
        const dtype = pick(rng, ['F16', 'BF16'] as const);
        for (const [k, t] of tensors) tensors.set(k, { ...t, dtype });
        kind = `all-${dtype}`;
      }
      return { out: concat(serializeSafetensors(tensors, (header.__metadata__ ?? {}) as Record<string, string>)), kind };
    }
  }
}

/** A mutation of trainer_state.json. */
function mutateState(rng: Rng, file: Buffer): { out: Buffer; kind: string } {
  const s = JSON.parse(file.toString('utf8')) as Record<string, unknown>;
  const loader = s.loader as Record<string, unknown>;
  const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o, null, rng.int(2) ? 2 : undefined));
  switch (rng.int(12)) {
    case 0: { // delete a key
      const v = rng.int(2);
      const obj = v ? loader : s;
      delete obj[pick(rng, Object.keys(obj))];
      return { out: json(s), kind: 'missing-key' };
    }
    case 1: { // extra key somewhere (allowed only under `extra`)
      const where = pick(rng, [s, loader, s.extra as Record<string, unknown>]);
      // defineProperty: an own "__proto__" key, as JSON.parse creates it (assignment would set the prototype)
      Object.defineProperty(where, pick(rng, ['stepz', '__proto__', 'constructor', 'rng2', 'x']), { value: pick(rng, NASTY), enumerable: true, writable: true, configurable: true });
      return { out: json(s), kind: 'extra-key' };
    }
    case 2: { // wrong type / nasty value at a leaf
      const v = rng.int(2);
      const obj = v ? loader : s;
      obj[pick(rng, Object.keys(obj))] = pick(rng, NASTY);
      return { out: json(s), kind: 'wrong-type' };
    }
    case 3: s.step = pick(rng, [-1, 1.5, 2 ** 53, 2 ** 53 - 1, 1e308, 8, 0, STEP]); return { out: json(s), kind: 'absurd-step' };
    case 4: {
      if (rng.int(2)) s.dropoutRng = pick(rng, NASTY_RNG); else loader.rng = pick(rng, NASTY_RNG);
      return { out: json(s), kind: 'rng' };
    }
    case 5: { // huge numbers as raw JSON text (beyond what JSON.stringify can produce)
      const key = pick(rng, ['"tokensSeen"', '"elapsedMs"', '"epoch"', '"index"', '"datasetLength"', '"step"']);
      const num = pick(rng, ['1e400', '-1e400', '123456789012345678901234567890', '1e-400', '-0', '0.0000001', '9007199254740993']);
      const text = file.toString('utf8').replace(new RegExp(`${key}: [^,\\n]+`), `${key}: ${num}`);
      return { out: Buffer.from(text), kind: 'huge-number' };
    }
    case 6: return { out: file.subarray(0, rng.int(file.length)), kind: 'truncate' };
    case 7: {
      const b = Buffer.from(file);
      for (let k = 1 + rng.int(6); k > 0; k--) b[rng.int(b.length)] = rng.int(256);
      return { out: b, kind: 'byte-flip' };
    }
    case 8: return { out: Buffer.from(pick(rng, ['', 'null', '[]', '7', '"state"', '{', '\ufeff{}', '{"format": "lmdistill-checkpoint"}', '\0\0\0\0'])), kind: 'not-an-object' };
    case 9: { // deep nesting inside `extra` (allowed: free-form) or in place of a field; built as text
      const depth = pick(rng, [10, 1000, 5000]);
      if (rng.int(2)) (s.extra as Record<string, unknown>).deep = 'DEEP'; else s.loader = 'DEEP';
      return { out: Buffer.from(JSON.stringify(s).replace('"DEEP"', '['.repeat(depth) + ']'.repeat(depth))), kind: 'deep-nesting' };
    }
    case 10: s.format = pick(rng, ['lmdistill-checkpoint-v2', 'LMDISTILL-CHECKPOINT', null]); s.version = pick(rng, [1, 2, '1', 0]); return { out: json(s), kind: 'format' };
    default: return { out: file, kind: 'unchanged' };
  }
}

/** One fuzz case: which files change and how. */
function mutateCheckpoint(rng: Rng, base: Map<string, Buffer>): { files: Files; kind: string } {
  const files: Files = new Map();
  switch (rng.int(10)) {
    case 0: case 1: case 2: { const r = mutateSafetensors(rng, base.get('model.safetensors')!, false); files.set('model.safetensors', r.out); return { files, kind: `model:${r.kind}` }; }
    case 3: case 4: case 5: { const r = mutateSafetensors(rng, base.get('optimizer.safetensors')!, true); files.set('optimizer.safetensors', r.out); return { files, kind: `optimizer:${r.kind}` }; }
    case 6: case 7: case 8: { const r = mutateState(rng, base.get('trainer_state.json')!); files.set('trainer_state.json', r.out); return { files, kind: `state:${r.kind}` }; }
    default: { // delete a file, or put a directory / empty file in its place
      const name = pick(rng, [...base.keys()]);
      const how = pick(rng, ['delete', 'dir', 'empty'] as const);
      files.set(name, how === 'empty' ? Buffer.alloc(0) : how);
      return { files, kind: `${how}:${name}` };
    }
  }
}

test(`checkpoint fuzz: ${N} corrupt checkpoints load or throw a UserError naming the checkpoint`, { timeout: 120_000 }, (t) => {
  const base = pristine();
  const dir = path.join(work, 'fuzz', 'checkpoint');
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, b] of base) fs.writeFileSync(path.join(dir, f), b);
  const { model, optimizer } = fresh();
  const rng = new Rng(SEED);
  const counts = { loaded: 0, rejected: 0 };
  const failures = new Map<string, string>(); // kind → first failure
  let dirty: string[] = [];
  const kindCounts = new Map<string, number>();
  let peakRss = process.memoryUsage().rss;
  const rss0 = peakRss;
  let slowest = { ms: 0, kind: '' };
  // deterministic cases first (a too-large state file, every bad RNG state in both places, a 2^53×2^53
  // shape), then random ones. dropoutRng [0,0,0,0] must be rejected by the schema (regression test below).
  const cases: { i: number; files: Files; kind: string }[] = [];
  const stateWith = (kind: string, patch: (st: Record<string, unknown>) => unknown): void => {
    const st = JSON.parse(base.get('trainer_state.json')!.toString('utf8')) as Record<string, unknown>;
    patch(st);
    cases.push({ i: -1 - cases.length, files: new Map([['trainer_state.json', Buffer.from(JSON.stringify(st))]]), kind });
  };
  stateWith('state:17MB', (st) => { st.extra = { pad: 'x'.repeat(17 * 1024 * 1024) }; });
  for (const r of NASTY_RNG) {
    stateWith(`state:dropoutRng=${JSON.stringify(r)}`, (st) => { st.dropoutRng = r; });
    stateWith(`state:loader.rng=${JSON.stringify(r)}`, (st) => { (st.loader as Record<string, unknown>).rng = r; });
  }
  const hdr = splitSafetensors(base.get('model.safetensors')!);
  hdr.header['transformer.wte.weight'].shape = [2 ** 53, 2 ** 53];
  cases.push({ i: -1 - cases.length, files: new Map([['model.safetensors', joinSafetensors(hdr.header, hdr.data)]]), kind: 'model:shape-2^53' });
  const t0 = performance.now();
  const total = N + cases.length;
  for (let i = 0; i < total; i++) {
    const c = i < cases.length ? cases[i] : { i: i - cases.length, ...mutateCheckpoint(rng, base) };
    // restore what the previous case changed, then apply this one
    for (const f of dirty) {
      const p = path.join(dir, f);
      fs.rmSync(p, { recursive: true, force: true });
      fs.writeFileSync(p, base.get(f)!);
    }
    dirty = [...c.files.keys()];
    for (const [f, v] of c.files) {
      const p = path.join(dir, f);
      fs.rmSync(p, { recursive: true, force: true });
      if (v === 'dir') fs.mkdirSync(p);
      else if (v !== 'delete') fs.writeFileSync(p, v);
    }
    kindCounts.set(c.kind, (kindCounts.get(c.kind) ?? 0) + 1);
    const s0 = performance.now();
    try {
      const state = loadCheckpoint(dir, model, optimizer);
      assert.equal(optimizer.step, state.step, `${c.kind}: optimizer step follows the state`);
      assert.deepEqual(model.dropoutRng.state(), state.dropoutRng, `${c.kind}: dropout RNG restored`);
      counts.loaded++;
    } catch (e) {
      if (e instanceof UserError && e.message.includes(dir)) counts.rejected++;
      else {
        const key = c.kind.replace(/:.*/, '') + ':' + (e instanceof Error ? e.constructor.name : typeof e);
        if (!failures.has(key)) failures.set(key, `#${c.i} ${c.kind}: ${e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : String(e)}`);
      }
    }
    const ms = performance.now() - s0;
    if (ms > slowest.ms) slowest = { ms, kind: `#${c.i} ${c.kind}` };
    if ((i & 63) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  t.diagnostic(`seed ${SEED}: ${counts.loaded} loaded, ${counts.rejected} rejected of ${total} in ${((performance.now() - t0) / 1000).toFixed(2)} s; slowest ${slowest.kind} ${slowest.ms.toFixed(0)} ms; RSS ${(rss0 / 2 ** 20).toFixed(0)} → peak ${(peakRss / 2 ** 20).toFixed(0)} MB`);
  if (process.env.LMDISTILL_FUZZ_VERBOSE) t.diagnostic([...kindCounts].sort().map(([k, v]) => `${k} ${v}`).join(', '));
  assert.deepEqual([...failures.values()], [], 'loadCheckpoint threw something other than a UserError naming the checkpoint');
  assert.ok(counts.loaded > 0 && counts.rejected > 0, `degenerate fuzz: ${JSON.stringify(counts)}`);
  assert.ok(peakRss - rss0 < 512 * 2 ** 20, `RSS grew by ${((peakRss - rss0) / 2 ** 20).toFixed(0)} MB: a corrupt file caused a huge allocation`);
});

test('regression: an all-zero dropoutRng in trainer_state.json is a UserError, not a RangeError', () => {
  // trainerStateSchema accepts any 4 uint32 words, but Rng.setState rejects the all-zero state with a
  // RangeError (src/io/checkpoint.ts loadCheckpoint → model.dropoutRng.setState), which the CLI prints
  // with a stack trace.
  const dir = path.join(work, 'zero-rng', 'checkpoint');
  fs.mkdirSync(path.dirname(dir));
  const src = trainedPair(3);
  saveCheckpoint(dir, src.model, src.optimizer, { ...stateFor(src.model), dropoutRng: [0, 0, 0, 0] });
  const { model, optimizer } = fresh();
  assert.throws(() => loadCheckpoint(dir, model, optimizer), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    assert.ok(e.message.includes(dir), e.message);
    return true;
  });
});

// ------------------------------------------------------------------------------------- mid-swap recovery

test('a checkpoint left mid-swap by a crash is recovered by hasCheckpoint / loadCheckpoint', () => {
  const root = path.join(work, 'swap');
  fs.mkdirSync(root);
  const a = trainedPair(4);
  const stateA = stateFor(a.model);

  // 1. crash after `dir` → `dir.old-T`, before the new one was moved in; no complete new dir: roll back
  const dir1 = path.join(root, 'one', 'checkpoint');
  fs.mkdirSync(path.dirname(dir1));
  saveCheckpoint(dir1, a.model, a.optimizer, stateA);
  fs.renameSync(dir1, `${dir1}.old-123-abcdef`);
  assert.ok(!fs.existsSync(dir1));
  assert.ok(hasCheckpoint(dir1), 'hasCheckpoint recovers the old directory');
  assert.ok(fs.existsSync(dir1) && !fs.existsSync(`${dir1}.old-123-abcdef`));
  const r1 = fresh();
  assert.deepEqual(loadCheckpoint(dir1, r1.model, r1.optimizer), stateA);

  // 2. crash between the two renames with the new dir complete: roll forward to the new checkpoint
  const dir2 = path.join(root, 'two', 'checkpoint');
  fs.mkdirSync(path.dirname(dir2));
  saveCheckpoint(dir2, a.model, a.optimizer, stateA);
  const b = trainedPair(5);
  b.optimizer.step = STEP + 1;
  const stateB = { ...stateFor(b.model), step: STEP + 1 };
  const staging = path.join(root, 'staging');
  saveCheckpoint(staging, b.model, b.optimizer, stateB);
  fs.renameSync(dir2, `${dir2}.old-9-0a0b0c`);
  fs.renameSync(staging, `${dir2}.tmp-9-0a0b0c`);
  const r2 = fresh();
  assert.deepEqual(loadCheckpoint(dir2, r2.model, r2.optimizer), stateB, 'loadCheckpoint finishes the swap');
  assert.deepEqual(r2.model.namedParameters().get('transformer.wte.weight')!.data, b.model.namedParameters().get('transformer.wte.weight')!.data);
  assert.deepEqual(fs.readdirSync(path.dirname(dir2)), ['checkpoint'], 'leftovers are removed');

  // 3. an unfinished build next to an intact checkpoint is discarded
  const dir3 = path.join(root, 'three', 'checkpoint');
  fs.mkdirSync(path.dirname(dir3));
  saveCheckpoint(dir3, a.model, a.optimizer, stateA);
  fs.mkdirSync(`${dir3}.tmp-1-ffffff`);
  fs.writeFileSync(path.join(`${dir3}.tmp-1-ffffff`, 'model.safetensors'), 'partial');
  const r3 = fresh();
  assert.deepEqual(loadCheckpoint(dir3, r3.model, r3.optimizer), stateA);
  assert.deepEqual(fs.readdirSync(path.dirname(dir3)), ['checkpoint']);

  // 4. no checkpoint at all
  assert.equal(hasCheckpoint(path.join(root, 'none', 'checkpoint')), false);
});
