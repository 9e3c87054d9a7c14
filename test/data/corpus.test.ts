import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../src/errors.js';
import { describeCorpus, loadCorpus } from '../../src/data/corpus.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-corpus-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (rel: string, data: string | Uint8Array): string => {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  return p;
};
const userError = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof UserError, `not a UserError: ${String(e)}`);
  assert.match(e.message, re);
  return true;
};

test('text file → one document; BOM dropped, content otherwise unchanged', () => {
  const p = write('a.txt', '\ufeffHello,\r\nworld — ünïcode\n');
  assert.deepEqual(loadCorpus({ kind: 'text', path: p }), ['Hello,\r\nworld — ünïcode\n']);
  assert.equal(describeCorpus({ kind: 'text', path: p }), p);
});

test('missing paths, directories as files, and non-UTF-8 are UserErrors naming the path', () => {
  const missing = path.join(tmp, 'nope.txt');
  assert.throws(() => loadCorpus({ kind: 'text', path: missing }), userError(/not found: .*nope\.txt/));
  assert.throws(() => loadCorpus({ kind: 'dir', path: missing }), userError(/not found: .*nope\.txt/));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: missing, field: 'text' }), userError(/not found: .*nope\.txt/));
  assert.throws(() => loadCorpus({ kind: 'text', path: tmp }), userError(/is a directory/));
  const latin1 = write('latin1.txt', Uint8Array.of(0x63, 0x61, 0x66, 0xe9));
  assert.throws(() => loadCorpus({ kind: 'text', path: latin1 }), userError(/latin1\.txt is not valid UTF-8/));
});

test('directory → .txt/.md files recursively, sorted by relative path, other files ignored', () => {
  write('d/b.txt', 'B');
  write('d/a.md', 'A');
  write('d/sub/c.TXT', 'C');
  write('d/sub/zz/d.txt', 'D');
  write('d/A0.txt', 'upper'); // code-unit order: "A0.txt" < "a.md"
  write('d/skip.json', '{}');
  write('d/sub/notes.rst', 'x');
  assert.deepEqual(loadCorpus({ kind: 'dir', path: path.join(tmp, 'd') }), ['upper', 'A', 'B', 'C', 'D']);
  fs.mkdirSync(path.join(tmp, 'empty'));
  write('empty/x.csv', '1');
  assert.throws(() => loadCorpus({ kind: 'dir', path: path.join(tmp, 'empty') }), userError(/contains no \.txt or \.md files/));
});

test('JSONL → one document per line from the chosen field; blank lines and CRLF tolerated', () => {
  const p = write('c.jsonl', '{"text":"one","id":1}\r\n\n{"text":"two\\nlines"}\n   \n{"id":3,"text":""}');
  assert.deepEqual(loadCorpus({ kind: 'jsonl', path: p, field: 'text' }), ['one', 'two\nlines', '']);
  assert.equal(describeCorpus({ kind: 'jsonl', path: p, field: 'text' }), `${p} (JSONL field "text")`);
});

test('JSONL errors name file:line and the field', () => {
  const bad = (name: string, body: string): string => write(name, body);
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: bad('e1.jsonl', '{"text":"a"}\n{"text": oops}\n'), field: 'text' }), userError(/e1\.jsonl:2: invalid JSON/));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: bad('e2.jsonl', '{"text":"a"}\n\n{"body":"b"}\n'), field: 'text' }), userError(/e2\.jsonl:3: field "text" is missing \(keys: "body"\)/));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: bad('e3.jsonl', '{"text":5}\n'), field: 'text' }), userError(/e3\.jsonl:1: field "text" is number; expected a string/));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: bad('e4.jsonl', '[1,2]\n'), field: 'text' }), userError(/e4\.jsonl:1: expected a JSON object with a string field "text", got an array/));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: bad('e5.jsonl', '\n\n'), field: 'text' }), userError(/e5\.jsonl contains no JSON lines/));
  const nonUtf8 = write('e6.jsonl', Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"'), Buffer.from([0xff]), Buffer.from('"}\n')]));
  assert.throws(() => loadCorpus({ kind: 'jsonl', path: nonUtf8, field: 'text' }), userError(/e6\.jsonl:2 is not valid UTF-8/));
});

test('JSONL larger than the 1 MiB read chunk: lines spanning chunk boundaries are intact', () => {
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: `doc ${i} ` + 'é€'.repeat(i % 400) }));
  const p = write('big.jsonl', lines.join('\n') + '\n');
  assert.ok(fs.statSync(p).size > 2 * (1 << 20));
  const docs = loadCorpus({ kind: 'jsonl', path: p, field: 'text' });
  assert.equal(docs.length, 3000);
  assert.equal(docs[2999], 'doc 2999 ' + 'é€'.repeat(2999 % 400));
  assert.deepEqual(docs, lines.map((l) => (JSON.parse(l) as { text: string }).text));
});

test('embedded Moby Dick: 139 parts in book order, ~1.2 M chars', () => {
  const docs = loadCorpus({ kind: 'embedded', name: 'moby-dick' });
  assert.equal(docs.length, 139);
  const chars = docs.reduce((a, d) => a + d.length, 0);
  assert.ok(chars > 1_150_000 && chars < 1_300_000, `${chars} chars`);
  assert.match(docs[0], /^CONTENTS/);
  assert.match(docs[3], /^CHAPTER 1\. Loomings\.\s+Call me Ishmael\./);
  assert.match(docs[4], /^CHAPTER 2\. /);
  assert.match(docs[137], /^CHAPTER 135\. /);
  assert.match(docs[138], /^Epilogue/i);
  assert.equal(describeCorpus({ kind: 'embedded', name: 'moby-dick' }), 'embedded:moby-dick');
  assert.throws(() => loadCorpus({ kind: 'embedded', name: 'war-and-peace' as 'moby-dick' }), userError(/unknown embedded corpus "war-and-peace"; available: moby-dick/));
});
