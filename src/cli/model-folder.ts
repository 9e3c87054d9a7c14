/** Loading a Hugging Face model folder together with its tokenizer for the CLI commands. */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { CausalLM } from '../models/base.js';
import { loadPretrained } from '../models/registry.js';
import { BpeTokenizer } from '../tokenizer/index.js';

export function loadModelAndTokenizer(dir: string, tokenizerPath?: string): { model: CausalLM; tokenizer: BpeTokenizer } {
  if (!fs.existsSync(dir)) throw new UserError(`--model ${dir}: no such directory`, 2);
  const tokFile = tokenizerPath ?? path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) throw new UserError(`${dir} has no tokenizer.json; pass --tokenizer FILE`, 2);
  const tokenizer = BpeTokenizer.load(tokFile);
  const model = loadPretrained(dir);
  if (tokenizer.vocabSize > model.vocabSize) {
    throw new UserError(`${tokFile} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.vocabSize}`, 2);
  }
  return { model, tokenizer };
}
