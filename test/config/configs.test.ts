/**
 * Every recipe in configs/ (found by listing the folder, so new recipes are covered automatically) loads
 * and validates, and its model section builds a model the way `runTraining` does: vocab_size from the
 * tokenizer section when absent, the position limit from data.seq_len. Nothing is trained.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrainConfig } from '../../src/config/load.js';
import { createModel } from '../../src/models/registry.js';
import { Mixture } from '../../src/distill/mixture.js';

const CONFIGS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs');
const files = fs.readdirSync(CONFIGS, { recursive: true, encoding: 'utf8' })
  .filter((f) => /\.ya?ml$/i.test(f))
  .sort()
  .map((f) => path.join(CONFIGS, f));

test('configs/ holds at least one YAML recipe', () => {
  assert.ok(files.length > 0, `no .yaml/.yml files in ${CONFIGS}`);
});

for (const file of files) {
  test(`configs/${path.relative(CONFIGS, file)} validates and builds its model`, (t) => {
    const cfg = loadTrainConfig(file);
    const m = cfg.model;
    if ('pretrained' in m) {
      // a pretrained folder is the user's download; only its presence in the schema is checked here
      t.diagnostic(`model.pretrained ${m.pretrained}: not built`);
      return;
    }
    const full = m.model_type === 'gpt2'
      ? { ...m, vocab_size: m.vocab_size ?? cfg.tokenizer.vocab_size, n_positions: m.n_positions ?? cfg.data.seq_len }
      : { ...m, vocab_size: m.vocab_size ?? cfg.tokenizer.vocab_size, max_position_embeddings: m.max_position_embeddings ?? cfg.data.seq_len };
    const model = createModel(full, cfg.train.seed, file);
    assert.ok(model.vocabSize >= cfg.tokenizer.vocab_size, `model vocab ${model.vocabSize} < tokenizer.vocab_size ${cfg.tokenizer.vocab_size}`);
    assert.ok(model.maxPositions >= cfg.data.seq_len, `model takes ${model.maxPositions} positions < data.seq_len ${cfg.data.seq_len}`);
    assert.ok(model.numParameters() > 0);
    // the schedule must fit in the run: warm-up shorter than the run, evaluation and checkpoints happen
    assert.ok(cfg.train.warmup_steps < cfg.train.steps, `warmup_steps ${cfg.train.warmup_steps} >= steps ${cfg.train.steps}`);
    assert.ok(cfg.train.min_lr <= cfg.train.lr, `min_lr ${cfg.train.min_lr} > lr ${cfg.train.lr}`);
    t.diagnostic(`${model.config.model_type}: ${(model.numParameters() / 1e6).toFixed(2)}M parameters`);
    if (cfg.distill) {
      // the objective mixture parses (unknown objectives/options are errors) and accepts the teacher kind
      const mixture = Mixture.parse(cfg.distill.loss, `${file}: distill.loss`);
      const sparse = cfg.distill.top_k > 0 || 'url' in cfg.distill.teacher || 'cache' in cfg.distill.teacher;
      if (mixture.needsTeacher) mixture.checkTeacher(sparse ? 'sparse' : 'dense');
      t.diagnostic(`distill: ${mixture.parts.map((p) => `${p.weight}×${p.key}`).join(' + ')}, regime ${cfg.distill.regime.kind}`);
    }
  });
}
