/**
 * The first 10 training steps of a fixed tiny GPT-2 on fixed data match PyTorch's AdamW run
 * (tools/golden/gpt_train.py): losses within 2e-5 absolute (float32 accumulation-order noise grows to
 * ~1e-6 over 10 steps; 2e-5 leaves margin while still catching any wrong schedule, decay or clip), and
 * learning rates / pre-clip gradient norms too. Gradient accumulation over 2 micro-batches gives the
 * same losses as the full batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepResult } from '../../src/train/trainer.js';
import { fixedBatch } from '../helpers/fixtures.js';
import { pinnedTrainer, readGptTrain } from '../helpers/gpt-train.js';

const g = readGptTrain();

function run(micro: number): StepResult[] {
  const trainer = pinnedTrainer(g, { gradAccumSteps: micro });
  const full = fixedBatch(g.input_ids);
  const per = full.batchSize / micro, T = full.seqLen;
  const parts = Array.from({ length: micro }, (_, i) => ({
    input: full.input.slice(i * per * T, (i + 1) * per * T), target: full.target.slice(i * per * T, (i + 1) * per * T), batchSize: per, seqLen: T,
  }));
  return Array.from({ length: 10 }, () => trainer.stepOn(parts));
}

test('pinned losses: 10 AdamW steps match PyTorch', () => {
  const res = run(1);
  res.forEach((r, i) => {
    assert.ok(Math.abs(r.loss - g.losses[i]) < 2e-5, `step ${i}: loss ${r.loss} vs torch ${g.losses[i]}`);
    assert.ok(Math.abs(r.lr - g.lrs[i]) < 1e-12, `step ${i}: lr ${r.lr} vs ${g.lrs[i]}`);
    assert.ok(Math.abs(r.gradNorm - g.grad_norms[i]) < 1e-4 * g.grad_norms[i], `step ${i}: grad norm ${r.gradNorm} vs ${g.grad_norms[i]}`);
  });
});

test('gradient accumulation (2 micro-batches) equals the full batch', () => {
  const res = run(2);
  res.forEach((r, i) => assert.ok(Math.abs(r.loss - g.accum_losses[i]) < 2e-5, `step ${i}: ${r.loss} vs ${g.accum_losses[i]}`));
  const full = run(1);
  res.forEach((r, i) => assert.ok(Math.abs(r.loss - full[i].loss) < 1e-5, `step ${i}: accumulated ${r.loss} vs full ${full[i].loss}`));
});
