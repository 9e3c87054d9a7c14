/** `lmdistill train --config x.yaml`: thin wrapper over runTraining with a progress bar. */
import type { Command } from 'commander';
import { loadTrainConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { runTraining, type TrainEvent } from '../train/run.js';
import { createReporter, fmtDuration } from './progress.js';
import { intArg } from './args.js';

export function registerDistill(program: Command): void {
  program
    .command('distill')
    .description('distill a teacher into a student from a YAML config with a `distill:` section (resumes from out_dir/checkpoint)')
    .requiredOption('-c, --config <file>', 'distillation config (YAML); see configs/distill-*.yaml')
    .option('--steps <n>', 'override train.steps', intArg('--steps'))
    .option('--out <dir>', 'override out_dir')
    .option('--fresh', 'discard an existing checkpoint in out_dir and start over')
    .option('--precision <p>', 'override train.precision: fp32 (default) or bf16 (bf16 GEMM operands, fp32 accumulation)')
    .action((o: { config: string; steps?: number; out?: string; fresh?: boolean; precision?: string }) => trainCommand({ ...o, requireDistill: true }));
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a language model from a YAML config (resumes from out_dir/checkpoint when present)')
    .requiredOption('-c, --config <file>', 'training config (YAML); see configs/tiny-gpt.yaml')
    .option('--steps <n>', 'override train.steps', intArg('--steps'))
    .option('--out <dir>', 'override out_dir')
    .option('--fresh', 'discard an existing checkpoint in out_dir and start over')
    .option('--precision <p>', 'override train.precision: fp32 (default) or bf16 (bf16 GEMM operands, fp32 accumulation)')
    .action(trainCommand);
}

/** Runs a training config with terminal progress; sets process.exitCode 130 when interrupted. */
export async function trainCommand(o: { config: string; steps?: number; out?: string; fresh?: boolean; precision?: string; requireDistill?: boolean }): Promise<void> {
  // --precision goes through the schema like the YAML key, so a bad value gets the same error
  const cfg = loadTrainConfig(o.config, { 'train.steps': o.steps, out_dir: o.out, 'train.precision': o.precision });
  if (o.requireDistill && !cfg.distill) throw new UserError(`${o.config}: no "distill:" section (teacher, loss, regime); use \`lmdistill train\` for plain training`, 2);
  const rep = createReporter();
  let stop = false;
  const onSigint = (): void => { if (stop) process.exit(130); stop = true; rep.log('interrupt: saving a checkpoint at the end of this step (Ctrl-C again to quit now)'); };
  process.on('SIGINT', onSigint);
  const stages = { corpus: 'reading corpus', tokenizer: 'training tokenizer', encode: 'tokenizing' };
  let stage = '';
  const onEvent = (e: TrainEvent): void => {
    switch (e.type) {
      case 'prepare':
        if (e.stage !== stage) { stage = e.stage; rep.start(e.total, e.done, stages[e.stage]); }
        rep.update(e.done, {});
        break;
      case 'start':
        rep.stop();
        rep.log(`${e.resumed ? `resuming at step ${e.startStep}` : 'training'}: ${(e.parameters / 1e6).toFixed(2)}M parameters · ${e.trainSequences} train / ${e.valSequences} val sequences · tokenizer ${e.tokenizer} · unigram val ppl ${e.unigramPpl.toFixed(1)}`);
        rep.start(e.totalSteps, e.startStep, 'train');
        break;
      case 'step':
        rep.update(e.step, {
          loss: e.loss.toFixed(4),
          ...Object.fromEntries(Object.entries(e.parts).slice(0, 4).map(([k, v]) => [k, v.toFixed(4)])),
          lr: e.lr.toExponential(2), 'tok/s': e.tokensPerSec.toFixed(0), ETA: fmtDuration(e.etaMs),
        });
        break;
      case 'eval':
        rep.log(`step ${e.step}: val loss ${e.valLoss.toFixed(4)} · val ppl ${e.valPpl.toFixed(2)}${Object.entries(e.extra).map(([k, v]) => ` · ${k} ${v.toFixed(4)}`).join('')}`);
        break;
      case 'checkpoint':
        break;
      case 'sample':
        rep.stop();
        rep.log(`sample> ${e.prompt}${e.text}`);
        break;
      case 'done':
        rep.stop();
        rep.log(e.summary.stopped
          ? `stopped at step ${e.summary.steps}; checkpoint saved — rerun the same command to resume`
          : `done: ${e.summary.steps} steps · val ppl ${e.summary.finalValPpl.toFixed(2)} (unigram ${e.summary.unigramPpl.toFixed(1)}) · ${e.summary.trainTokensPerSec.toFixed(0)} tok/s · model in ${e.summary.outDir}/final`);
        break;
    }
  };
  try {
    const summary = await runTraining(cfg, { onEvent, shouldStop: () => stop, fresh: o.fresh });
    if (summary.stopped) process.exitCode = 130;
  } finally {
    rep.stop();
    process.off('SIGINT', onSigint);
  }
}
