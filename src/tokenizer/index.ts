/** Byte-level BPE tokenizer (GPT-2 style) with Hugging Face `tokenizer.json` and GPT-2 file interop. */
export { BpeTokenizer } from './bpe.js';
export type { BpeTrainOptions } from './train.js';
export { MAX_TRAIN_VOCAB } from './train.js';
export { BYTE_TO_UNICODE, UNICODE_TO_BYTE } from './bytes.js';
export { GPT2_SPLIT_PATTERN, pretokenize } from './pretokenize.js';
export { MAX_TOKEN_ID, MAX_MERGES, MAX_ADDED_TOKENS } from './format.js';
export { MAX_TOKENIZER_FILE_BYTES } from './io.js';
