// Portable SIMD vocabulary for the per-ISA translation units: GCC/Clang vector extensions of width
// LMD_W floats, so the same source becomes AVX-512, AVX2 or SSE2/NEON code depending only on the
// flags of the file that includes it. Everything is in an anonymous namespace: each ISA unit gets
// its own copy with internal linkage, so the linker can never merge an AVX-512 body into the
// portable path (the classic ODR hazard of per-file ISA flags).
#pragma once
#include <cstdint>
#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifndef LMD_W
#error "define LMD_W (floats per vector) before including vec.h"
#endif

namespace lmd {
namespace {

constexpr int W = LMD_W;
typedef float vf __attribute__((vector_size(LMD_W * 4), __may_alias__));
typedef float vfu __attribute__((vector_size(LMD_W * 4), aligned(4), __may_alias__));
typedef int32_t vi __attribute__((vector_size(LMD_W * 4), __may_alias__));
// Half a float vector, and the doubles it widens to: exactly one register, so double-precision work
// is done in two halves (a double vector of LMD_W lanes would be twice the register width, which GCC
// lowers through the stack).
typedef float vfh __attribute__((vector_size(LMD_W * 2), __may_alias__));
typedef double vdh __attribute__((vector_size(LMD_W * 4), __may_alias__));

#define LMD_INLINE inline __attribute__((always_inline))

LMD_INLINE vf loadu(const float* p) { return *reinterpret_cast<const vfu*>(p); }
LMD_INLINE vf loada(const float* p) { return *reinterpret_cast<const vf*>(p); }
LMD_INLINE void storeu(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
// x − (+0) is x for every x (−0 included), so unlike 0 + x it folds away and stays a broadcast.
LMD_INLINE vf splat(float x) { return x - vf{}; }
LMD_INLINE vi splati(int32_t x) { return vi{} + x; }
LMD_INLINE vf as_f(vi v) { return reinterpret_cast<vf>(v); }
LMD_INLINE vi as_i(vf v) { return reinterpret_cast<vi>(v); }
LMD_INLINE vf select(vi mask, vf a, vf b) { return mask ? a : b; }

// Halves of a vector. Through memory GCC emits store/reload pairs (store-forwarding stalls), so the
// x86 units use the lane-extract instructions of the ISA they are compiled for.
#if LMD_W == 16 && defined(__AVX512F__)
LMD_INLINE vfh lower(vf v) { return _mm512_castps512_ps256(v); }
LMD_INLINE vfh upper(vf v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
LMD_INLINE vf join(vfh lo, vfh hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
#elif LMD_W == 8 && defined(__AVX__)
LMD_INLINE vfh lower(vf v) { return _mm256_castps256_ps128(v); }
LMD_INLINE vfh upper(vf v) { return _mm256_extractf128_ps(v, 1); }
LMD_INLINE vf join(vfh lo, vfh hi) { return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1); }
#else
LMD_INLINE vfh lower(vf v) {
  vfh h;
  __builtin_memcpy(&h, &v, sizeof h);
  return h;
}
LMD_INLINE vfh upper(vf v) {
  vfh h;
  __builtin_memcpy(&h, reinterpret_cast<const char*>(&v) + sizeof h, sizeof h);
  return h;
}
LMD_INLINE vf join(vfh lo, vfh hi) {
  vf v;
  __builtin_memcpy(&v, &lo, sizeof lo);
  __builtin_memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
  return v;
}
#endif
LMD_INLINE vdh widen(vfh v) { return __builtin_convertvector(v, vdh); }
LMD_INLINE vfh narrow(vdh v) { return __builtin_convertvector(v, vfh); }

/** Loads n < W floats, padding the rest with `pad`. */
LMD_INLINE vf load_partial(const float* p, int64_t n, float pad) {
  alignas(64) float t[LMD_W];
  for (int i = 0; i < W; ++i) t[i] = i < n ? p[i] : pad;
  return loada(t);
}
LMD_INLINE void store_partial(float* p, vf v, int64_t n) {
  alignas(64) float t[LMD_W];
  *reinterpret_cast<vf*>(t) = v;
  for (int64_t i = 0; i < n; ++i) p[i] = t[i];
}

template <typename T>
LMD_INLINE T min_of(T a, T b) { return a < b ? a : b; }

}  // namespace
}  // namespace lmd
