/**
 * A training run killed with SIGKILL mid-training and resumed (the same command again) produces
 * exactly the same subsequent losses as an uninterrupted run: real processes, real files. The run uses
 * dropout and gradient accumulation so the RNG and data-position state must both be restored.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadCorpus } from '../../src/data/corpus.js';
import { createModel, savePretrained } from '../../src/models/registry.js';
import { BpeTokenizer } from '../../src/tokenizer/index.js';
import { ROOT } from '../helpers/fixtures.js';

const CLI = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];

function writeConfig(dir: string, dataDir: string, out: string): string {
  const file = path.join(dir, `${path.basename(out)}.yaml`);
  fs.writeFileSync(file, [
    `out_dir: ${JSON.stringify(out)}`,
    `data: { source: { dir: ${JSON.stringify(dataDir)} }, seq_len: 16, val_fraction: 0.2 }`,
    'tokenizer: { vocab_size: 320 }',
    'model: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 2, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.0 }',
    'train: { steps: 40, batch_size: 4, grad_accum: 2, lr: 0.003, warmup_steps: 5, eval_every: 10, eval_batches: 2, checkpoint_every: 3, seed: 3 }',
    'sample: { prompts: ["the"], max_new_tokens: 4 }',
  ].join('\n') + '\n');
  return file;
}

interface Line { step: number; loss?: number; lr?: number; grad_norm?: number; val_loss?: number; taid_t?: number; p_gen?: number; val_fkl?: number }
const readMetrics = (out: string): Line[] =>
  fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

/** Runs `cfg` to completion once, and once killed with SIGKILL after step `killAt` then resumed; returns both metrics. */
async function killAndResume(tmp: string, makeConfig: (out: string) => string, killAt: number, total: number): Promise<[Line[], Line[], string, string]> {
  const ref = path.join(tmp, 'ref');
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'train', '--config', makeConfig(ref)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const killed = path.join(tmp, 'killed');
  const cfg = makeConfig(killed);
  const child = spawn(CLI[0], [...CLI.slice(1), 'train', '--config', cfg], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, CI: '1' } });
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        const f = path.join(killed, 'metrics.jsonl');
        if (fs.existsSync(f) && readMetrics(killed).some((l) => l.step >= killAt)) { clearInterval(timer); child.kill('SIGKILL'); }
      } catch { /* file mid-write: try again */ }
    }, 20);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`child finished before it was killed (code ${code})`));
    });
  });
  assert.ok(!fs.existsSync(path.join(killed, 'summary.json')), 'the killed run must not have finished');
  assert.ok(readMetrics(killed).filter((l) => l.loss !== undefined).length < total, 'killed mid-run');
  const r2 = spawnSync(CLI[0], [...CLI.slice(1), 'train', '--config', cfg], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /resuming at step \d+/);
  return [readMetrics(ref), readMetrics(killed), ref, killed];
}

test('distillation (replay regime + TAID): SIGKILL mid-run, resume: identical losses', { timeout: 240_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-dresume-'));
  try {
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir);
    const docs = loadCorpus({ kind: 'embedded', name: 'moby-dick' }).slice(1, 9).map((d) => d.slice(0, 12000));
    docs.forEach((d, i) => fs.writeFileSync(path.join(dataDir, `ch${i}.txt`), d));
    // a randomly initialised teacher is enough to test exact resumption
    const teacherDir = path.join(tmp, 'teacher');
    const tok = BpeTokenizer.train(docs, { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
    savePretrained(createModel({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_positions: 32, n_embd: 32, n_layer: 1, n_head: 2 }, 9), teacherDir);
    tok.save(path.join(teacherDir, 'tokenizer.json'));
    const make = (out: string): string => {
      const file = path.join(tmp, `${path.basename(out)}.yaml`);
      fs.writeFileSync(file, [
        `out_dir: ${JSON.stringify(out)}`,
        `data: { source: { dir: ${JSON.stringify(dataDir)} }, seq_len: 16, val_fraction: 0.2 }`,
        'model: { model_type: gpt2, n_embd: 16, n_layer: 1, n_head: 2, resid_pdrop: 0.1, embd_pdrop: 0.0, attn_pdrop: 0.0 }',
        'train: { steps: 30, batch_size: 4, lr: 0.003, warmup_steps: 3, eval_every: 5, eval_batches: 2, checkpoint_every: 3, seed: 4 }',
        'sample: { prompts: [], max_new_tokens: 1 }',
        `distill: { teacher: { model: ${JSON.stringify(teacherDir)} }, loss: [{ objective: taid, t_start: 0.3 }, { objective: ce, weight: 0.5 }], regime: { kind: replay, prompt_len: 6, init_threshold: 0.6, capacity: 12 } }`,
      ].join('\n') + '\n');
      return file;
    };
    const [a, b, ref, killed] = await killAndResume(tmp, make, 8, 30);
    const key = (l: Line): string => JSON.stringify([l.step, l.loss, l.lr, l.grad_norm, l.val_loss, l.taid_t, l.p_gen, l.val_fkl]);
    assert.equal(b.length, a.length, 'same number of metric lines');
    assert.deepEqual(b.map(key), a.map(key), 'bit-identical distillation curve after SIGKILL + resume');
    assert.deepEqual(fs.readFileSync(path.join(killed, 'final/model.safetensors')), fs.readFileSync(path.join(ref, 'final/model.safetensors')));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('SIGKILL mid-training, resume: identical losses to an uninterrupted run', { timeout: 180_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-resume-'));
  try {
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir);
    loadCorpus({ kind: 'embedded', name: 'moby-dick' }).slice(1, 9).forEach((d, i) => fs.writeFileSync(path.join(dataDir, `ch${i}.txt`), d.slice(0, 12000)));

    const [a, b, ref, killed] = await killAndResume(tmp, (out) => writeConfig(tmp, dataDir, out), 7, 40);
    const key = (l: Line): string => JSON.stringify([l.step, l.loss, l.lr, l.grad_norm, l.val_loss]);
    assert.equal(b.length, a.length, 'same number of metric lines (no duplicates, nothing lost)');
    assert.deepEqual(b.map(key), a.map(key), 'bit-identical losses, learning rates, grad norms and val losses');
    const summaryA = JSON.parse(fs.readFileSync(path.join(ref, 'summary.json'), 'utf8'));
    const summaryB = JSON.parse(fs.readFileSync(path.join(killed, 'summary.json'), 'utf8'));
    assert.equal(summaryB.finalValLoss, summaryA.finalValLoss);
    assert.deepEqual(fs.readFileSync(path.join(killed, 'final/model.safetensors')), fs.readFileSync(path.join(ref, 'final/model.safetensors')));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
