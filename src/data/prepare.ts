/**
 * text → tokens → packed train/validation sequences, for a training config. The tokenizer is loaded
 * from `tokenizer.path`, or reused from the run folder, or trained on the training split and saved
 * there (so a resumed run tokenizes identically).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CorpusSourceConfig, TrainConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import { BpeTokenizer } from '../tokenizer/index.js';
import { loadCorpus, loadPairs, type CorpusSource } from './corpus.js';
import { packDocuments, packExamples, type PackedDataset } from './packing.js';
import { splitDocuments } from './split.js';

export const EOS_TOKEN = '<|endoftext|>';

export function toCorpusSource(s: CorpusSourceConfig): CorpusSource {
  if ('embedded' in s) return { kind: 'embedded', name: s.embedded };
  if ('text' in s) return { kind: 'text', path: s.text };
  if ('dir' in s) return { kind: 'dir', path: s.dir };
  if ('jsonl' in s) return { kind: 'jsonl', path: s.jsonl, field: s.field };
  throw new UserError(`data.source {pairs: ${s.pairs}} holds prompt/response examples, not plain text; this command needs a text source`, 2);
}

export interface PreparedData {
  tokenizer: BpeTokenizer;
  /** where the tokenizer came from: a path, or "trained" */
  tokenizerOrigin: string;
  train: PackedDataset;
  val: PackedDataset;
  /** prompt/response data: the prompt length of each row (prompt tokens are never trained on) */
  promptLens?: { train: Int32Array; val: Int32Array };
  /** token streams of each split (documents joined) */
  trainTokens: number;
  valTokens: number;
  documents: { train: number; val: number };
}

export type PrepareProgress = (stage: 'corpus' | 'tokenizer' | 'encode', done: number, total: number) => void;

/** Encodes each document (reporting progress every few documents). */
export function encodeDocuments(tok: BpeTokenizer, docs: string[], onProgress?: (done: number, total: number) => void): number[][] {
  return docs.map((d, i) => {
    const ids = tok.encode(d);
    onProgress?.(i + 1, docs.length);
    return ids;
  });
}

function loadTokenizer(cfg: Pick<TrainConfig, 'tokenizer'>, runDir: string, trainTexts: string[], onProgress?: PrepareProgress): { tokenizer: BpeTokenizer; origin: string } {
  let tokenizer: BpeTokenizer;
  let origin: string;
  const runTok = path.join(runDir, 'tokenizer.json');
  if (cfg.tokenizer.path) {
    tokenizer = BpeTokenizer.load(cfg.tokenizer.path);
    origin = cfg.tokenizer.path;
  } else if (fs.existsSync(runTok)) {
    tokenizer = BpeTokenizer.load(runTok);
    origin = runTok;
  } else {
    tokenizer = BpeTokenizer.train(trainTexts, { vocabSize: cfg.tokenizer.vocab_size, minFrequency: cfg.tokenizer.min_frequency, specialTokens: [EOS_TOKEN] },
      (d, t) => onProgress?.('tokenizer', d, t));
    fs.mkdirSync(runDir, { recursive: true });
    tokenizer.save(runTok);
    origin = 'trained';
  }
  return { tokenizer, origin };
}

function splitOrThrow<T>(items: T[], cfg: Pick<TrainConfig, 'data'>, what: string): { train: T[]; val: T[] } {
  const split = splitDocuments(items, { valFraction: cfg.data.val_fraction, seed: cfg.data.split_seed });
  if (split.val.length === 0 || split.train.length === 0) {
    throw new UserError(`data.source yields ${items.length} ${what}; a train/validation split needs at least 2 (split a single text file into several, or use a directory)`, 2);
  }
  return split;
}

/** Prompt/response JSONL → one masked row per example (see packExamples). */
function preparePairs(cfg: Pick<TrainConfig, 'data' | 'tokenizer'>, runDir: string, onProgress?: PrepareProgress): PreparedData {
  const src = cfg.data.source as Extract<CorpusSourceConfig, { pairs: string }>;
  onProgress?.('corpus', 0, 1);
  const pairs = loadPairs(src.pairs, src.prompt_field, src.response_field);
  onProgress?.('corpus', 1, 1);
  const split = splitOrThrow(pairs, cfg, 'example(s)');
  const { tokenizer, origin } = loadTokenizer(cfg, runDir, split.train.flatMap((p) => [p.prompt, p.response]), onProgress);
  let done = 0;
  const encode = (ps: typeof pairs) => ps.map((p) => {
    onProgress?.('encode', ++done, pairs.length);
    return { prompt: tokenizer.encode(p.prompt), response: tokenizer.encode(p.response) };
  });
  const padId = tokenizer.eosId ?? 0;
  const tr = packExamples(encode(split.train), { seqLen: cfg.data.seq_len, eosId: tokenizer.eosId, padId });
  const va = packExamples(encode(split.val), { seqLen: cfg.data.seq_len, eosId: tokenizer.eosId, padId });
  const count = (d: PackedDataset): number => d.mask!.reduce((a, m) => a + m, 0);
  return {
    tokenizer, tokenizerOrigin: origin, train: tr.dataset, val: va.dataset,
    promptLens: { train: tr.promptLens, val: va.promptLens },
    trainTokens: count(tr.dataset), valTokens: count(va.dataset),
    documents: { train: split.train.length, val: split.val.length },
  };
}

export function prepareData(cfg: Pick<TrainConfig, 'data' | 'tokenizer'>, runDir: string, onProgress?: PrepareProgress): PreparedData {
  if ('pairs' in cfg.data.source) return preparePairs(cfg, runDir, onProgress);
  onProgress?.('corpus', 0, 1);
  const docs = loadCorpus(toCorpusSource(cfg.data.source));
  onProgress?.('corpus', 1, 1);
  const split = splitOrThrow(docs, cfg, 'document(s)');
  const { tokenizer, origin } = loadTokenizer(cfg, runDir, split.train, onProgress);
  const all = [...split.train, ...split.val];
  let done = 0;
  const enc = (ds: string[]): number[][] => encodeDocuments(tokenizer, ds, () => onProgress?.('encode', ++done, all.length));
  const trainIds = enc(split.train);
  const valIds = enc(split.val);
  const eosId = tokenizer.eosId;
  const seqLen = cfg.data.seq_len;
  const count = (xs: number[][]): number => xs.reduce((a, x) => a + x.length, 0);
  const pack = (ids: number[][], which: string): PackedDataset => {
    try {
      return packDocuments(ids, { seqLen, eosId });
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`${which} split: ${e.message}`, 2);
      throw e;
    }
  };
  return {
    tokenizer, tokenizerOrigin: origin,
    train: pack(trainIds, 'training'), val: pack(valIds, 'validation'),
    trainTokens: count(trainIds), valTokens: count(valIds),
    documents: { train: split.train.length, val: split.val.length },
  };
}

/**
 * Perplexity on `val`'s targets of the add-one-smoothed unigram distribution estimated from `train`'s
 * targets — the baseline a language model must beat by a wide margin.
 */
export function unigramPerplexity(train: PackedDataset, val: PackedDataset, vocabSize: number): number {
  const counts = new Float64Array(vocabSize).fill(1);
  let total = vocabSize;
  const w = train.seqLen + 1;
  const counted = (d: PackedDataset, r: number, t: number): boolean => !d.mask || d.mask[r * d.seqLen + t - 1] !== 0;
  for (let r = 0; r < train.length; r++) for (let t = 1; t < w; t++) if (counted(train, r, t)) { counts[train.data[r * w + t]]++; total++; }
  let nll = 0, n = 0;
  const wv = val.seqLen + 1;
  for (let r = 0; r < val.length; r++) for (let t = 1; t < wv; t++) if (counted(val, r, t)) { nll -= Math.log(counts[val.data[r * wv + t]] / total); n++; }
  return Math.exp(nll / n);
}
