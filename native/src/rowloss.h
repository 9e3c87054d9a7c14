// Row losses of the fused chunked head (src/distill/fused-loss.ts): for each row of student logits
// z [rows, V] a weighted mixture of hard-label cross-entropy and forward / reverse KL against dense
// teacher logits at a temperature, with the loss per part and dLoss/dz. The semantics are those of
// the TypeScript row kernels (src/distill/objectives/{ce,kl,categorical}.ts) on rows whose logits are
// all finite; a row with a non-finite logit (a masked vocabulary entry) or an invalid label is
// *refused* — flagged and left for the caller to compute with the TypeScript kernels, which carry the
// exact -inf / NaN conventions. Each row is computed by one task whatever the thread count, so
// results do not depend on it.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace lmd {

enum RowLossKind : int { kRowCe = 0, kRowFkl = 1, kRowRkl = 2, kRowKindCount };

struct RowLossPart {
  int kind;
  /** mixture weight of this part */
  double weight;
  /** temperature τ (1 for ce) */
  double tau;
  /** loss factor: τ² when tau_squared, else 1 (1 for ce) */
  double scale;
};

struct RowLossArgs {
  const float* z;         // [rows, V] student logits
  const float* t;         // [rows, V] teacher logits, null when no part needs them
  const int32_t* labels;  // [rows], -100 = ignore; null when no ce part
  const float* w;         // [rows] row weights; 0 = skipped row (zero gradient, zero losses)
  int64_t rows, V;
  const RowLossPart* parts;
  int nparts;
  float* grad;         // [rows, V] out: w_r · Σ_i weight_i · dl_i/dz
  double* part_loss;   // [rows, nparts] out: unweighted l_i(r) (0 on skipped and refused rows)
  uint8_t* refused;    // [rows] out: 1 = not computed (non-finite logit or label outside [0, V))
};

/** Runs all rows over the thread pool. Throws std::bad_alloc when scratch cannot be allocated. */
void row_losses(const KernelTable& kt, const RowLossArgs& a);

}  // namespace lmd
