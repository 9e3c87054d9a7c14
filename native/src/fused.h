// Threaded drivers of the fused kernels (normalisation, AdamW, flash-style attention). Inputs are
// validated by addon.cc; these only split the work over the pool and call the per-ISA row kernels
// and GEMM micro-kernels of a KernelTable. Each output element is computed by one task whatever the
// thread count, except the norm's gw/gb column sums, which are reduced from per-part float64
// partials in a fixed order — so results do not depend on the number of threads.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace lmd {

/** Where row t of head h in batch b starts: off + b·sb + h·sh + t·st (its D values are contiguous). */
struct HeadLayout {
  int64_t off, sb, sh, st;
};

struct AttnDims {
  int64_t B, H, Hkv, T, S, D;
  bool causal;
  float scale;
  /** q, k, v and out (gq, gk, gv and gOut in the backward follow the same layouts) */
  HeadLayout q, k, v, o;
};

/** The dense [B, heads, rows, D] layout. */
inline HeadLayout dense_layout(int64_t heads, int64_t rows, int64_t D) { return {0, heads * rows * D, rows * D, D}; }

void norm_forward(const KernelTable& kt, const float* x, const float* w, const float* b, float* out, float* mean,
                  float* rstd, int64_t rows, int64_t cols, double eps, bool rms);
/** gw (and gb when non-null) are accumulated into, like the reference. Throws std::bad_alloc. */
void norm_backward(const KernelTable& kt, const float* x, const float* w, const float* mean, const float* rstd,
                   const float* gy, float* gx, float* gw, float* gb, int64_t rows, int64_t cols, bool rms);
void adamw(const KernelTable& kt, float* w, const float* g, float* m, float* v, int64_t n, const AdamParams& a);
/** Throws std::bad_alloc when a thread's scratch cannot be allocated. */
void attention_forward(const KernelTable& kt, const float* q, const float* k, const float* v, float* out, float* lse,
                       const AttnDims& d);
/**
 * Overwrites gq, gk, gv (which may be one buffer when the layouts interleave them, e.g. packed qkv).
 * Work is split by (batch, kv head), so GQA accumulation never races.
 */
void attention_backward(const KernelTable& kt, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const float* gout, float* gq, float* gk, float* gv, const AttnDims& d);

}  // namespace lmd
