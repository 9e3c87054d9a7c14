/**
 * `lmdistill eval`: a student model on reference text (default: the embedded corpus validation split) —
 * perplexity, accuracy and calibration; with `--teacher`, also the teacher–student divergences per token
 * and the student's speculative-decoding acceptance as a drafter for the teacher.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadTrainConfig } from '../config/load.js';
import { dataSchema, type CorpusSourceConfig } from '../config/schema.js';
import { parseWith } from '../config/zod.js';
import { BatchLoader } from '../data/loader.js';
import { describeCorpus, loadCorpus } from '../data/corpus.js';
import { encodeDocuments, toCorpusSource } from '../data/prepare.js';
import { packDocuments, type PackedDataset } from '../data/packing.js';
import { splitDocuments } from '../data/split.js';
import { UserError } from '../errors.js';
import { evaluateModels } from '../eval/evaluate.js';
import { evalJsonText, formatEvalTable, toEvalJson } from '../eval/result.js';
import { measureSpeculative } from '../eval/speculative.js';
import { BpeTokenizer } from '../tokenizer/index.js';
import { Rng } from '../util/rng.js';
import { floatArg, intArg } from './args.js';
import { loadModelAndTokenizer } from './model-folder.js';
import { createReporter } from './progress.js';

interface EvalOpts {
  model: string; tokenizer?: string; teacher?: string; config?: string; text?: string; dir?: string; jsonl?: string; field: string;
  seqLen?: number; batchSize: number; maxBatches: number; json?: boolean; split: 'val' | 'all'; out?: string;
  gamma: number; specPrompts: number; specTokens: number; promptLen: number; temperature: number; seed: number; bins: number;
}

/** `n` prompts: the first `len` tokens of rows spread evenly over the packed reference sequences. */
function promptsFrom(packed: PackedDataset, n: number, len: number): number[][] {
  const count = Math.min(n, packed.length);
  return Array.from({ length: count }, (_, i) => Array.from(packed.get(Math.floor((i * packed.length) / count)).subarray(0, len)));
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on reference text (default: the embedded corpus validation split): perplexity, accuracy, calibration; '
      + 'with --teacher also KL/TVD to the teacher, top-1 agreement and speculative-decoding acceptance')
    .requiredOption('-m, --model <dir>', 'Hugging Face model folder (the student)')
    .option('--teacher <dir>', 'teacher model folder sharing the tokenizer: adds teacher–student metrics and speculative decoding')
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
    .option('--gamma <n>', 'speculative decoding: draft tokens per teacher call', intArg('--gamma'), 4)
    .option('--spec-prompts <n>', 'speculative decoding: prompts taken from the reference text (0 = skip)', intArg('--spec-prompts', 0), 8)
    .option('--spec-tokens <n>', 'speculative decoding: new tokens per prompt', intArg('--spec-tokens'), 32)
    .option('--prompt-len <n>', 'speculative decoding: prompt length in tokens', intArg('--prompt-len'), 16)
    .option('--temperature <t>', 'speculative decoding: sampling temperature (0 = greedy)', floatArg('--temperature', 0, 100), 1)
    .option('--seed <n>', 'speculative decoding: sampling seed', intArg('--seed', 0), 0)
    .option('--bins <n>', 'calibration bins for the ECE', intArg('--bins'), 15)
    .option('--out <file>', 'also write the JSON result to this file (for lmdistill report --eval)')
    .option('--json', 'print JSON instead of a table')
    .action((o: EvalOpts) => {
      const { model, tokenizer } = loadModelAndTokenizer(o.model, o.tokenizer);
      const teacher = o.teacher ? loadTeacher(o.teacher, tokenizer, model.vocabSize) : undefined;
      const sources: CorpusSourceConfig[] = [
        ...(o.text ? [{ text: o.text }] : []), ...(o.dir ? [{ dir: o.dir }] : []), ...(o.jsonl ? [{ jsonl: o.jsonl, field: o.field }] : []),
      ];
      if (sources.length > 1) throw new UserError('give at most one of --text, --dir, --jsonl', 2);
      if (o.config && sources.length) throw new UserError('give either --config or one of --text, --dir, --jsonl', 2);
      const data = o.config ? loadTrainConfig(o.config).data : parseWith(dataSchema, sources.length ? { source: sources[0] } : {}, 'eval options');
      const maxPositions = Math.min(model.maxPositions, teacher?.model.maxPositions ?? Infinity);
      const seqLen = Math.min(o.seqLen ?? data.seq_len, maxPositions);
      const corpus = toCorpusSource(data.source);
      const docs = loadCorpus(corpus);
      const useVal = o.split === 'val' && docs.length >= 2;
      const chosen = useVal ? splitDocuments(docs, { valFraction: data.val_fraction, seed: data.split_seed }).val : docs;
      const rep = createReporter();
      rep.start(chosen.length, 0, 'tokenizing');
      const ids = encodeDocuments(tokenizer, chosen, (d) => rep.update(d, {}));
      rep.stop();
      const packed = packDocuments(ids, { seqLen, eosId: tokenizer.eosId });
      if (packed.length === 0) throw new UserError(`the reference text has fewer than ${seqLen + 1} tokens; pass a smaller --seq-len or more text`, 2);
      const loader = new BatchLoader(packed, { batchSize: Math.min(o.batchSize, packed.length), shuffle: false, dropLast: false });
      const n = o.maxBatches > 0 ? Math.min(o.maxBatches, loader.batchesPerEpoch) : loader.batchesPerEpoch;
      rep.start(n, 0, 'evaluating');
      const batches = (function* () { for (let i = 0; i < n; i++) yield loader.next(); })();
      const metrics = evaluateModels(model, batches, { teacher: teacher?.model, bins: o.bins, onBatch: (d) => rep.update(d, {}) });
      rep.stop();

      let spec;
      if (teacher && o.specPrompts > 0) {
        const promptLen = Math.min(o.promptLen, seqLen, maxPositions - 1);
        const prompts = promptsFrom(packed, o.specPrompts, promptLen);
        rep.start(prompts.length, 0, 'speculative decoding');
        const report = measureSpeculative(model, teacher.model, prompts, {
          gamma: o.gamma, maxNewTokens: o.specTokens, temperature: o.temperature, rng: new Rng(o.seed), onPrompt: (d) => rep.update(d, {}),
        });
        rep.stop();
        spec = { report, promptLen };
      }
      const result = toEvalJson(
        { model: o.model, teacher: o.teacher, data: `${describeCorpus(corpus)} (${useVal ? 'val split' : 'all documents'})`, seqLen },
        metrics, spec,
      );
      const json = evalJsonText(result);
      if (o.out) {
        try {
          fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
          fs.writeFileSync(o.out, json + '\n');
        } catch (e) {
          throw new UserError(`--out ${o.out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 2);
        }
      }
      if (o.json) process.stdout.write(json + '\n');
      else if (!teacher) {
        process.stdout.write(`tokens ${result.tokens} · loss ${result.loss.toFixed(4)} nats/token · perplexity ${result.perplexity.toFixed(3)}`
          + ` · top-1 accuracy ${result.accuracy.toFixed(3)} · ECE ${result.ece.toFixed(4)}\n`);
      } else process.stdout.write(formatEvalTable(result));
    });
}

/** Loads the teacher folder and checks it shares the student's token ids. */
function loadTeacher(dir: string, studentTok: BpeTokenizer, studentVocab: number): ReturnType<typeof loadModelAndTokenizer> {
  if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    const hint = fs.existsSync(path.join(dir, 'final', 'config.json')) ? ` (a run folder? its model is ${path.join(dir, 'final')})` : '';
    throw new UserError(`--teacher ${dir} has no tokenizer.json${hint}: teacher–student metrics need a shared tokenizer`, 2);
  }
  const t = loadModelAndTokenizer(dir);
  if (t.model.vocabSize !== studentVocab) {
    throw new UserError(`--teacher ${dir}: vocab_size ${t.model.vocabSize} differs from the student's ${studentVocab}; logit metrics need shared token ids`, 2);
  }
  if (JSON.stringify(t.tokenizer.toJSON()) !== JSON.stringify(studentTok.toJSON())) {
    throw new UserError(`--teacher ${dir}: its tokenizer.json differs from the student's; teacher and student must share token ids`, 2);
  }
  return t;
}
