/**
 * A teacher running an ONNX causal language model with onnxruntime-node (CPU), e.g. one exported from
 * PyTorch (tools/onnx/export_gpt2.py) or by Hugging Face Optimum without a KV cache.
 *
 * The model must take `input_ids` (int64 or int32, [batch, sequence]) — plus optionally `attention_mask`
 * (fed all ones) and `position_ids` (fed 0..T-1) — and return logits [batch, sequence, vocab] (float32
 * or float16). The vocabulary size comes from the output's shape (or one probe run when that axis is
 * symbolic). A `max_positions` entry in the model's metadata_props, when present, bounds the sequence
 * length (a longer one would index past the position table).
 *
 * onnxruntime-node is an optional dependency loaded on first use: without it the rest of lmdistill works
 * and opening an ONNX teacher is one UserError saying how to install it.
 */
import fs from 'node:fs';
import { UserError } from '../errors.js';
import { f16BitsToF32 } from '../io/safetensors.js';
import { topkFromLogits, type Teacher, type TeacherBatch, type TopK } from './teacher.js';

// The slice of onnxruntime-node's API used here, typed locally so lmdistill type-checks without the package.
interface OrtTensor { readonly data: unknown; readonly dims: readonly number[]; readonly type: string }
interface OrtValueMetadata { readonly name: string; readonly isTensor: boolean; readonly type?: string; readonly shape?: readonly (number | string)[] }
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
/** What `import('onnxruntime-node')` provides (InferenceSession + Tensor). */
export interface OrtModule {
  InferenceSession: { create(path: string, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: BigInt64Array | Int32Array, dims: readonly number[]) => OrtTensor;
}

const ORT_PACKAGE = 'onnxruntime-node';
const INSTALL_HINT = `npm install ${ORT_PACKAGE}@^1.30 (add onnxruntime-node-install=skip to .npmrc: its postinstall only fetches GPU libraries; the CPU runtime ships in the package)`;

/**
 * Loads onnxruntime-node (dynamic import, so it stays optional). `importer` is for tests. A missing or
 * broken package is one UserError saying how to install it.
 */
export async function loadOnnxRuntime(importer: () => Promise<unknown> = () => import(ORT_PACKAGE)): Promise<OrtModule> {
  let mod: unknown;
  try {
    mod = await importer();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if ((err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && String(err.message).includes(ORT_PACKAGE)) {
      throw new UserError(`ONNX teachers need the optional package ${ORT_PACKAGE}, which is not installed: ${INSTALL_HINT}`);
    }
    throw new UserError(`${ORT_PACKAGE} is installed but failed to load (${String(err.message ?? e).split('\n')[0]}); reinstall it: ${INSTALL_HINT}`);
  }
  const m = mod as Partial<OrtModule> & { default?: Partial<OrtModule> };
  const api = m.InferenceSession ? m : m.default;
  if (!api?.InferenceSession || !api.Tensor) throw new UserError(`${ORT_PACKAGE} loaded but has no InferenceSession/Tensor (an unsupported version?); ${INSTALL_HINT}`);
  return api as OrtModule;
}

/**
 * The model-level metadata_props (ModelProto field 14) of an .onnx file, read by walking the top-level
 * protobuf fields with positional reads: the graph (often most of the file) is skipped, never loaded.
 */
export function readOnnxMetadata(file: string): Record<string, string> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(16);
    let pos = 0;
    const varint = (): number => {
      const n = fs.readSync(fd, buf, 0, 10, pos);
      let v = 0, mul = 1;
      for (let i = 0; i < n; i++) {
        v += (buf[i] & 0x7f) * mul;
        mul *= 128;
        if (!(buf[i] & 0x80)) { pos += i + 1; return v; }
      }
      throw new Error('bad varint');
    };
    const out: Record<string, string> = {};
    while (pos < size) {
      const tag = varint();
      const field = Math.floor(tag / 8), wire = tag % 8;
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = varint();
        if (field === 14 && len < 1 << 20) { // StringStringEntryProto {1: key, 2: value}
          const entry = Buffer.alloc(len);
          fs.readSync(fd, entry, 0, len, pos);
          let p = 0, key = '', value = '';
          while (p < len) {
            const t = entry[p++];
            let l = 0, mul = 1;
            for (;;) { const b = entry[p++]; l += (b & 0x7f) * mul; mul *= 128; if (!(b & 0x80)) break; }
            const s = entry.toString('utf8', p, p + l);
            p += l;
            if (t === 0x0a) key = s; else if (t === 0x12) value = s;
          }
          out[key] = value;
        }
        pos += len;
      } else throw new Error(`unexpected wire type ${wire}`);
    }
    return out;
  } catch {
    return {}; // metadata is optional: a file we cannot walk is left to onnxruntime to judge
  } finally {
    fs.closeSync(fd);
  }
}

export interface OnnxTeacherOptions {
  /** name shown in logs and recorded in caches (default "onnx:<path>") */
  name?: string;
  /** input holding the token ids (default "input_ids", or the only input) */
  inputName?: string;
  /** output holding the logits (default "logits", or the only output) */
  outputName?: string;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, all cores) */
  threads?: number;
  /** longest sequence accepted (default: the model's `max_positions` metadata, else unbounded) */
  maxPositions?: number;
  /** how onnxruntime-node is loaded (tests) */
  loadRuntime?: () => Promise<OrtModule>;
}

const dtypeOf = (meta: OrtValueMetadata | undefined): string | undefined => (meta?.isTensor ? meta.type : undefined);

export class OnnxTeacher implements Teacher {
  readonly dense = true;

  private constructor(
    private readonly ort: OrtModule,
    private session: OrtSession | null,
    readonly name: string,
    readonly vocabSize: number,
    readonly maxPositions: number,
    private readonly io: { input: string; idType: 'int64' | 'int32'; mask?: string; positions?: string; output: string },
  ) {}

  /** Opens `modelPath` and checks its inputs/outputs (names, dtypes, ranks). Throws UserError on any mismatch. */
  static async open(modelPath: string, opts: OnnxTeacherOptions = {}): Promise<OnnxTeacher> {
    if (!fs.existsSync(modelPath) || !fs.statSync(modelPath).isFile()) throw new UserError(`ONNX model ${modelPath}: no such file`, 2);
    const ort = await (opts.loadRuntime ?? loadOnnxRuntime)();
    let session: OrtSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        executionProviders: ['cpu'], graphOptimizationLevel: 'all',
        ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
      });
    } catch (e) {
      throw new UserError(`cannot load ONNX model ${modelPath}: ${String((e as Error).message ?? e).split('\n')[0]}`, 2);
    }
    const fail = async (msg: string): Promise<never> => {
      await session.release();
      throw new UserError(`ONNX model ${modelPath}: ${msg}`, 2);
    };
    const pick = (names: readonly string[], wanted: string | undefined, dflt: string): string | undefined =>
      wanted ? (names.includes(wanted) ? wanted : undefined) : names.includes(dflt) ? dflt : names.length === 1 ? names[0] : undefined;
    const input = pick(session.inputNames, opts.inputName, 'input_ids');
    if (!input) return fail(`no token-id input ${opts.inputName ? `"${opts.inputName}"` : '"input_ids"'} among its inputs [${session.inputNames.join(', ')}]`);
    const output = pick(session.outputNames, opts.outputName, 'logits');
    if (!output) return fail(`no logits output ${opts.outputName ? `"${opts.outputName}"` : '"logits"'} among its outputs [${session.outputNames.join(', ')}]`);
    const extra = session.inputNames.filter((n) => n !== input && n !== 'attention_mask' && n !== 'position_ids');
    if (extra.length) return fail(`inputs [${extra.join(', ')}] are not supported (export the model without a KV cache: input_ids [, attention_mask, position_ids] → logits)`);

    const inMeta = session.inputMetadata?.find((m) => m.name === input);
    const idType = dtypeOf(inMeta) ?? 'int64';
    if (idType !== 'int64' && idType !== 'int32') return fail(`input "${input}" is ${idType}; token ids must be int64 or int32`);
    if (inMeta?.shape && inMeta.shape.length !== 2) return fail(`input "${input}" has rank ${inMeta.shape.length}; expected [batch, sequence]`);
    const outMeta = session.outputMetadata?.find((m) => m.name === output);
    const outType = dtypeOf(outMeta);
    if (outType && outType !== 'float32' && outType !== 'float16') return fail(`output "${output}" is ${outType}; logits must be float32 or float16`);
    if (outMeta?.shape && outMeta.shape.length !== 3) return fail(`output "${output}" has rank ${outMeta.shape.length}; expected [batch, sequence, vocab]`);

    const io = {
      input, idType: idType as 'int64' | 'int32', output,
      ...(session.inputNames.includes('attention_mask') && input !== 'attention_mask' ? { mask: 'attention_mask' } : {}),
      ...(session.inputNames.includes('position_ids') && input !== 'position_ids' ? { positions: 'position_ids' } : {}),
    };
    const metaMax = Number(readOnnxMetadata(modelPath).max_positions);
    const maxPositions = opts.maxPositions ?? (Number.isInteger(metaMax) && metaMax > 0 ? metaMax : Infinity);
    const name = opts.name ?? `onnx:${modelPath}`;
    const vDim = outMeta?.shape?.[2];
    let V = typeof vDim === 'number' && vDim > 0 ? vDim : 0;
    const teacher = new OnnxTeacher(ort, session, name, V, maxPositions, io);
    if (!V) { // symbolic vocab axis: one probe run on token 0
      const out = await teacher.runRaw(new Int32Array([0]), 1, 1).catch((e: unknown) => fail(`probe run failed: ${(e as Error).message}`));
      V = out.dims[2];
      return new OnnxTeacher(ort, session, name, V, maxPositions, io);
    }
    return teacher;
  }

  private async runRaw(input: Int32Array, B: number, T: number): Promise<OrtTensor> {
    if (!this.session) throw new Error('OnnxTeacher used after close()');
    const { Tensor } = this.ort;
    const ints = (f: (i: number) => number): BigInt64Array | Int32Array => {
      if (this.io.idType === 'int32') return Int32Array.from({ length: B * T }, (_, i) => f(i));
      const a = new BigInt64Array(B * T);
      for (let i = 0; i < a.length; i++) a[i] = BigInt(f(i));
      return a;
    };
    const feeds: Record<string, OrtTensor> = { [this.io.input]: new Tensor(this.io.idType, ints((i) => input[i]), [B, T]) };
    if (this.io.mask) feeds[this.io.mask] = new Tensor(this.io.idType, ints(() => 1), [B, T]);
    if (this.io.positions) feeds[this.io.positions] = new Tensor(this.io.idType, ints((i) => i % T), [B, T]);
    const res = await this.session.run(feeds, [this.io.output]);
    const out = res[this.io.output];
    if (!out || out.dims.length !== 3 || out.dims[0] !== B || out.dims[1] !== T) {
      throw new UserError(`ONNX teacher ${this.name}: output "${this.io.output}" has shape [${out?.dims.join(', ')}]; expected [${B}, ${T}, vocab]`);
    }
    return out;
  }

  /** Full next-token logits [B·T, V] (float32). */
  async logits(batch: TeacherBatch): Promise<Float32Array> {
    const { batchSize: B, seqLen: T, input } = batch;
    if (input.length !== B * T) throw new Error(`TeacherBatch: input has ${input.length} ids, expected ${B}×${T}`);
    if (T > this.maxPositions) throw new UserError(`ONNX teacher ${this.name} handles at most ${this.maxPositions} positions; the batch has ${T} (lower data.seq_len)`, 2);
    for (let i = 0; i < input.length; i++) {
      if (input[i] < 0 || input[i] >= this.vocabSize) throw new UserError(`token id ${input[i]} is outside the ONNX teacher's vocabulary of ${this.vocabSize} (tokenizer and teacher do not match)`, 2);
    }
    const out = await this.runRaw(input, B, T);
    if (out.dims[2] !== this.vocabSize) throw new UserError(`ONNX teacher ${this.name}: logits have ${out.dims[2]} columns, expected vocab ${this.vocabSize}`);
    if (out.type === 'float32') return out.data as Float32Array;
    if (out.type === 'float16') {
      const bits = out.data as Uint16Array;
      const f = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) f[i] = f16BitsToF32(bits[i]);
      return f;
    }
    throw new UserError(`ONNX teacher ${this.name}: logits are ${out.type}; expected float32 or float16`);
  }

  async topk(batch: TeacherBatch, k: number): Promise<TopK> {
    return topkFromLogits(await this.logits(batch), this.vocabSize, k);
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    await s?.release();
  }
}
