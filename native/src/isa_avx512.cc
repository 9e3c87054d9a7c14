// Kernel table for AVX-512F/BW + FMA: 14×32 tile, 28 zmm accumulators.
// Compiled with its own flags in binding.gyp; never call into this file without checking the CPU.
#define LMD_W 16
#define LMD_MR 14
#define LMD_NV 2
#define LMD_MC 168
#define LMD_KC 256
#define LMD_NC 4096
#include "gemm_impl.h"
#include "math_impl.h"
#include "fused_impl.h"
#include "rowloss_impl.h"

namespace lmd {
extern const KernelTable kTableAvx512 = {"avx512", MR, NR, MC, KC, NC, gemm_tile, pack_b_block, gemm_packed_b, unary, unary_backward, softmax, softmax_backward,
    norm_forward, norm_backward, adamw, attn_probs, attn_ds, row_loss};
}  // namespace lmd
