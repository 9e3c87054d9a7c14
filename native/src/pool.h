// A persistent thread pool shared by every kernel of the addon. It is created once per process
// (sized by LMDISTILL_THREADS or the hardware concurrency) and runs "task lists": run(n, fn, ctx)
// calls fn(ctx, t) for t in [0, n) across the calling thread and the workers, and returns when all
// are done. The interface is a plain function pointer so ISA-specific translation units can use it
// without instantiating std:: templates (see gemm_impl.h on why that matters).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lmd {

using TaskFn = void (*)(void* ctx, long task);

/** Number of threads that run() spreads work over (workers + the caller), at least 1. */
int pool_threads();
/** How long idle workers spin before blocking, in µs (LMDISTILL_SPIN_US, default 300). */
int pool_spin_us();
/** Changes the thread count (joins and recreates the workers); n <= 0 restores the default. */
void pool_resize(int n);
/**
 * Runs fn(ctx, t) for every t in [0, ntasks). Runs inline on the caller when ntasks == 1, when
 * called from inside a task, or when another thread is already using the pool.
 */
void pool_run(long ntasks, TaskFn fn, void* ctx);

/**
 * Per-thread scratch memory (64-byte aligned), grown on demand and kept for the thread's lifetime.
 * `slot` selects one of a few independent buffers (e.g. packed A and packed B).
 */
float* scratch(int slot, size_t floats);

/**
 * How many parts to split n independent elements into: about four per pool thread (the threads take
 * parts as they finish, so one thread that starts late or is preempted does not hold up the job),
 * each at least `min_part` elements; 1 when n is below that.
 */
inline int64_t balanced_parts(int64_t n, int64_t min_part) {
  const int64_t by_size = n / (min_part > 0 ? min_part : 1);
  const int64_t want = 4 * static_cast<int64_t>(pool_threads());
  return by_size < 1 ? 1 : (by_size < want ? by_size : want);
}

/** [0, n) split into `parts` ranges whose inner boundaries are multiples of 64 elements (cache lines). */
struct Chunks {
  int64_t n, parts;
  int64_t begin(long t) const { return n * t / parts / 64 * 64; }
  int64_t end(long t) const { return t + 1 == parts ? n : n * (t + 1) / parts / 64 * 64; }
};

}  // namespace lmd
