/**
 * Loading validation: each kind of bad or unsupported tokenizer file gives a UserError that names the
 * file and the offending key, and says what was expected.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import { BpeTokenizer, MAX_TOKENIZER_FILE_BYTES } from '../../src/tokenizer/index.js';
import { FIXTURE_TOKENIZER } from '../../tools/tokenizer/fixture.js';

type Json = Record<string, unknown> & { model: Record<string, unknown> & { vocab: Record<string, number>; merges: unknown[] } };

describe('tokenizer.json validation', () => {
  let tmp: string;
  let base: Json;
  let n = 0;

  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'lmdistill-tok-load-'));
    base = JSON.parse(readFileSync(FIXTURE_TOKENIZER, 'utf8')) as Json;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const clone = (): Json => structuredClone(base);

  /** Writes `content` to a fresh file, loads it, and checks the UserError message matches every pattern. */
  function expectLoadError(content: string | Buffer, ...patterns: RegExp[]): string {
    const file = path.join(tmp, `case-${n++}.json`);
    writeFileSync(file, content);
    let err: unknown;
    try {
      BpeTokenizer.load(file);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    for (const p of patterns) assert.match(err.message, p);
    return err.message;
  }

  it('names the model type it cannot handle', () => {
    const j = clone();
    j.model['type'] = 'WordPiece';
    const msg = expectLoadError(JSON.stringify(j));
    assert.ok(msg.endsWith('model.type is "WordPiece"; expected "BPE"'), msg);
  });

  it('rejects unsupported components with the component named', () => {
    const cases: Array<[(j: Json) => void, RegExp]> = [
      [(j) => (j['normalizer'] = { type: 'NFC' }), /normalizer is an object; expected null \(a normalizer is not supported\)/],
      [(j) => (j['pre_tokenizer'] = { type: 'Sequence', pretokenizers: [] }), /pre_tokenizer\.type is "Sequence"; expected "ByteLevel"/],
      [(j) => (j['pre_tokenizer'] = null), /pre_tokenizer is null; expected an object/],
      [(j) => (j['decoder'] = { type: 'WordPiece' }), /decoder\.type is "WordPiece"/],
      [(j) => (j['post_processor'] = { type: 'TemplateProcessing' }), /post_processor\.type is "TemplateProcessing"/],
      [(j) => (j['truncation'] = { max_length: 5 }), /truncation is an object; expected null/],
      [(j) => (j.model['dropout'] = 0.1), /model\.dropout is 0\.1/],
      [(j) => (j.model['byte_fallback'] = true), /model\.byte_fallback is true; expected false/],
      [(j) => (j.model['continuing_subword_prefix'] = '##'), /model\.continuing_subword_prefix is "##"/],
      [(j) => ((j['added_tokens'] as Array<Record<string, unknown>>)[0]!['lstrip'] = true), /added_tokens\[0\]\.lstrip is true; expected false/],
      [(j) => (j['version'] = '2.0'), /version is "2\.0"; expected "1\.0"/],
    ];
    for (const [mutate, pattern] of cases) {
      const j = clone();
      mutate(j);
      expectLoadError(JSON.stringify(j), pattern);
    }
  });

  it('rejects bad vocab, merges and added tokens, naming the entry', () => {
    const cases: Array<[(j: Json) => void, RegExp]> = [
      [(j) => (j.model.vocab['Ġt'] = -1), /model\.vocab\["Ġt"\] is -1; expected an integer from 0/],
      [(j) => (j.model.vocab['Ġt'] = 1.5), /model\.vocab\["Ġt"\] is 1\.5/],
      [(j) => (j.model.vocab['Ġt'] = 2 ** 40), /model\.vocab\["Ġt"\] is 1099511627776; expected an integer from 0 to 2097151/],
      [(j) => (j.model.vocab['Ġt'] = j.model.vocab['a']!), /already has id .*; expected unique ids/],
      [(j) => (j.model.vocab = [] as unknown as Record<string, number>), /model\.vocab is an array of 0 items; expected an object/],
      [(j) => j.model.merges.push(['Ġt', 'zzz']), /model\.merges\[\d+\] \("Ġt" \+ "zzz"\) needs token "zzz", which is not in the vocab/],
      [(j) => j.model.merges.push(j.model.merges[0]), /repeats an earlier merge/],
      [(j) => j.model.merges.push('a b c'), /model\.merges\[\d+\] is "a b c"; expected two tokens separated by one space/],
      [(j) => j.model.merges.push(['a']), /model\.merges\[\d+\] is an array of 1 items/],
      [(j) => j.model.merges.push(7), /model\.merges\[\d+\] is 7/],
      [(j) => (j.model['unk_token'] = '<nope>'), /model\.unk_token is "<nope>"; expected null or a token in model\.vocab/],
      [(j) => (j.model['colour'] = 'blue'), /model\.colour is not a recognised key/],
      [(j) => (j['extra'] = 1), /extra is not a recognised key/],
      [(j) => (j['added_tokens'] = [{ id: 5, content: '<x>', special: true }]), /added_tokens\[0\]\.id is 5; expected an id not already used by model\.vocab token/],
      [(j) => (j['added_tokens'] = [{ id: 9999, content: '' }]), /added_tokens\[0\]\.content is ""; expected a non-empty string/],
      [(j) => (j['added_tokens'] = [{ id: 9999, content: 'a' }]), /added_tokens\[0\]\.id is 9999; expected \d+, the id of this token in model\.vocab/],
      [(j) => (j['added_tokens'] = [{ id: 9998, content: '<a>' }, { id: 9999, content: '<a>' }]), /added_tokens\[1\]\.content is "<a>"; expected each added token once/],
      [(j) => (j['added_tokens'] = [{ id: 9999, content: '\ud800' }]), /unpaired surrogate/],
    ];
    for (const [mutate, pattern] of cases) {
      const j = clone();
      mutate(j);
      expectLoadError(JSON.stringify(j), pattern);
    }
  });

  it('rejects files that are not JSON, not UTF-8, empty, or not an object', () => {
    expectLoadError('', /is not valid JSON/);
    expectLoadError('{"version": "1.0",', /is not valid JSON/);
    expectLoadError(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /is not valid UTF-8/);
    expectLoadError('[1, 2]', /the top level is an array of 2 items; expected an object/);
    expectLoadError('null', /the top level is null; expected an object/);
    expectLoadError('"text"', /the top level is "text"; expected an object/);
    expectLoadError('['.repeat(200000) + ']'.repeat(200000), /./);
  });

  it('rejects a missing file, a directory and an oversized file without reading it', () => {
    const missing = path.join(tmp, 'does-not-exist.json');
    assert.throws(() => BpeTokenizer.load(missing), (e: unknown) => e instanceof UserError && e.message.startsWith(`${missing}: cannot open`));
    const dir = path.join(tmp, 'a-directory');
    mkdirSync(dir);
    assert.throws(() => BpeTokenizer.load(dir), (e: unknown) => e instanceof UserError && e.message.startsWith(dir));
    const big = path.join(tmp, 'huge.json');
    writeFileSync(big, '{}');
    truncateSync(big, MAX_TOKENIZER_FILE_BYTES + 1); // sparse: large on paper, no disk or memory used
    assert.throws(() => BpeTokenizer.load(big), (e: unknown) => e instanceof UserError && /expected at most/.test(e.message) && e.message.startsWith(big));
  });

  it('save to an unwritable place is a UserError naming the path', () => {
    const tok = BpeTokenizer.load(FIXTURE_TOKENIZER);
    const target = path.join(tmp, 'no-such-dir', 'tok.json');
    assert.throws(() => tok.save(target), (e: unknown) => e instanceof UserError && e.message.includes(target));
  });

  it('loads the GPT-2 files format with errors naming encoder.json / vocab.bpe', () => {
    const vocab: Record<string, number> = Object.fromEntries([...Array(256).keys()].map((i) => [String.fromCharCode(0x100 + i), i]));
    assert.throws(() => BpeTokenizer.fromGpt2Files(vocab, '#version: 0.2\nĀ ā\n'), /vocab\.bpe: merge\[0\] \("Ā" \+ "ā"\) needs token "Āā"/);
    assert.throws(() => BpeTokenizer.fromGpt2Files({ ...vocab, x: -3 }, '#version: 0.2\n'), /encoder\.json: entry "x" is -3; expected an integer from 0/);
    assert.throws(() => BpeTokenizer.fromGpt2Files(vocab, '#version: 0.2\nĀ\n'), /vocab\.bpe: line 2 is "Ā"/);
    const ok = BpeTokenizer.fromGpt2Files({ ...vocab, 'Āā': 256 }, '#version: 0.2\nĀ ā\n');
    assert.deepEqual(ok.encode('\u0000\u0001'), [256]);
  });
});
