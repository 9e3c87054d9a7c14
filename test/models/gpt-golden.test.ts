/**
 * A full GPT-2 forward/backward against PyTorch (tools/golden/gpt_train.py): loss, logits and the
 * gradient of every parameter (HF names; the tied embedding gets the sum of both uses).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadPretrained } from '../../src/models/registry.js';
import { crossEntropyLoss } from '../../src/train/trainer.js';
import { backward } from '../../src/tensor/autodiff.js';
import { div } from '../../src/tensor/ops.js';
import { closeness, FIXTURES, fixedBatch, readFixture, type JsonTensor } from '../helpers/fixtures.js';

interface GptTrain { input_ids: JsonTensor; loss: number; logits: JsonTensor }

test('GPT-2 forward/backward matches PyTorch: loss, logits, every parameter gradient', () => {
  const g = readFixture<GptTrain>('golden/gpt-train.json');
  const model = loadPretrained(path.join(FIXTURES, 'hf/gpt2-tiny')).eval();
  const batch = fixedBatch(g.input_ids);
  const logits = model.forward(batch.input, batch.batchSize, batch.seqLen).logits;
  const lr = closeness(logits.data, g.logits.data, 1e-5, 1e-4);
  assert.ok(lr.ok, `logits max abs diff ${lr.maxAbs}`);
  const { sum } = crossEntropyLoss(model, batch);
  const loss = div(sum, batch.input.length);
  assert.ok(Math.abs(loss.item() - g.loss) < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
  backward(loss);
  const grads = readSafetensors(path.join(FIXTURES, 'golden/gpt2-tiny-grads.safetensors')).tensors;
  const params = model.namedParameters();
  assert.equal(grads.size, params.size, 'one golden gradient per parameter');
  for (const [name, p] of params) {
    const ref = grads.get(name);
    assert.ok(ref, `no golden gradient for ${name}`);
    const r = closeness(p.grad!.data, ref.data, 1e-6, 1e-3);
    assert.ok(r.ok, `${name}: grad max abs diff ${r.maxAbs}`);
  }
});
