/**
 * `lmdistill teacher-cache`: scores a config's dataset split with one or more teachers and writes the
 * top-k cache (src/teachers/cache.ts) that `distill.teacher: {cache: DIR}` reads. Resumable: rerun the
 * same command after an interruption or crash. Ctrl-C finishes and commits the shards already started,
 * then stops; a second Ctrl-C quits at once (nothing committed is lost either way).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadTrainConfig } from '../config/load.js';
import { prepareData } from '../data/prepare.js';
import { UserError } from '../errors.js';
import { loadPretrained } from '../models/registry.js';
import type { BpeTokenizer } from '../tokenizer/index.js';
import { buildTeacherCache } from '../teachers/cache-build.js';
import { LocalTeacher } from '../teachers/local.js';
import type { Teacher } from '../teachers/teacher.js';
import { intArg } from './args.js';
import { createReporter, fmtDuration } from './progress.js';

interface TeacherCacheOpts {
  config: string;
  teacher: string[];
  k?: number;
  out?: string;
  split: 'train' | 'val';
  batchSize: number;
  shardRecords?: number;
  concurrency?: number;
  teacherName?: string;
  serverModel?: string;
  apiKeyEnv?: string;
  serverVocab?: number;
  threads?: number;
  json?: boolean;
}

/** Options of the OpenAI-compatible teacher that this command sets (the rest keep their defaults). */
interface OpenAITeacherCtor {
  new (o: { baseURL: string; tokenizer: BpeTokenizer; model?: string; apiKey?: string; vocabSize?: number }): Teacher;
}

/** A teacher from `--teacher`: an http(s) URL, an .onnx file, or a Hugging Face model folder. */
export async function openTeacherSource(spec: string, ctx: { tokenizer: BpeTokenizer; serverModel?: string; apiKey?: string; serverVocab?: number; threads?: number }): Promise<Teacher> {
  if (/^https?:\/\//i.test(spec)) {
    let mod: { OpenAITeacher?: OpenAITeacherCtor };
    try {
      // resolved at run time (a computed specifier), so this command builds without the OpenAI teacher
      mod = (await import(new URL('../teachers/openai.js', import.meta.url).href)) as typeof mod;
    } catch (e) {
      throw new UserError(`--teacher ${spec}: the OpenAI-compatible teacher is not available in this build (${(e as Error).message.split('\n')[0]})`, 2);
    }
    if (!mod.OpenAITeacher) throw new UserError(`--teacher ${spec}: the OpenAI-compatible teacher is not available in this build`, 2);
    return new mod.OpenAITeacher({
      baseURL: spec, tokenizer: ctx.tokenizer,
      ...(ctx.serverModel ? { model: ctx.serverModel } : {}), ...(ctx.apiKey ? { apiKey: ctx.apiKey } : {}), ...(ctx.serverVocab ? { vocabSize: ctx.serverVocab } : {}),
    });
  }
  if (!fs.existsSync(spec)) throw new UserError(`--teacher ${spec}: no such file or directory (expected a model folder, an .onnx file or an http(s):// URL)`, 2);
  if (fs.statSync(spec).isFile()) {
    if (!spec.toLowerCase().endsWith('.onnx')) throw new UserError(`--teacher ${spec}: a file teacher must be an .onnx model`, 2);
    const { OnnxTeacher } = await import('../teachers/onnx.js');
    return OnnxTeacher.open(spec, { ...(ctx.threads ? { threads: ctx.threads } : {}) });
  }
  return new LocalTeacher(loadPretrained(spec), `local:${spec}`);
}

/** sha256 of the tokenizer's canonical JSON: a cache records which tokenization its rows came from. */
export function tokenizerHash(tok: BpeTokenizer): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(tok.toJSON())).digest('hex')}`;
}

export function registerTeacherCache(program: Command): void {
  program
    .command('teacher-cache')
    .description("score a config's dataset with one or more teachers and write an on-disk top-k cache (rerun to resume)")
    .requiredOption('-c, --config <file>', 'training/distillation config (its data and tokenizer sections define the dataset)')
    .option('--teacher <dir|file.onnx|url>', 'teacher: HF model folder, .onnx file or OpenAI-compatible URL (repeat to split the work; default: distill.teacher)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--k <n>', 'top-k tokens kept per position (default: distill.top_k, else 16)', intArg('--k'))
    .option('--out <dir>', 'cache directory (default: distill.teacher.cache)')
    .option('--split <which>', '"train" or "val"', (v) => {
      if (v !== 'train' && v !== 'val') throw new UserError(`--split expects "train" or "val", got "${v}"`, 2);
      return v;
    }, 'train')
    .option('--batch-size <n>', 'sequences per teacher call', intArg('--batch-size'), 8)
    .option('--shard-records <n>', 'sequences per shard file (default: ~16 MiB shards)', intArg('--shard-records'))
    .option('--concurrency <n>', 'batches in flight per teacher (default 1; raise for servers)', intArg('--concurrency'))
    .option('--teacher-name <name>', 'name recorded in the cache (default: the teachers\' names)')
    .option('--server-model <name>', 'model name to ask URL teachers for (default: the first the server lists)')
    .option('--api-key-env <var>', 'environment variable holding the API key of URL teachers')
    .option('--server-vocab <n>', "vocabulary size of URL teachers' model when larger than the tokenizer's (padded vocabularies)", intArg('--server-vocab'))
    .option('--threads <n>', 'onnxruntime threads of .onnx teachers', intArg('--threads'))
    .option('--json', 'print the result as JSON')
    .action(teacherCacheCommand);
}

export async function teacherCacheCommand(o: TeacherCacheOpts): Promise<void> {
  const cfg = loadTrainConfig(o.config);
  const spec = cfg.distill?.teacher;
  const out = o.out ?? (spec && 'cache' in spec ? spec.cache : undefined);
  if (!out) throw new UserError('--out DIR is required (or set distill.teacher: {cache: DIR} in the config)', 2);
  let sources = o.teacher;
  if (sources.length === 0) {
    if (spec && 'onnx' in spec) sources = [spec.onnx];
    else if (spec && 'url' in spec) sources = [spec.url];
    else if (spec && 'model' in spec) sources = [spec.model];
    else throw new UserError('--teacher is required (a model folder, an .onnx file or a URL; the config\'s distill.teacher is a cache)', 2);
  }
  const k = o.k ?? (cfg.distill && cfg.distill.top_k > 0 ? cfg.distill.top_k : 16);
  let apiKey: string | undefined;
  if (o.apiKeyEnv) {
    apiKey = process.env[o.apiKeyEnv];
    if (!apiKey) throw new UserError(`--api-key-env ${o.apiKeyEnv}: the variable is not set`, 2);
  } else if (spec && 'url' in spec && spec.api_key_env) apiKey = process.env[spec.api_key_env];
  const serverModel = o.serverModel ?? (spec && 'url' in spec ? spec.model : undefined);

  const rep = createReporter();
  const stages = { corpus: 'reading corpus', tokenizer: 'training tokenizer', encode: 'tokenizing' };
  let stage = '';
  const data = prepareData(cfg, cfg.out_dir, (s, done, total) => {
    if (s !== stage) { stage = s; rep.start(total, done, stages[s]); }
    rep.update(done, {});
  });
  rep.stop();
  const dataset = o.split === 'val' ? data.val : data.train;

  const teachers: Teacher[] = [];
  const abort = new AbortController();
  const onSigint = (): void => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
    rep.log('interrupt: finishing the shards in flight (Ctrl-C again to quit now; rerun to resume)');
  };
  process.on('SIGINT', onSigint);
  try {
    for (const s of sources) teachers.push(await openTeacherSource(s, { tokenizer: data.tokenizer, serverModel, apiKey, serverVocab: o.serverVocab, threads: o.threads }));
    for (const t of teachers) {
      if (t.vocabSize < data.tokenizer.vocabSize) {
        throw new UserError(`teacher ${t.name} has ${t.vocabSize} tokens but the tokenizer (${data.tokenizerOrigin}) has ${data.tokenizerOrigin === 'trained' ? 'been trained to ' : ''}${data.tokenizer.vocabSize}; teacher and student must share one tokenizer`, 2);
      }
    }
    const t0 = Date.now();
    let startRows = -1;
    rep.log(`teacher cache ${out}: ${dataset.length} ${o.split} sequences × ${dataset.seqLen} tokens, top-${k}, ${teachers.length} teacher(s)`);
    const res = await buildTeacherCache({
      teachers, dataset, k, dir: out, batchSize: o.batchSize, signal: abort.signal,
      ...(o.shardRecords ? { shardRecords: o.shardRecords } : {}),
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      ...(o.teacherName ? { teacherName: o.teacherName } : {}),
      tokenizerHash: tokenizerHash(data.tokenizer),
      onLog: (m) => rep.log(m),
      onProgress: (p) => {
        if (startRows < 0) { startRows = p.rowsDone; rep.start(p.rowsTotal, p.rowsDone, 'scoring'); }
        const rate = (p.rowsDone - startRows) / Math.max(1e-3, (Date.now() - t0) / 1000);
        const eta = rate > 0 ? ((p.rowsTotal - p.rowsDone) / rate) * 1000 : Infinity;
        rep.update(p.rowsDone, { shards: `${p.shardsDone}/${p.shardsTotal}`, 'tok/s': (rate * dataset.seqLen).toFixed(0), ETA: fmtDuration(eta) });
      },
    });
    rep.stop();
    const m = res.manifest;
    const bytes = m.shards.reduce((a, s) => a + s.bytes, 0);
    const result = {
      dir: out, complete: m.complete, rows: m.rows, seq_len: m.seqLen, k: m.k, vocab_size: m.vocabSize,
      bytes_per_token: m.k * (m.idBytes + 2), bytes, shards: m.shards.length, rows_computed: res.rowsComputed, rows_resumed: res.resumedRows,
      teacher: m.teacher, seconds: (Date.now() - t0) / 1000,
    };
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
    else {
      process.stdout.write(`${m.complete ? 'wrote' : 'partial (rerun to finish)'} ${path.join(out, 'manifest.json')}: ${m.rows} sequences × ${m.seqLen} tokens, top-${m.k}, `
        + `${result.bytes_per_token} B/token, ${(bytes / 1e6).toFixed(1)} MB in ${m.shards.length} shard(s)`
        + `${res.resumedRows ? ` (${res.resumedRows} sequences resumed)` : ''}\n`);
    }
    if (!m.complete) process.exitCode = 130;
  } finally {
    process.off('SIGINT', onSigint);
    rep.stop();
    for (const t of teachers) await t.close();
  }
}
