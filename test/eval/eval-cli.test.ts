/**
 * `lmdistill eval` on tiny model folders — as a real process (student-only output keeps its format;
 * --teacher adds divergences and speculative decoding; --out writes the JSON the report reads) and in
 * process through the same command (a model against itself has zero divergence and full acceptance;
 * mismatched tokenizers are refused with a clear message).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerEval } from '../../src/cli/eval.js';
import { UserError } from '../../src/errors.js';
import { EOS_TOKEN } from '../../src/data/prepare.js';
import { readEvalJson } from '../../src/eval/report/index.js';
import type { EvalJson } from '../../src/eval/result.js';
import { createModel, savePretrained } from '../../src/models/registry.js';
import { BpeTokenizer } from '../../src/tokenizer/index.js';
import { runAll, show, tmpDir, writeTextDocs, type CliResult } from '../cli/helpers.js';

const work = tmpDir('lmdistill-eval-');
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Saves a randomly initialised GPT-2 with the given tokenizer as a HF folder. */
function modelFolder(name: string, tok: BpeTokenizer, layers: number, seed: number): string {
  const dir = path.join(work, name);
  const model = createModel({ model_type: 'gpt2', vocab_size: tok.vocabSize, n_positions: 64, n_embd: 16, n_layer: layers, n_head: 2, initializer_range: 0.2 }, seed);
  savePretrained(model, dir);
  tok.save(path.join(dir, 'tokenizer.json'));
  return dir;
}

describe('lmdistill eval', () => {
  const data = path.join(work, 'data');
  let student: string, teacher: string, other: string;
  let plain: CliResult, withTeacher: CliResult;
  let base: string[], spec: string[];
  const plainOut = path.join(work, 'out', 'plain.eval.json'), teacherOut = path.join(work, 'out', 'student.eval.json');
  const json = (file: string): EvalJson => JSON.parse(fs.readFileSync(file, 'utf8')) as EvalJson;

  /** Runs the eval command in this process; returns what it printed. */
  async function evalInProcess(args: string[]): Promise<string> {
    const program = new Command('lmdistill').exitOverride();
    registerEval(program);
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout), writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((x: string) => { printed.push(x); return true; }) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write; // progress lines
    try {
      await program.parseAsync(['eval', ...args], { from: 'user' });
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    return printed.join('');
  }

  before(async () => {
    const docs = writeTextDocs(data, 6, 2000);
    const tok = BpeTokenizer.train(docs, { vocabSize: 300, specialTokens: [EOS_TOKEN] });
    const tok2 = BpeTokenizer.train(docs, { vocabSize: 299, specialTokens: [EOS_TOKEN] });
    student = modelFolder('student', tok, 1, 1);
    teacher = modelFolder('teacher', tok, 2, 2);
    other = modelFolder('other-tokenizer', tok2, 1, 3);
    base = ['--dir', data, '--split', 'all', '--seq-len', '32', '--max-batches', '3', '--batch-size', '4'];
    spec = ['--spec-prompts', '3', '--spec-tokens', '12', '--prompt-len', '8', '--gamma', '3'];
    [plain, withTeacher] = await runAll([
      ['eval', ...base, '--model', student, '--out', plainOut],
      ['eval', ...base, '--model', student, '--teacher', teacher, ...spec, '--out', teacherOut],
    ]);
  });

  test('without --teacher: perplexity JSON as before (plus accuracy and ECE), and the one-line summary', () => {
    assert.equal(plain.code, 0, show(plain));
    const r = json(plainOut);
    assert.ok(Math.abs(Math.log(r.perplexity) - r.loss) < 1e-9);
    assert.equal(r.tokens, 3 * 4 * 32);
    assert.equal(r.seq_len, 32);
    assert.equal(r.teacher, null);
    assert.equal(r.divergence, undefined);
    assert.equal(r.speculative, undefined);
    assert.ok(r.ece >= 0 && r.ece <= 1 && r.calibration.length === 15);
    assert.match(plain.stdout, /^tokens 384 · loss \d+\.\d{4} nats\/token · perplexity \d+\.\d{3} · top-1 accuracy/);
  });

  test('with --teacher: divergences, speculative acceptance, and consistent numbers', () => {
    assert.equal(withTeacher.code, 0, show(withTeacher));
    const r = json(teacherOut);
    const d = r.divergence!, s = r.speculative!, t = r.teacher_metrics!;
    assert.ok(d.fkl > 0 && d.rkl > 0 && d.tvd > 0 && d.tvd < 1, JSON.stringify(d));
    assert.ok(Math.abs(d.acceptance - (1 - d.tvd)) < 1e-12);
    assert.ok(d.top1_agreement >= 0 && d.top1_agreement <= 1);
    assert.ok(Number.isFinite(t.perplexity) && t.perplexity > 1);
    assert.equal(r.perplexity, json(plainOut).perplexity, 'the student metrics do not depend on the teacher');
    assert.equal(s.gamma, 3);
    assert.equal(s.prompts, 3);
    assert.equal(s.new_tokens, 36);
    assert.ok(s.tested > 0 && s.accepted <= s.tested && s.tested <= s.drafted);
    assert.ok(s.tokens_per_teacher_call >= 1 && s.tokens_per_teacher_call <= 4);
    assert.equal(readEvalJson(teacherOut).data.model, student, 'the report reads it');
  });

  test('table output names every metric', () => {
    for (const m of ['perplexity', 'KL(teacher‖student)', 'KL(student‖teacher)', 'TVD', 'top-1 agreement', 'ECE (15 bins)', 'speculative acceptance (γ=3)', 'tokens per teacher call']) {
      assert.ok(withTeacher.stdout.includes(m), `missing ${m}:\n${show(withTeacher)}`);
    }
  });

  test('a model evaluated against itself: zero divergence, every draft accepted, γ + 1 tokens per teacher call', async () => {
    const r = JSON.parse(await evalInProcess([...base, '--model', teacher, '--teacher', teacher, ...spec, '--json'])) as EvalJson;
    assert.equal(r.divergence!.fkl, 0);
    assert.equal(r.divergence!.tvd, 0);
    assert.equal(r.divergence!.top1_agreement, 1);
    assert.equal(r.speculative!.acceptance_rate, 1);
    assert.equal(r.speculative!.tokens_per_teacher_call, 4);
  });

  test('a teacher with another tokenizer is refused with a message naming it', async () => {
    await assert.rejects(evalInProcess([...base, '--model', other, '--teacher', teacher]),
      (e: unknown) => e instanceof UserError && e.exitCode === 2 && /--teacher .*vocab_size 300 differs from the student's 299/.test(e.message));
    fs.copyFileSync(path.join(other, 'tokenizer.json'), path.join(work, 'tok299.json'));
    await assert.rejects(evalInProcess([...base, '--model', student, '--tokenizer', path.join(work, 'tok299.json'), '--teacher', teacher]),
      (e: unknown) => e instanceof UserError && /tokenizer\.json differs from the student's/.test(e.message));
  });
});
