// Strided elementwise kernels (binary, where, reduce, copy) and row gather/scatter, in baseline code:
// they are memory-bound, so wider vectors buy little. Dimensions are coalesced exactly as
// src/backend/strided.ts does (size-1 axes dropped, adjacent axes merged when every operand is
// contiguous across them), then the innermost dimension runs as a tight loop specialised for the
// common stride patterns (all 1, or one operand broadcast). Large problems split their outer rows
// over the thread pool; every output element is written by exactly one row, so results are
// identical whatever the thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace lmd {

enum BinaryOp : int { kAdd, kSub, kMul, kDiv, kMaximum, kPow, kEq, kLt, kGt, kBinaryCount };
enum ReduceOp : int { kSum, kMax };

using Dims = std::vector<int64_t>;

void binary(int op, const float* a, const Dims& as, const float* b, const Dims& bs, float* out, const Dims& shape);
void where(const float* cond, const Dims& cs, const float* a, const Dims& as, const float* b, const Dims& bs,
           float* out, const Dims& shape);
/** out (length out_len) = reduction of contiguous x over `shape`, x index → out slot via out_strides. */
void reduce(int op, const float* x, const Dims& shape, float* out, int64_t out_len, const Dims& out_strides);
void copy_strided(const float* x, int64_t offset, const Dims& strides, float* out, const Dims& shape);
void gather(const float* table, const int32_t* ids, int64_t n, int64_t d, float* out);
void scatter_add(const float* src, const int32_t* ids, int64_t n, int64_t d, float* out);

/** Smallest and largest element offset that `strides` reach over `shape` from `base`. */
void offset_range(const Dims& shape, const Dims& strides, int64_t base, int64_t* lo, int64_t* hi);
/** Row-major strides of a contiguous array of `shape`. */
Dims contiguous_strides(const Dims& shape);

}  // namespace lmd
