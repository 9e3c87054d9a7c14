/**
 * Hugging Face interop: tiny GPT-2 / LLaMA models written by transformers' save_pretrained load here
 * with the same logits; what we save loads back (here, and — when LMDISTILL_PYTHON points at a Python
 * with transformers — in transformers' from_pretrained with the same logits).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadPretrained, savePretrained } from '../../src/models/registry.js';
import { noGrad } from '../../src/tensor/tensor.js';
import { closeness, FIXTURES, ROOT, type JsonTensor } from '../helpers/fixtures.js';

interface Expected { input_ids: number[][]; logits: JsonTensor }

function logitsOf(dir: string, exp: Expected): Float32Array {
  const model = loadPretrained(dir).eval();
  const B = exp.input_ids.length, T = exp.input_ids[0].length;
  return noGrad(() => model.forward(Int32Array.from(exp.input_ids.flat()), B, T).logits.data);
}

for (const name of ['gpt2-tiny', 'llama-tiny', 'llama-tiny-tied']) {
  const dir = path.join(FIXTURES, 'hf', name);
  const exp = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;

  test(`${name}: logits match transformers`, () => {
    const r = closeness(logitsOf(dir, exp), exp.logits.data, 1e-4, 1e-4);
    assert.ok(r.ok, `max abs diff ${r.maxAbs}`);
  });

  test(`${name}: save_pretrained round trip`, (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `lmd-${name}-`));
    try {
      savePretrained(loadPretrained(dir), tmp);
      const cfg = JSON.parse(fs.readFileSync(path.join(tmp, 'config.json'), 'utf8'));
      assert.equal(cfg.model_type, JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).model_type);
      const r = closeness(logitsOf(tmp, exp), exp.logits.data, 1e-4, 1e-4);
      assert.ok(r.ok, `reloaded max abs diff ${r.maxAbs}`);
      const py = process.env.LMDISTILL_PYTHON;
      if (!py) {
        t.diagnostic('LMDISTILL_PYTHON not set: live transformers.from_pretrained check skipped (committed fixtures still checked)');
        return;
      }
      fs.copyFileSync(path.join(dir, 'expected.json'), path.join(tmp, 'expected.json'));
      const out = execFileSync(py, [path.join(ROOT, 'tools/golden/hf_check_roundtrip.py'), tmp], { encoding: 'utf8' });
      const res = JSON.parse(out.trim().split('\n').pop()!);
      assert.ok(res.max_abs_diff !== null && res.max_abs_diff < 1e-4, `transformers from_pretrained: ${out}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}
