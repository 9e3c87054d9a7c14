// Kernel table for AVX2 + FMA (-mavx2 -mfma): 6×16 tile, 12 ymm accumulators. Cache blocks: a deep k
// block (KC 1024: C is read and written once per 1024 of k, the micro-kernel's B panel streams from
// L2) with a short row block (MC 36: the packed A block, 144 KiB, stays in L2); the packed B block
// (KC×NC ≤ 8 MiB) in L3. Measured on Zen 3 with the calls of both settings interleaved in one process:
// 5–13 % faster than BLIS's 144×256 on kd-small's GEMM shapes and on 1024³, equal where k ≤ 256.
// Compiled with its own flags in binding.gyp; never call into this file without checking the CPU.
#define LMD_W 8
#define LMD_MR 6
#define LMD_NV 2
#define LMD_MC 36
#define LMD_KC 1024
#define LMD_NC 2048
#include "gemm_impl.h"
#include "math_impl.h"
#include "fused_impl.h"
#include "rowloss_impl.h"

namespace lmd {
extern const KernelTable kTableAvx2 = {"avx2", MR, NR, MC, KC, NC, gemm_tile, pack_b_block, gemm_packed_b, unary, unary_backward, softmax, softmax_backward,
    norm_forward, norm_backward, adamw, attn_probs, attn_ds, row_loss};
}  // namespace lmd
