export * from './tensor.js';
export * from './ops.js';
export * from './shape.js';
export { backward, sumTo } from './autodiff.js';
export type { Primitive, PrimParams } from './primitives.js';
export { autocast, getPrecision, PRECISIONS, type Precision } from './precision.js';
