/** `lmdistill tokenizer train|encode|decode`. */
import type { Command } from 'commander';
import { loadCorpus } from '../data/corpus.js';
import { EOS_TOKEN, toCorpusSource } from '../data/prepare.js';
import { corpusSourceSchema, type CorpusSourceConfig } from '../config/schema.js';
import { parseWith } from '../config/zod.js';
import { UserError } from '../errors.js';
import { BpeTokenizer } from '../tokenizer/index.js';
import { intArg } from './args.js';
import { createReporter } from './progress.js';

export function registerTokenizer(program: Command): void {
  const tok = program.command('tokenizer').description('train and use byte-level BPE tokenizers (HF tokenizer.json)');
  tok
    .command('train')
    .description('train a byte-level BPE tokenizer and save it as tokenizer.json')
    .requiredOption('-o, --out <file>', 'output tokenizer.json')
    .option('--vocab-size <n>', 'vocabulary size incl. 256 bytes and special tokens', intArg('--vocab-size', 257), 1024)
    .option('--min-frequency <n>', 'minimum pair count to merge', intArg('--min-frequency'), 2)
    .option('--text <file>', 'train on a text file')
    .option('--dir <dir>', 'train on a directory of .txt/.md files')
    .option('--jsonl <file>', 'train on a JSONL file')
    .option('--field <name>', 'JSONL text field', 'text')
    .option('--embedded <name>', 'train on an embedded corpus (default: moby-dick)')
    .option('--special <tokens...>', 'special tokens', [EOS_TOKEN])
    .action((o: { out: string; vocabSize: number; minFrequency: number; text?: string; dir?: string; jsonl?: string; field: string; embedded?: string; special: string[] }) => {
      const given: CorpusSourceConfig[] = [
        ...(o.text ? [{ text: o.text }] : []), ...(o.dir ? [{ dir: o.dir }] : []),
        ...(o.jsonl ? [{ jsonl: o.jsonl, field: o.field }] : []),
      ];
      if (given.length > 1 || (given.length && o.embedded)) throw new UserError('give one of --text, --dir, --jsonl, --embedded', 2);
      const src = given[0] ?? parseWith(corpusSourceSchema, { embedded: o.embedded ?? 'moby-dick' }, '--embedded');
      const docs = loadCorpus(toCorpusSource(src));
      const rep = createReporter();
      rep.start(o.vocabSize, 0, 'merges');
      const t0 = performance.now();
      const t = BpeTokenizer.train(docs, { vocabSize: o.vocabSize, minFrequency: o.minFrequency, specialTokens: o.special }, (d) => rep.update(d, {}));
      rep.stop();
      t.save(o.out);
      const chars = docs.reduce((a, d) => a + d.length, 0);
      const tokens = docs.reduce((a, d) => a + t.encode(d).length, 0);
      process.stderr.write(`saved ${o.out}: ${t.vocabSize} tokens, ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(chars / tokens).toFixed(2)} chars/token on the training text\n`);
    });
  tok
    .command('encode')
    .description('print the token ids of a text')
    .requiredOption('--tokenizer <file>', 'tokenizer.json')
    .argument('<text>', 'text to encode')
    .action((text: string, o: { tokenizer: string }) => {
      process.stdout.write(JSON.stringify(BpeTokenizer.load(o.tokenizer).encode(text)) + '\n');
    });
  tok
    .command('decode')
    .description('print the text of token ids')
    .requiredOption('--tokenizer <file>', 'tokenizer.json')
    .argument('<ids...>', 'token ids')
    .action((ids: string[], o: { tokenizer: string }) => {
      const nums = ids.flatMap((s) => s.split(/[\s,[\]]+/)).filter(Boolean).map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new UserError(`not a token id: "${s}"`, 2);
        return n;
      });
      process.stdout.write(BpeTokenizer.load(o.tokenizer).decode(nums) + '\n');
    });
}
