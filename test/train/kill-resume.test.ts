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

interface Line { step: number; loss?: number; lr?: number; grad_norm?: number; val_loss?: number }
const readMetrics = (out: string): Line[] =>
  fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

test('SIGKILL mid-training, resume: identical losses to an uninterrupted run', { timeout: 180_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmd-resume-'));
  try {
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir);
    loadCorpus({ kind: 'embedded', name: 'moby-dick' }).slice(1, 9).forEach((d, i) => fs.writeFileSync(path.join(dataDir, `ch${i}.txt`), d.slice(0, 12000)));

    const ref = path.join(tmp, 'ref');
    const r = spawnSync(CLI[0], [...CLI.slice(1), 'train', '--config', writeConfig(tmp, dataDir, ref)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    assert.equal(r.status, 0, r.stderr);

    const killed = path.join(tmp, 'killed');
    const cfg = writeConfig(tmp, dataDir, killed);
    const child = spawn(CLI[0], [...CLI.slice(1), 'train', '--config', cfg], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, CI: '1' } });
    // kill once a few steps are logged (after at least one checkpoint at step 3)
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          const f = path.join(killed, 'metrics.jsonl');
          if (fs.existsSync(f) && readMetrics(killed).some((l) => l.step >= 7)) { clearInterval(timer); child.kill('SIGKILL'); }
        } catch { /* file mid-write: try again */ }
      }, 20);
      child.on('exit', (code, signal) => {
        clearInterval(timer);
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`child finished before it was killed (code ${code})`));
      });
    });
    assert.ok(!fs.existsSync(path.join(killed, 'summary.json')), 'the killed run must not have finished');
    const beforeResume = readMetrics(killed).filter((l) => l.loss !== undefined).length;
    assert.ok(beforeResume < 40, 'killed mid-run');

    const r2 = spawnSync(CLI[0], [...CLI.slice(1), 'train', '--config', cfg], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    assert.equal(r2.status, 0, r2.stderr);
    assert.match(r2.stderr, /resuming at step \d+/);

    const a = readMetrics(ref), b = readMetrics(killed);
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
