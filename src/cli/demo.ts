/** `lmdistill demo`: the main job on the embedded data. Until distillation lands it trains tiny-gpt and samples. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { intArg } from './args.js';
import { trainCommand } from './train.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train a small GPT on the embedded Moby Dick corpus, report perplexity and sample from it')
    .option('--steps <n>', 'training steps (default 200: ~6 min on the pure-TS backend)', intArg('--steps'), 200)
    .option('--out <dir>', 'run folder', 'runs/demo')
    .option('--fresh', 'start over instead of resuming')
    .action(async (o: { steps: number; out: string; fresh?: boolean }) => {
      const here = path.dirname(fileURLToPath(import.meta.url));
      const cfg = [path.join(here, '../../configs/tiny-gpt.yaml')].find((p) => fs.existsSync(p))!;
      await trainCommand({ config: cfg, out: o.out, steps: o.steps, fresh: o.fresh });
    });
}
