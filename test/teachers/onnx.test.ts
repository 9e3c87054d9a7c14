/**
 * OnnxTeacher on test/fixtures/onnx/gpt2-tiny.onnx (exported by tools/onnx/export_gpt2.py from the same
 * weights as test/fixtures/hf/gpt2-tiny): logits match the PyTorch fixture and our LocalTeacher, top-k
 * matches LocalTeacher's, and every way to get it wrong is a UserError. Skipped (with the reason) when
 * the optional onnxruntime-node is not installed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { loadPretrained } from '../../src/models/registry.js';
import { LocalTeacher } from '../../src/teachers/local.js';
import { loadOnnxRuntime, OnnxTeacher, readOnnxMetadata } from '../../src/teachers/onnx.js';
import type { TeacherBatch } from '../../src/teachers/teacher.js';
import { closeness, FIXTURES } from '../helpers/fixtures.js';

const MODEL = path.join(FIXTURES, 'onnx', 'gpt2-tiny.onnx');
interface Case { input_ids: number[][]; logits: { shape: number[]; data: number[] } }
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'onnx', 'expected.json'), 'utf8')) as { vocab_size: number; cases: Case[] };
const batchOf = (ids: number[][]): TeacherBatch => ({ input: Int32Array.from(ids.flat()), batchSize: ids.length, seqLen: ids[0].length });

const ortProblem = await loadOnnxRuntime().then(() => null, (e: Error) => e.message);
const skip = ortProblem ? `onnxruntime-node is not usable here: ${ortProblem}` : false;

test('a missing onnxruntime-node is one UserError saying how to install it', async () => {
  const missing = async (): Promise<never> => {
    throw Object.assign(new Error("Cannot find package 'onnxruntime-node' imported from /x/onnx.js"), { code: 'ERR_MODULE_NOT_FOUND' });
  };
  await assert.rejects(loadOnnxRuntime(missing), (e: Error) => e instanceof UserError && /optional package onnxruntime-node.*npm install onnxruntime-node@\^1\.30/.test(e.message));
  const broken = async (): Promise<never> => { throw new Error('libonnxruntime.so.1: cannot open shared object file'); };
  await assert.rejects(loadOnnxRuntime(broken), (e: Error) => e instanceof UserError && /failed to load \(libonnxruntime/.test(e.message));
  await assert.rejects(OnnxTeacher.open(MODEL, { loadRuntime: () => loadOnnxRuntime(missing) }), UserError);
});

test('model metadata is read without loading the graph', () => {
  assert.deepEqual(readOnnxMetadata(MODEL), { max_positions: '32' });
});

describe('OnnxTeacher (gpt2-tiny)', { skip }, () => {
  let onnx: OnnxTeacher;
  let local: LocalTeacher;
  before(async () => {
    onnx = await OnnxTeacher.open(MODEL, { threads: 1 });
    local = new LocalTeacher(loadPretrained(path.join(FIXTURES, 'hf', 'gpt2-tiny')));
  });
  after(async () => { await onnx?.close(); });

  test('inputs/outputs are discovered: vocab from the output shape, position limit from metadata', () => {
    assert.equal(onnx.vocabSize, expected.vocab_size);
    assert.equal(onnx.vocabSize, local.vocabSize);
    assert.equal(onnx.maxPositions, 32);
    assert.equal(onnx.dense, true);
    assert.match(onnx.name, /^onnx:.*gpt2-tiny\.onnx$/);
  });

  test('logits equal the PyTorch fixture and LocalTeacher within 1e-4 (two shapes: dynamic axes)', async () => {
    for (const c of expected.cases) {
      const batch = batchOf(c.input_ids);
      const got = await onnx.logits(batch);
      assert.equal(got.length, batch.batchSize * batch.seqLen * onnx.vocabSize);
      const vsTorch = closeness(got, c.logits.data, 1e-4, 0);
      assert.ok(vsTorch.ok, `vs PyTorch: max |diff| ${vsTorch.maxAbs} at ${vsTorch.at}`);
      const vsLocal = closeness(got, await local.logits(batch), 1e-4, 0);
      assert.ok(vsLocal.ok, `vs LocalTeacher: max |diff| ${vsLocal.maxAbs} at ${vsLocal.at}`);
    }
  });

  test('top-k equals LocalTeacher top-k (ids exact up to near-ties, logprobs within 1e-4)', async () => {
    for (const c of expected.cases) {
      const batch = batchOf(c.input_ids);
      for (const k of [1, 5, 64]) {
        const a = await onnx.topk(batch, k), b = await local.topk(batch, k);
        assert.equal(a.k, k);
        assert.equal(a.ids.length, batch.batchSize * batch.seqLen * k);
        for (let i = 0; i < a.ids.length; i++) {
          assert.ok(Math.abs(a.logprobs[i] - b.logprobs[i]) <= 1e-4, `logprob ${i}: ${a.logprobs[i]} vs ${b.logprobs[i]}`);
          if (a.ids[i] !== b.ids[i]) assert.ok(Math.abs(a.logprobs[i] - b.logprobs[i]) < 1e-5, `id ${i} differs without a near-tie`);
        }
      }
    }
  });

  test('a sequence longer than max_positions or an id outside the vocabulary is a UserError', async () => {
    await assert.rejects(onnx.logits({ input: new Int32Array(33), batchSize: 1, seqLen: 33 }), (e: Error) => e instanceof UserError && /at most 32 positions/.test(e.message));
    await assert.rejects(onnx.logits({ input: Int32Array.from([1, 64]), batchSize: 1, seqLen: 2 }), (e: Error) => e instanceof UserError && /token id 64 is outside/.test(e.message));
  });

  test('a missing file, a corrupt file, or wrong input/output names are UserErrors naming the problem', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-onnx-'));
    try {
      await assert.rejects(OnnxTeacher.open(path.join(tmp, 'nope.onnx')), (e: Error) => e instanceof UserError && /no such file/.test(e.message));
      const bad = path.join(tmp, 'bad.onnx');
      fs.writeFileSync(bad, Buffer.from('definitely not a protobuf model'));
      await assert.rejects(OnnxTeacher.open(bad), (e: Error) => e instanceof UserError && e.message.includes(bad));
      const cut = path.join(tmp, 'cut.onnx');
      fs.writeFileSync(cut, fs.readFileSync(MODEL).subarray(0, 50_000));
      await assert.rejects(OnnxTeacher.open(cut), (e: Error) => e instanceof UserError && e.message.includes(cut));
      await assert.rejects(OnnxTeacher.open(MODEL, { inputName: 'tokens' }), (e: Error) => e instanceof UserError && /no token-id input "tokens" among its inputs \[input_ids\]/.test(e.message));
      await assert.rejects(OnnxTeacher.open(MODEL, { outputName: 'hidden' }), (e: Error) => e instanceof UserError && /no logits output "hidden"/.test(e.message));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
