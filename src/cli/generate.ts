/** `lmdistill generate`: sample a continuation from a model folder. */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { generate } from '../models/generate.js';
import { Rng } from '../util/rng.js';
import { floatArg, intArg } from './args.js';
import { loadModelAndTokenizer } from './model-folder.js';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('continue a prompt with a model (greedy with --temperature 0)')
    .requiredOption('-m, --model <dir>', 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json)')
    .requiredOption('-p, --prompt <text>', 'prompt text')
    .option('--tokenizer <file>', 'tokenizer.json (default: the one in the model folder)')
    .option('-n, --max-new-tokens <n>', 'tokens to generate', intArg('--max-new-tokens'), 50)
    .option('-t, --temperature <x>', 'sampling temperature; 0 = greedy', floatArg('--temperature', 0), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', intArg('--top-k', 0), 0)
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', floatArg('--top-p', 0, 1), 1)
    .option('--seed <n>', 'random seed', intArg('--seed', 0), 0)
    .action((o: { model: string; prompt: string; tokenizer?: string; maxNewTokens: number; temperature: number; topK: number; topP: number; seed: number }) => {
      const { model, tokenizer } = loadModelAndTokenizer(o.model, o.tokenizer);
      const ids = tokenizer.encode(o.prompt);
      if (ids.length === 0) throw new UserError('--prompt is empty after tokenization', 2);
      if (ids.length >= model.maxPositions) throw new UserError(`--prompt is ${ids.length} tokens; the model takes at most ${model.maxPositions - 1} before generating`, 2);
      const out = generate(model, ids, {
        maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, eosId: tokenizer.eosId, rng: new Rng(o.seed),
      });
      process.stdout.write(o.prompt + tokenizer.decode(out) + '\n');
    });
}
