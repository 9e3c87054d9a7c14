/**
 * The `lmdistill` command line, run as a real child process on real files: help for every command, a tiny
 * train → generate → eval pipeline, a folder transformers wrote, the tokenizer commands, and bad input
 * (exit code 2 and one clear error line without a stack trace).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { errorLines, REPO_ROOT, runAll, runCli, show, tinyConfigYaml, tmpDir, writeTextDocs, type CliResult } from './helpers.js';

const work = tmpDir();
after(() => fs.rmSync(work, { recursive: true, force: true }));
const dataDir = path.join(work, 'data');
writeTextDocs(dataDir);

/** Writes `text` to `work/name` and returns the path. */
function put(name: string, text: string): string {
  const p = path.join(work, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

/** Asserts a successful run and returns it. */
function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, show(r));
  assert.ok(!r.stderr.includes('    at '), `stack trace printed:\n${show(r)}`);
  return r;
}

// One `tokenizer train` run shared by the tests that need a tokenizer file (saves a ~1 s spawn).
let tokenizerRun: Promise<{ file: string; run: CliResult }> | undefined;
function trainedTokenizer(): Promise<{ file: string; run: CliResult }> {
  tokenizerRun ??= (async () => {
    const textFile = put('tok-train.txt', fs.readdirSync(dataDir).sort().map((f) => fs.readFileSync(path.join(dataDir, f), 'utf8')).join('\n'));
    const file = path.join(work, 'tok', 'tok.json');
    fs.mkdirSync(path.dirname(file));
    return { file, run: await runCli(['tokenizer', 'train', '--text', textFile, '--vocab-size', '300', '--out', file]) };
  })();
  return tokenizerRun;
}

// Independent tests run concurrently; the spawn semaphore in helpers.ts keeps the CPU busy but not oversubscribed.
describe('lmdistill CLI', { concurrency: true }, () => {
  // ------------------------------------------------------------------------------------------------ help

  describe('--help', () => {
    // Every command with the options (or subcommands) its help must document.
    const commands: [string[], string[]][] = [
      [[], ['train', 'distill', 'generate', 'eval', 'tokenizer', 'demo', 'doctor', 'serve', 'teacher-cache', 'report', 'lab', 'bench', '--version']],
      [['train'], ['--config', '--steps', '--out', '--fresh']],
      [['distill'], ['--config', '--steps', '--out', '--fresh']],
      [['serve'], ['--model', '--port', '--host', '--api-key', '--max-concurrency']],
      [['doctor'], ['--json']],
      [['generate'], ['--model', '--prompt', '--tokenizer', '--max-new-tokens', '--temperature', '--top-k', '--top-p', '--seed']],
      [['eval'], ['--model', '--tokenizer', '--config', '--text', '--dir', '--jsonl', '--field', '--split', '--seq-len', '--batch-size', '--max-batches', '--json']],
      [['tokenizer'], ['train', 'encode', 'decode']],
      [['tokenizer', 'train'], ['--out', '--vocab-size', '--min-frequency', '--text', '--dir', '--jsonl', '--field', '--embedded', '--special']],
      [['tokenizer', 'encode'], ['--tokenizer', '<text>']],
      [['tokenizer', 'decode'], ['--tokenizer', '<ids...>']],
      [['demo'], ['--quick', '--out', '--fresh']],
    ];
    let results: CliResult[];
    before(async () => { results = await runAll(commands.map(([cmd]) => [...cmd, '--help'])); });

    commands.forEach(([cmd, mentions], i) => {
      test(`lmdistill ${[...cmd, '--help'].join(' ')}`, () => {
        const r = ok(results[i]);
        assert.match(r.stdout, /^Usage: lmdistill/, show(r));
        if (cmd.length) assert.ok(r.stdout.startsWith(`Usage: lmdistill ${cmd.join(' ')}`), show(r));
        for (const m of mentions) assert.ok(r.stdout.includes(m), `help does not mention ${m}:\n${show(r)}`);
      });
    });
  });

  // ------------------------------------------------------------------------- train → generate → eval

  describe('train → generate → eval on a tiny config', () => {
    const out = path.join(work, 'run');
    let train: CliResult, greedy: CliResult[], evalRun: CliResult;
    before(async () => {
      train = await runCli(['train', '--config', put('tiny.yaml', tinyConfigYaml(dataDir, out))]);
      if (train.code !== 0) return; // the first test reports it
      const gen = ['generate', '--model', path.join(out, 'final'), '--prompt', 'the', '--max-new-tokens', '5', '--temperature', '0'];
      const ev = ['eval', '--model', path.join(out, 'final'), '--dir', dataDir, '--split', 'all', '--json'];
      [evalRun, ...greedy] = await runAll([ev, gen, [...gen, '--seed', '12345']]);
    });

    test('train exits 0 and writes metrics.jsonl, final/ and summary.json', () => {
      ok(train);
      const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
      const rows = lines.map((l, i) => {
        try { return JSON.parse(l) as Record<string, unknown>; } catch { assert.fail(`metrics.jsonl line ${i + 1} is not JSON: ${l}`); }
      });
      const steps = rows.filter((r) => 'loss' in r);
      assert.deepEqual(steps.map((r) => r.step), [1, 2, 3], 'one metrics row per training step');
      for (const r of steps) assert.ok(typeof r.loss === 'number' && Number.isFinite(r.loss) && r.loss > 0, JSON.stringify(r));
      const evals = rows.filter((r) => 'val_loss' in r);
      assert.ok(evals.length >= 1 && evals.every((r) => Number.isFinite(r.val_loss)), 'an eval row with a finite val_loss');

      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(fs.statSync(path.join(out, 'final', f)).size > 0, `final/${f}`);
      const cfg = JSON.parse(fs.readFileSync(path.join(out, 'final', 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(cfg.model_type, 'gpt2');
      assert.equal(cfg.n_embd, 16);
      assert.equal(cfg.n_layer, 1);
      assert.equal(cfg.n_positions, 16, 'n_positions defaults to data.seq_len');
      const tok = JSON.parse(fs.readFileSync(path.join(out, 'final', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
      const ids = new Set([...Object.values(tok.model.vocab), ...tok.added_tokens.map((t) => t.id)]);
      assert.ok(ids.size > 256 && ids.size <= 300, `tokenizer has ${ids.size} tokens; vocab_size was 300`);
      assert.equal(cfg.vocab_size, ids.size, 'model vocab_size comes from the tokenizer');

      const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(summary.steps, 3);
      assert.equal(summary.stopped, false);
      assert.ok(Number.isFinite(summary.finalValPpl) && (summary.finalValPpl as number) > 1, JSON.stringify(summary));
    });

    test('generate --temperature 0 continues the prompt, deterministically (seed is irrelevant when greedy)', () => {
      assert.ok(greedy, 'training failed');
      const [a, b] = greedy;
      ok(a); ok(b);
      assert.ok(a.stdout.startsWith('the'), show(a));
      assert.ok(a.stdout.endsWith('\n'), show(a));
      assert.equal(b.stdout, a.stdout, 'greedy decoding must give identical text');
    });

    test('eval --split all --json prints a finite perplexity > 1', () => {
      assert.ok(evalRun, 'training failed');
      const r = ok(evalRun);
      let res: { tokens: number; loss: number; perplexity: number; seq_len: number };
      try { res = JSON.parse(r.stdout) as typeof res; } catch { assert.fail(`stdout is not JSON:\n${show(r)}`); }
      assert.ok(Number.isFinite(res.perplexity) && res.perplexity > 1, show(r));
      assert.ok(Math.abs(Math.log(res.perplexity) - res.loss) < 1e-9, 'perplexity = exp(loss)');
      assert.ok(res.tokens > 0, show(r));
      assert.equal(res.seq_len, 16);
    });
  });

  // ------------------------------------------------------------------------ a transformers-written folder

  test('generate on a folder transformers wrote (no tokenizer.json) exits 2 naming tokenizer.json', async () => {
    const dir = path.join(work, 'llama-tiny');
    fs.mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'hf', 'llama-tiny', f), path.join(dir, f));
    // a 300-token tokenizer cannot drive a 64-token model either
    const { file: tok, run } = await trainedTokenizer();
    ok(run);
    const [noTok, tooBig] = await runAll([
      ['generate', '--model', dir, '--prompt', 'hi', '--max-new-tokens', '2'],
      ['generate', '--model', dir, '--tokenizer', tok, '--prompt', 'hi', '--max-new-tokens', '2'],
    ]);
    for (const r of [noTok, tooBig]) {
      assert.equal(r.code, 2, show(r));
      assert.ok(!r.stderr.includes('    at '), show(r));
      assert.equal(errorLines(r.stderr).length, 1, show(r));
    }
    assert.match(noTok.stderr, /tokenizer\.json/, show(noTok));
    assert.ok(noTok.stderr.includes(dir), show(noTok));
    assert.match(tooBig.stderr, /vocab_size/, show(tooBig));
    assert.ok(tooBig.stderr.includes('64') && tooBig.stderr.includes('300'), show(tooBig));
  });

  // ------------------------------------------------------------------------------------- tokenizer

  test('tokenizer train / encode / decode round-trips a string', async () => {
    const { file: tok, run } = await trainedTokenizer();
    ok(run);
    const t = JSON.parse(fs.readFileSync(tok, 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
    const size = new Set([...Object.values(t.model.vocab), ...t.added_tokens.map((x) => x.id)]).size;
    assert.ok(size > 256 && size <= 300, `--vocab-size 300 gave ${size} tokens`);
    const sample = 'Call me Ishmael, the whale! naïve café — 鯨 🐋\ttabs\nnewline  two spaces <|endoftext|>';
    const enc = ok(await runCli(['tokenizer', 'encode', '--tokenizer', tok, sample]));
    const ids = JSON.parse(enc.stdout) as unknown;
    assert.ok(Array.isArray(ids) && ids.length > 0 && ids.every((x) => Number.isInteger(x) && x >= 0 && x < size), show(enc));
    // merges were learned: English text takes fewer tokens than bytes
    assert.ok(ids.length < Buffer.byteLength(sample), `no merges applied: ${enc.stdout}`);
    const dec = ok(await runCli(['tokenizer', 'decode', '--tokenizer', tok, ...(ids as number[]).map(String)]));
    assert.equal(dec.stdout, sample + '\n');
  });

  // ------------------------------------------------------------------------------------- bad input

  describe('bad input: exit 2, one error line naming the problem, no stack trace', () => {
    const good = tinyConfigYaml(dataDir, path.join(work, 'bad-run'));
    const edit = (from: string | RegExp, to: string): string => {
      const s = good.replace(from, to);
      assert.notEqual(s, good, `edit ${from} did not apply`);
      return s;
    };
    const missingData = path.join(work, 'no-such-corpus.txt');
    const missingTok = path.join(work, 'no-such-tokenizer.json');
    const missingCfg = path.join(work, 'no-such-config.yaml');
    interface Case { name: string; args: string[]; mentions: (string | RegExp)[] }
    // `mentions` may use FILE for the config file's path
    const cfgCase = (name: string, yaml: string, mentions: (string | RegExp)[]): Case => {
      const file = put(`bad/${name.replace(/\W+/g, '_')}.yaml`, yaml);
      return { name, args: ['train', '--config', file], mentions: mentions.map((m) => (m === 'FILE' ? file : m)) };
    };
    const cases: Case[] = [
      cfgCase('unknown top-level key (trian:)', edit(/^train:/m, 'trian:'), ['FILE', '"trian"']),
      cfgCase('unknown nested key (train.stepz)', edit('steps: 3,', 'stepz: 3,'), ['FILE', '"stepz"', 'train']),
      cfgCase('wrong type (train.steps: "ten")', edit('steps: 3,', 'steps: "ten",'), ['FILE', 'train.steps']),
      cfgCase('invalid YAML syntax', good + 'train: {steps: [\n', ['FILE', /YAML/i, /line \d+/]),
      cfgCase('unknown model_type', edit('model_type: gpt2', 'model_type: gpt5'), ['FILE', 'model_type']),
      cfgCase('tokenizer.path does not exist', edit('tokenizer: {vocab_size: 300}', `tokenizer: {path: ${JSON.stringify(missingTok)}}`), [missingTok]),
      cfgCase('data file does not exist', edit(/source: \{dir: [^}]*\}/, `source: {text: ${JSON.stringify(missingData)}}`), [missingData]),
      { name: 'config file does not exist', args: ['train', '--config', missingCfg], mentions: [missingCfg] },
      { name: '--steps abc', args: ['train', '--config', put('bad/ok.yaml', good), '--steps', 'abc'], mentions: ['--steps', '"abc"'] },
      { name: 'unknown option', args: ['train', '--config', put('bad/ok2.yaml', good), '--bogus-flag'], mentions: ['--bogus-flag'] },
      { name: 'generate --model /nonexistent', args: ['generate', '--model', '/nonexistent', '--prompt', 'x'], mentions: ['/nonexistent'] },
      { name: 'eval --split bogus', args: ['eval', '--model', '/nonexistent', '--split', 'bogus'], mentions: ['--split', 'bogus'] },
    ];
    let results: CliResult[];
    before(async () => { results = await runAll(cases.map((c) => c.args)); });

    cases.forEach((c, i) => {
      test(c.name, () => {
        const r = results[i];
        assert.ok(!r.stderr.includes('    at '), `stack trace printed:\n${show(r)}`);
        const errs = errorLines(r.stderr);
        assert.equal(errs.length, 1, `expected exactly one error line:\n${show(r)}`);
        for (const m of c.mentions) {
          assert.ok(typeof m === 'string' ? errs[0].includes(m) : m.test(errs[0]), `error line does not name ${m}:\n${show(r)}`);
        }
        assert.equal(r.code, 2, show(r));
      });
    });
  });
});
