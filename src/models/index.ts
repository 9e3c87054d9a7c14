export * from './base.js';
export * from './config.js';
export { GPT2LMHeadModel } from './gpt2.js';
export { LlamaForCausalLM } from './llama.js';
export * from './registry.js';
