/** `lmdistill eval`: validation perplexity of a model folder on a config's validation split or a text source. */
import type { Command } from 'commander';
import { loadTrainConfig } from '../config/load.js';
import { dataSchema, type CorpusSourceConfig } from '../config/schema.js';
import { parseWith } from '../config/zod.js';
import { BatchLoader } from '../data/loader.js';
import { loadCorpus } from '../data/corpus.js';
import { encodeDocuments, toCorpusSource } from '../data/prepare.js';
import { packDocuments } from '../data/packing.js';
import { splitDocuments } from '../data/split.js';
import { UserError } from '../errors.js';
import { evaluateLoss } from '../train/trainer.js';
import { intArg } from './args.js';
import { loadModelAndTokenizer } from './model-folder.js';
import { createReporter } from './progress.js';

interface EvalOpts { model: string; tokenizer?: string; config?: string; text?: string; dir?: string; jsonl?: string; field: string; seqLen?: number; batchSize: number; maxBatches: number; json?: boolean; split: 'val' | 'all' }

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('perplexity of a model on validation text (default: the embedded corpus validation split)')
    .requiredOption('-m, --model <dir>', 'Hugging Face model folder')
    .option('--tokenizer <file>', 'tokenizer.json (default: the one in the model folder)')
    .option('-c, --config <file>', "use this training config's data section and validation split")
    .option('--text <file>', 'evaluate on a text file')
    .option('--dir <dir>', 'evaluate on a directory of .txt/.md files')
    .option('--jsonl <file>', 'evaluate on a JSONL file')
    .option('--field <name>', 'JSONL text field', 'text')
    .option('--split <which>', '"val" (the deterministic validation split) or "all" documents', (v) => {
      if (v !== 'val' && v !== 'all') throw new UserError(`--split expects "val" or "all", got "${v}"`, 2);
      return v;
    }, 'val')
    .option('--seq-len <n>', 'tokens per sequence (default: data.seq_len, capped by the model)', intArg('--seq-len'))
    .option('--batch-size <n>', 'sequences per batch', intArg('--batch-size'), 8)
    .option('--max-batches <n>', 'stop after n batches (0 = all)', intArg('--max-batches', 0), 0)
    .option('--json', 'print JSON')
    .action((o: EvalOpts) => {
      const { model, tokenizer } = loadModelAndTokenizer(o.model, o.tokenizer);
      const sources: CorpusSourceConfig[] = [
        ...(o.text ? [{ text: o.text }] : []), ...(o.dir ? [{ dir: o.dir }] : []), ...(o.jsonl ? [{ jsonl: o.jsonl, field: o.field }] : []),
      ];
      if (sources.length > 1) throw new UserError('give at most one of --text, --dir, --jsonl', 2);
      const data = o.config ? loadTrainConfig(o.config).data : parseWith(dataSchema, sources.length ? { source: sources[0] } : {}, 'eval options');
      const seqLen = Math.min(o.seqLen ?? data.seq_len, model.maxPositions);
      const docs = loadCorpus(toCorpusSource(data.source));
      const chosen = o.split === 'all' || docs.length < 2 ? docs : splitDocuments(docs, { valFraction: data.val_fraction, seed: data.split_seed }).val;
      const rep = createReporter();
      rep.start(chosen.length, 0, 'tokenizing');
      const ids = encodeDocuments(tokenizer, chosen, (d) => rep.update(d, {}));
      rep.stop();
      const packed = packDocuments(ids, { seqLen, eosId: tokenizer.eosId });
      const loader = new BatchLoader(packed, { batchSize: Math.min(o.batchSize, packed.length), shuffle: false, dropLast: false });
      const n = o.maxBatches > 0 ? Math.min(o.maxBatches, loader.batchesPerEpoch) : loader.batchesPerEpoch;
      rep.start(n, 0, 'evaluating');
      let i = 0;
      const batches = (function* () { for (; i < n; i++) { rep.update(i, {}); yield loader.next(); } })();
      const { loss, tokens } = evaluateLoss(model, batches);
      rep.stop();
      const result = { model: o.model, tokens, seq_len: seqLen, loss, perplexity: Math.exp(loss), bits_per_token: loss / Math.LN2 };
      if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
      else process.stdout.write(`tokens ${tokens} · loss ${loss.toFixed(4)} nats/token · perplexity ${result.perplexity.toFixed(3)}\n`);
    });
}
