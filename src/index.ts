/**
 * lmdistill — library entry point. The CLI (src/cli) is a thin layer over these.
 */
export { UserError } from './errors.js';
export * from './tensor/index.js';
export * as nn from './nn/index.js';
export * from './models/index.js';
export { generate, sampleToken, type SampleOptions } from './models/generate.js';
export { BpeTokenizer } from './tokenizer/index.js';
export { loadCorpus, type CorpusSource } from './data/corpus.js';
export { PackedDataset, packDocuments, packTokens, joinDocuments } from './data/packing.js';
export { BatchLoader, type Batch, type LoaderState } from './data/loader.js';
export { splitDocuments, splitTokens } from './data/split.js';
export { prepareData, unigramPerplexity } from './data/prepare.js';
export { readSafetensors, writeSafetensors, parseSafetensors } from './io/safetensors.js';
export { saveCheckpoint, loadCheckpoint, hasCheckpoint } from './io/checkpoint.js';
export { AdamW, clipGradNorm, type AdamWOptions } from './optim/adamw.js';
export { learningRate, type ScheduleOptions } from './optim/schedules.js';
export { Trainer, evaluateLoss, crossEntropyLoss, type LossFn, type StepResult } from './train/trainer.js';
export { runTraining, type TrainEvent, type RunSummary } from './train/run.js';
export { loadTrainConfig } from './config/load.js';
export { trainConfigSchema, type TrainConfig } from './config/schema.js';
export { Rng } from './util/rng.js';
export { selectBackend, nativeBackend, nativeInfo } from './backend/native.js';
export { refBackend } from './backend/ref.js';
export { roundBf16 } from './backend/gemm.js';
export * from './distill/index.js';
export { createTeacher, LocalTeacher, OpenAITeacher, OnnxTeacher, CachedTeacher, buildTeacherCache, type Teacher, type TeacherBatch, type TopK } from './teachers/index.js';
export { startServer, serveOptionsSchema } from './serve/index.js';
