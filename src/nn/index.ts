export * from './functional.js';
export * from './layers.js';
export * from './module.js';
export { gelu, silu } from '../tensor/ops.js';
