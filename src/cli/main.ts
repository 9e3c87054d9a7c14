#!/usr/bin/env node
/**
 * The `lmdistill` command line. Commands are thin: parse → validate → call the library. A UserError
 * prints its message (no stack) and exits with its code (2 = invalid input/config).
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { selectBackend } from '../backend/native.js';
import { setBackend } from '../tensor/tensor.js';
import { registerDemo } from './demo.js';
import { registerDoctor } from './doctor.js';
import { registerEval } from './eval.js';
import { registerGenerate } from './generate.js';
import { registerServe } from './serve.js';
import { registerTeacherCache } from './teacher-cache.js';
import { registerReport } from './report.js';
import { registerLab } from './lab.js';
import { registerBench } from './bench.js';
import { registerTokenizer } from './tokenizer.js';
import { registerDistill, registerTrain } from './train.js';
import { VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('lmdistill')
    .description('Distill and train language models on CPU (Hugging Face formats, OpenAI-compatible teachers)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerTrain(program);
  registerDistill(program);
  registerGenerate(program);
  registerEval(program);
  registerTokenizer(program);
  registerDemo(program);
  registerDoctor(program);
  registerServe(program);
  registerTeacherCache(program);
  registerReport(program);
  registerLab(program);
  registerBench(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    setBackend(selectBackend()); // native when the addon loaded (LMDISTILL_BACKEND=ref|native to force)
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help/version are "errors" with exit code 0; usage errors were already printed by commander
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UserError) {
      process.stderr.write(`lmdistill: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
