// The threaded GEMM driver: splits a batched GEMM into independent tiles of C (whole batch items
// when there are enough of them, otherwise row/column blocks) and runs them on the pool with each
// thread's own packing buffers. Every element of C is computed by the same sequence of FMAs whatever
// the split, so results do not depend on the thread count.
#pragma once
#include "kernels.h"

namespace lmd {

/** C = op(A)·op(B) (+ C) over the batch with the given kernel table. Throws std::bad_alloc. */
void gemm(const KernelTable& kt, const GemmArgs& g);

}  // namespace lmd
