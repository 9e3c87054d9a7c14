/**
 * Hugging Face `tokenizer.json` (byte-level BPE subset) and GPT-2 `encoder.json` + `vocab.bpe`:
 * strict parsing into a `BpeSpec`, and serialisation back.
 *
 * Supported: model BPE (optionally `unk_token`/`fuse_unk`/`ignore_merges`), pre-tokenizer ByteLevel,
 * decoder ByteLevel, post-processor ByteLevel or null, normalizer null, truncation null, added tokens
 * without `lstrip`/`rstrip`/`single_word`. Anything else is a `UserError` saying what is unsupported.
 * Unknown keys are errors too: a misspelt or newer field is reported rather than silently ignored.
 */
import { hasLoneSurrogate } from './specials.js';
import {
  expectArray,
  expectBool,
  expectIndex,
  expectRecord,
  fail,
  failWith,
  field,
  isRecord,
  keyPath,
  quote,
} from './validate.js';

/** Token ids must be below this (2^21 ≈ 2.1 M; the largest real vocabs are ~260 k). Bounds every allocation. */
export const MAX_TOKEN_ID = 1 << 21;
/** Most merges accepted. */
export const MAX_MERGES = 1 << 21;
/** Most added tokens accepted. */
export const MAX_ADDED_TOKENS = 1 << 16;

/** An added token: matched verbatim in text before pre-tokenization. */
export interface AddedTokenSpec {
  id: number;
  content: string;
  /** Hugging Face `special` flag (e.g. `<|endoftext|>`); non-special added tokens are matched the same way. */
  special: boolean;
}

/** Everything a `BpeTokenizer` is built from; produced by parsing or training, always already validated. */
export interface BpeSpec {
  /** Model vocab: token (in byte-symbol form) → id. */
  vocab: Map<string, number>;
  /** Merges in rank order; both parts and their concatenation are in `vocab`. */
  merges: Array<[string, string]>;
  added: AddedTokenSpec[];
  addPrefixSpace: boolean;
  trimOffsets: boolean;
  useRegex: boolean;
  unkToken: string | null;
  fuseUnk: boolean;
  ignoreMerges: boolean;
}

const TOP_KEYS = ['version', 'truncation', 'padding', 'added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'model'];
const MODEL_KEYS = ['type', 'dropout', 'unk_token', 'continuing_subword_prefix', 'end_of_word_suffix', 'fuse_unk', 'byte_fallback', 'ignore_merges', 'vocab', 'merges'];
const BYTE_LEVEL_KEYS = ['type', 'add_prefix_space', 'trim_offsets', 'use_regex'];
const ADDED_KEYS = ['id', 'content', 'single_word', 'lstrip', 'rstrip', 'normalized', 'special'];

interface ByteLevelOptions {
  addPrefixSpace: boolean;
  trimOffsets: boolean;
  useRegex: boolean;
}

/** A ByteLevel component (pre-tokenizer, post-processor or decoder); other types are unsupported. */
function parseByteLevel(source: string, path: string, value: unknown): ByteLevelOptions {
  if (isRecord(value) && field(value, 'type') !== 'ByteLevel') {
    fail(source, `${path}.type`, field(value, 'type'), '"ByteLevel" (the only supported type)');
  }
  const o = expectRecord(source, path, value, BYTE_LEVEL_KEYS);
  return {
    addPrefixSpace: expectBool(source, `${path}.add_prefix_space`, field(o, 'add_prefix_space')),
    trimOffsets: expectBool(source, `${path}.trim_offsets`, field(o, 'trim_offsets')),
    useRegex: expectBool(source, `${path}.use_regex`, field(o, 'use_regex'), true),
  };
}

function expectToken(source: string, path: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(source, path, value, 'a non-empty string');
  if (hasLoneSurrogate(value)) fail(source, path, value, 'valid Unicode (it has an unpaired surrogate)');
  return value;
}

/**
 * Parses a token → id map (`model.vocab`, or GPT-2 `encoder.json` when `path` is empty): unique
 * non-negative integer ids.
 */
export function parseVocab(source: string, path: string, value: unknown): Map<string, number> {
  const where = path === '' ? 'the top level' : path;
  const entry = (tok: string): string => (path === '' ? `entry ${quote(tok)}` : `${path}${keyPath(tok)}`);
  if (!isRecord(value)) fail(source, where, value, 'an object mapping tokens to ids');
  const keys = Object.keys(value);
  if (keys.length > MAX_TOKEN_ID) failWith(source, `${where} has ${keys.length} tokens; expected at most ${MAX_TOKEN_ID}`);
  const vocab = new Map<string, number>();
  const owner = new Map<number, string>();
  for (const tok of keys) {
    const p = entry(tok);
    expectToken(source, `a key of ${where}`, tok);
    const id = expectIndex(source, p, value[tok], MAX_TOKEN_ID);
    const other = owner.get(id);
    if (other !== undefined) failWith(source, `${p} is ${id}, but ${entry(other)} already has id ${id}; expected unique ids`);
    owner.set(id, tok);
    vocab.set(tok, id);
  }
  return vocab;
}

function parseMerge(source: string, path: string, value: unknown): [string, string] {
  if (typeof value === 'string') {
    const parts = value.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') fail(source, path, value, 'two tokens separated by one space, like "a b"');
    return [parts[0]!, parts[1]!];
  }
  if (Array.isArray(value)) {
    if (value.length !== 2) fail(source, path, value, 'a pair of tokens ["a", "b"] or a string "a b"');
    return [expectToken(source, `${path}[0]`, value[0]), expectToken(source, `${path}[1]`, value[1])];
  }
  return fail(source, path, value, 'a pair of tokens ["a", "b"] or a string "a b"');
}

/** Checks merges against the vocab: both parts and their concatenation exist, and no merge repeats. */
export function checkMerges(source: string, path: string, merges: Array<[string, string]>, vocab: Map<string, number>): void {
  const seen = new Set<number>();
  merges.forEach(([a, b], i) => {
    const p = `${path}[${i}]`;
    for (const t of [a, b, a + b]) {
      if (!vocab.has(t)) failWith(source, `${p} (${quote(a)} + ${quote(b)}) needs token ${quote(t)}, which is not in the vocab`);
    }
    const key = vocab.get(a)! * MAX_TOKEN_ID + vocab.get(b)!; // ids < 2^21, so the key is exact and unique
    if (seen.has(key)) failWith(source, `${p} (${quote(a)} + ${quote(b)}) repeats an earlier merge; expected each merge once`);
    seen.add(key);
  });
}

function parseAddedTokens(source: string, value: unknown, vocab: Map<string, number>): AddedTokenSpec[] {
  if (value === undefined || value === null) return [];
  const arr = expectArray(source, 'added_tokens', value, MAX_ADDED_TOKENS);
  const idToVocabToken = new Map<number, string>();
  for (const [t, id] of vocab) idToVocabToken.set(id, t);
  const byContent = new Set<string>();
  const byId = new Set<number>();
  return arr.map((item, i) => {
    const p = `added_tokens[${i}]`;
    const o = expectRecord(source, p, item, ADDED_KEYS);
    const id = expectIndex(source, `${p}.id`, field(o, 'id'), MAX_TOKEN_ID);
    const content = expectToken(source, `${p}.content`, field(o, 'content'));
    for (const flag of ['single_word', 'lstrip', 'rstrip']) {
      if (expectBool(source, `${p}.${flag}`, field(o, flag), false)) fail(source, `${p}.${flag}`, true, 'false (this option is not supported)');
    }
    expectBool(source, `${p}.normalized`, field(o, 'normalized'), false); // no normalizer, so it has no effect
    const special = expectBool(source, `${p}.special`, field(o, 'special'), false);
    if (byContent.has(content)) fail(source, `${p}.content`, content, 'each added token once');
    if (byId.has(id)) fail(source, `${p}.id`, id, 'an id not used by another added token');
    const vocabId = vocab.get(content);
    if (vocabId !== undefined && vocabId !== id) fail(source, `${p}.id`, id, `${vocabId}, the id of this token in model.vocab`);
    const holder = idToVocabToken.get(id);
    if (vocabId === undefined && holder !== undefined) {
      fail(source, `${p}.id`, id, `an id not already used by model.vocab token ${quote(holder)}`);
    }
    byContent.add(content);
    byId.add(id);
    return { id, content, special };
  });
}

function expectNullish(source: string, path: string, value: unknown, what: string): void {
  if (value !== undefined && value !== null) fail(source, path, value, `null (${what} is not supported)`);
}

function expectEmptyAffix(source: string, path: string, value: unknown): void {
  if (value !== undefined && value !== null && value !== '') fail(source, path, value, 'null (subword prefixes/suffixes are not supported by byte-level BPE)');
}

/**
 * Validates a parsed `tokenizer.json` object. `source` names the file in error messages.
 * Throws `UserError` for anything malformed or unsupported.
 */
export function parseTokenizerJson(obj: unknown, source: string): BpeSpec {
  const top = expectRecord(source, 'the top level', obj, TOP_KEYS);
  const version = field(top, 'version');
  if (version !== undefined && version !== '1.0') fail(source, 'version', version, '"1.0"');
  expectNullish(source, 'truncation', field(top, 'truncation'), 'truncation');
  const padding = field(top, 'padding');
  if (padding !== undefined && padding !== null && !isRecord(padding)) fail(source, 'padding', padding, 'null or an object');
  expectNullish(source, 'normalizer', field(top, 'normalizer'), 'a normalizer');
  const pre = parseByteLevel(source, 'pre_tokenizer', field(top, 'pre_tokenizer'));
  const post = field(top, 'post_processor');
  if (post !== undefined && post !== null) parseByteLevel(source, 'post_processor', post);
  parseByteLevel(source, 'decoder', field(top, 'decoder'));

  const model = field(top, 'model');
  if (isRecord(model) && field(model, 'type') !== 'BPE') fail(source, 'model.type', field(model, 'type'), '"BPE"');
  const m = expectRecord(source, 'model', model, MODEL_KEYS);
  const dropout = field(m, 'dropout');
  if (dropout !== undefined && dropout !== null) fail(source, 'model.dropout', dropout, 'null (BPE dropout is not supported)');
  expectEmptyAffix(source, 'model.continuing_subword_prefix', field(m, 'continuing_subword_prefix'));
  expectEmptyAffix(source, 'model.end_of_word_suffix', field(m, 'end_of_word_suffix'));
  if (expectBool(source, 'model.byte_fallback', field(m, 'byte_fallback'), false)) {
    fail(source, 'model.byte_fallback', true, 'false (byte fallback is not supported; byte-level BPE does not need it)');
  }
  const fuseUnk = expectBool(source, 'model.fuse_unk', field(m, 'fuse_unk'), false);
  const ignoreMerges = expectBool(source, 'model.ignore_merges', field(m, 'ignore_merges'), false);
  const vocab = parseVocab(source, 'model.vocab', field(m, 'vocab'));
  const unkRaw = field(m, 'unk_token');
  let unkToken: string | null = null;
  if (unkRaw !== undefined && unkRaw !== null) {
    unkToken = expectToken(source, 'model.unk_token', unkRaw);
    if (!vocab.has(unkToken)) fail(source, 'model.unk_token', unkToken, 'null or a token in model.vocab');
  }
  const mergesRaw = expectArray(source, 'model.merges', field(m, 'merges'), MAX_MERGES);
  const merges = mergesRaw.map((v, i) => parseMerge(source, `model.merges[${i}]`, v));
  checkMerges(source, 'model.merges', merges, vocab);
  const added = parseAddedTokens(source, field(top, 'added_tokens'), vocab);
  return { vocab, merges, added, ...pre, unkToken, fuseUnk, ignoreMerges };
}

/** Token that GPT-2 uses as end of text; marked special when present in `encoder.json`. */
export const GPT2_EOT = '<|endoftext|>';

/**
 * Validates the original GPT-2 files: `encoder.json` (token → id) and `vocab.bpe` (a `#version`
 * line, then one merge "a b" per line). `<|endoftext|>`, if in the encoder, becomes a special token.
 */
export function parseGpt2Files(encoderJson: unknown, vocabBpe: string, sources: { encoder: string; merges: string }): BpeSpec {
  const vocab = parseVocab(sources.encoder, '', encoderJson);
  if (typeof vocabBpe !== 'string') fail(sources.merges, 'the file', vocabBpe, 'text');
  const lines = vocabBpe.split('\n');
  if (lines.length > MAX_MERGES + 2) failWith(sources.merges, `has ${lines.length} lines; expected at most ${MAX_MERGES} merges`);
  const merges: Array<[string, string]> = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    merges.push(parseMerge(sources.merges, `line ${i + 1}`, line));
  });
  checkMerges(sources.merges, 'merge', merges, vocab);
  const eot = vocab.get(GPT2_EOT);
  const added: AddedTokenSpec[] = eot === undefined ? [] : [{ id: eot, content: GPT2_EOT, special: true }];
  return { vocab, merges, added, addPrefixSpace: false, trimOffsets: true, useRegex: true, unkToken: null, fuseUnk: false, ignoreMerges: false };
}

/** Serialises a spec as a Hugging Face `tokenizer.json` object (merges in the array-of-pairs form). */
export function toTokenizerJson(spec: BpeSpec): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: spec.addPrefixSpace, trim_offsets: spec.trimOffsets, use_regex: spec.useRegex };
  // Object.fromEntries defines own properties, so a token named "__proto__" stays an ordinary key.
  const vocab = Object.fromEntries([...spec.vocab].sort((x, y) => x[1] - y[1]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...spec.added]
      .sort((x, y) => x.id - y.id)
      .map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special })),
    normalizer: null,
    pre_tokenizer: { ...byteLevel },
    post_processor: { ...byteLevel },
    decoder: { ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: spec.unkToken,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: spec.fuseUnk,
      byte_fallback: false,
      ignore_merges: spec.ignoreMerges,
      vocab,
      merges: spec.merges.map(([a, b]) => [a, b]),
    },
  };
}
