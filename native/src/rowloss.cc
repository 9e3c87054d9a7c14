// Threaded driver of the row-loss kernel (rowloss.h): rows are split into contiguous blocks over the
// pool; each task gets two per-thread V-float scratch rows for the exponentials it reuses across
// the parts of the mixture.
#include "rowloss.h"

#include <algorithm>
#include <atomic>
#include <new>

#include "pool.h"

namespace lmd {

// Slots 0..3 are the GEMM packing and attention tiles, 4.. attention head rows (fused.cc).
constexpr int kSlotQ = 10, kSlotP = 11;

void row_losses(const KernelTable& kt, const RowLossArgs& a) {
  if (a.rows <= 0) return;
  struct Ctx { const KernelTable* kt; const RowLossArgs* a; int64_t parts; std::atomic<bool> failed; } c{&kt, &a, 1, {false}};
  // A row is O(V) exponentials: worth a task from a few thousand elements on.
  if (a.rows >= 2 && a.rows * a.V >= (1 << 14)) c.parts = std::min<int64_t>(a.rows, pool_threads() * 4);
  pool_run(static_cast<long>(c.parts), [](void* p, long t) {
    Ctx& c = *static_cast<Ctx*>(p);
    const int64_t r0 = c.a->rows * t / c.parts, r1 = c.a->rows * (t + 1) / c.parts;
    try {
      float* q = scratch(kSlotQ, static_cast<size_t>(c.a->V));
      float* pt = scratch(kSlotP, static_cast<size_t>(c.a->V));
      c.kt->row_loss(*c.a, r0, r1, q, pt);
    } catch (...) {  // an exception must not leave a pool worker
      c.failed.store(true);
    }
  }, &c);
  if (c.failed.load()) throw std::bad_alloc();
}

}  // namespace lmd
