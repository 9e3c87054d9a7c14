// N-API surface of the addon: argument checking and conversion, then a call into the kernels.
// Typed arrays are used in place (no copies). Every call validates that all offsets it will touch
// lie inside the arrays it was given, so a wrong shape from JavaScript throws a RangeError instead of
// corrupting memory. Op names are mapped to the integer codes of kernels.h / strided.h in native.ts.
#include <napi.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "addon_args.h"
#include "dispatch.h"
#include "fused.h"
#include "gemm.h"
#include "pool.h"
#include "strided.h"

namespace lmd {
void register_row_losses(Napi::Env env, Napi::Object exports);  // addon_rowloss.cc
void register_attention(Napi::Env env, Napi::Object exports);   // addon_attention.cc
}  // namespace lmd

namespace {

using lmd::Dims;

using namespace lmd::args;

// ---- elementwise ---------------------------------------------------------------------------

// Transcendental ops are worth the pool's wake-up cost from fewer elements than cheap ones.
int64_t unary_threshold(int op) {
  return (op == lmd::kNeg || op == lmd::kRelu || op == lmd::kAbs) ? (1 << 18) : (1 << 15);
}

using lmd::Chunks;

Napi::Value Unary(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int op = op_code(info, 0, lmd::kUnaryCount);
  const F32 x = f32(info, 1, "x"), out = f32(info, 2, "out");
  need(env, out.len >= x.len, "unary: out is shorter than x");
  const lmd::KernelTable& kt = lmd::kernels();
  if (x.len < unary_threshold(op)) {
    kt.unary(op, x.data, out.data, x.len);
    return env.Undefined();
  }
  struct Ctx { const lmd::KernelTable* kt; int op; const float* x; float* out; Chunks ch; } ctx{&kt, op, x.data, out.data, {x.len, lmd::balanced_parts(x.len, 1 << 14)}};
  lmd::pool_run(ctx.ch.parts, [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t b = c.ch.begin(t), e = c.ch.end(t);
    c.kt->unary(c.op, c.x + b, c.out + b, e - b);
  }, &ctx);
  return env.Undefined();
}

// Σ x² in float64 over fixed 32 Ki-element parts reduced in order: the same value on any thread count.
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  const F32 x = f32(info, 0, "x");
  constexpr int64_t kPart = 1 << 15;
  const int64_t parts = std::max<int64_t>(1, (x.len + kPart - 1) / kPart);
  std::vector<double> acc(static_cast<size_t>(parts), 0.0);
  struct Ctx { const float* x; int64_t n; double* acc; } ctx{x.data, x.len, acc.data()};
  const lmd::TaskFn fn = [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t b = t * kPart, e = std::min(c.n, b + kPart);
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = b;
    for (; i + 4 <= e; i += 4) {
      const double a0 = c.x[i], a1 = c.x[i + 1], a2 = c.x[i + 2], a3 = c.x[i + 3];
      s0 += a0 * a0; s1 += a1 * a1; s2 += a2 * a2; s3 += a3 * a3;
    }
    for (; i < e; ++i) s0 += static_cast<double>(c.x[i]) * c.x[i];
    c.acc[t] = (s0 + s1) + (s2 + s3);
  };
  if (parts >= 4) lmd::pool_run(static_cast<long>(parts), fn, &ctx);
  else for (long t = 0; t < parts; ++t) fn(&ctx, t);
  double s = 0;
  for (const double v : acc) s += v;
  return Napi::Number::New(info.Env(), s);
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int op = op_code(info, 0, lmd::kUnaryCount);
  const F32 x = f32(info, 1, "x"), y = f32(info, 2, "y"), gy = f32(info, 3, "gy"), gx = f32(info, 4, "gx");
  need(env, y.len >= x.len && gy.len >= x.len && gx.len >= x.len, "unaryBackward: y, gy or gx is shorter than x");
  const lmd::KernelTable& kt = lmd::kernels();
  if (x.len < unary_threshold(op)) {
    kt.unary_backward(op, x.data, y.data, gy.data, gx.data, x.len);
    return env.Undefined();
  }
  struct Ctx { const lmd::KernelTable* kt; int op; const float *x, *y, *gy; float* gx; Chunks ch; } ctx{
      &kt, op, x.data, y.data, gy.data, gx.data, {x.len, lmd::balanced_parts(x.len, 1 << 14)}};
  lmd::pool_run(ctx.ch.parts, [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t b = c.ch.begin(t), e = c.ch.end(t);
    c.kt->unary_backward(c.op, c.x + b, c.y + b, c.gy + b, c.gx + b, e - b);
  }, &ctx);
  return env.Undefined();
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int op = op_code(info, 0, lmd::kBinaryCount);
  const F32 a = f32(info, 1, "a"), b = f32(info, 3, "b"), out = f32(info, 5, "out");
  const Dims as = dims(info, 2, "aStrides"), bs = dims(info, 4, "bStrides"), shape = dims(info, 6, "shape");
  const int64_t n = numel(env, shape);
  if (n == 0) return env.Undefined();
  check_view(env, shape, as, 0, a.len, "binary a");
  check_view(env, shape, bs, 0, b.len, "binary b");
  need(env, out.len >= n, "binary: out is smaller than the shape");
  lmd::binary(op, a.data, as, b.data, bs, out.data, shape);
  return env.Undefined();
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 c = f32(info, 0, "cond"), a = f32(info, 2, "a"), b = f32(info, 4, "b"), out = f32(info, 6, "out");
  const Dims cs = dims(info, 1, "cStrides"), as = dims(info, 3, "aStrides"), bs = dims(info, 5, "bStrides");
  const Dims shape = dims(info, 7, "shape");
  const int64_t n = numel(env, shape);
  if (n == 0) return env.Undefined();
  check_view(env, shape, cs, 0, c.len, "where cond");
  check_view(env, shape, as, 0, a.len, "where a");
  check_view(env, shape, bs, 0, b.len, "where b");
  need(env, out.len >= n, "where: out is smaller than the shape");
  lmd::where(c.data, cs, a.data, as, b.data, bs, out.data, shape);
  return env.Undefined();
}

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int op = op_code(info, 0, 2);
  const F32 x = f32(info, 1, "x"), out = f32(info, 3, "out");
  const Dims shape = dims(info, 2, "shape"), os = dims(info, 4, "outStrides");
  const int64_t n = numel(env, shape);
  need(env, x.len >= n, "reduce: x is smaller than the shape");
  if (n > 0) check_view(env, shape, os, 0, out.len, "reduce out");
  else need(env, os.size() == shape.size(), "reduce: outStrides rank differs from shape rank");
  lmd::reduce(op, x.data, shape, out.data, out.len, os);
  return env.Undefined();
}

Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 x = f32(info, 0, "x"), out = f32(info, 3, "out");
  const int64_t offset = integer(info, 1, "offset");
  const Dims strides = dims(info, 2, "strides"), shape = dims(info, 4, "shape");
  const int64_t n = numel(env, shape);
  if (n == 0) return env.Undefined();
  check_view(env, shape, strides, offset, x.len, "copyStrided x");
  need(env, out.len >= n, "copyStrided: out is smaller than the shape");
  lmd::copy_strided(x.data, offset, strides, out.data, shape);
  return env.Undefined();
}

// ---- matmul, softmax, gather -----------------------------------------------------------------

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 a = f32(info, 0, "a"), b = f32(info, 1, "b"), c = f32(info, 2, "c");
  lmd::GemmArgs g{a.data, b.data, c.data, integer(info, 3, "batch"), integer(info, 4, "m"), integer(info, 5, "n"),
                  integer(info, 6, "k"), boolean(info, 7), boolean(info, 8), integer(info, 9, "aBatchStride"),
                  integer(info, 10, "bBatchStride"), boolean(info, 11),
                  boolean(info, 12)};  // bf16 (optional: undefined → false, i.e. fp32)
  const F32 bias = f32_or_null(info, 13, "bias");
  g.bias = bias.data;
  need(env, g.batch >= 0 && g.m >= 0 && g.n >= 0 && g.k >= 0, "matmul: negative size");
  need(env, g.a_batch_stride >= 0 && g.b_batch_stride >= 0, "matmul: negative batch stride");
  if (g.batch == 0 || g.m == 0 || g.n == 0) return env.Undefined();
  need(env, c.len >= g.batch * g.m * g.n, "matmul: c is smaller than batch·m·n");
  need(env, bias.data == nullptr || bias.len >= g.n, "matmul: bias is shorter than n");
  if (g.k > 0) {
    need(env, a.len >= (g.batch - 1) * g.a_batch_stride + g.m * g.k, "matmul: a is smaller than its batch layout");
    need(env, b.len >= (g.batch - 1) * g.b_batch_stride + g.k * g.n, "matmul: b is smaller than its batch layout");
  }
  try {
    lmd::gemm(lmd::kernels(), g);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "lmdistill native: out of memory for GEMM packing buffers");
  }
  return env.Undefined();
}

template <bool Backward>
Napi::Value SoftmaxImpl(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  constexpr size_t nArrays = Backward ? 3 : 2;
  const F32 p0 = f32(info, 0, Backward ? "y" : "x"), p1 = f32(info, 1, Backward ? "gy" : "out");
  const F32 p2 = Backward ? f32(info, 2, "gx") : p1;
  const int64_t rows = integer(info, nArrays, "rows"), cols = integer(info, nArrays + 1, "cols");
  const bool log = boolean(info, nArrays + 2);
  need(env, rows >= 0 && cols >= 0, "softmax: negative size");
  const int64_t n = rows * cols;
  need(env, p0.len >= n && p1.len >= n && p2.len >= n, "softmax: an array is smaller than rows·cols");
  if (n == 0) return env.Undefined();
  const lmd::KernelTable& kt = lmd::kernels();
  struct Ctx { const lmd::KernelTable* kt; const float *a, *b; float* out; int64_t rows, cols, parts; bool log; } ctx{
      &kt, p0.data, p1.data, Backward ? p2.data : p1.data, rows, cols, 1, log};
  if (n >= (1 << 15) && rows >= 2) ctx.parts = std::min<int64_t>(rows, lmd::pool_threads() * 4);
  lmd::pool_run(static_cast<long>(ctx.parts), [](void* p, long t) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t r0 = c.rows * t / c.parts, r1 = c.rows * (t + 1) / c.parts;
    if (Backward) c.kt->softmax_backward(c.a, c.b, c.out, r0, r1, c.cols, c.log);
    else c.kt->softmax(c.a, c.out, r0, r1, c.cols, c.log);
  }, &ctx);
  return env.Undefined();
}

/** Validates ids against a table of `rows` rows. */
void check_ids(const Napi::Env& env, const Napi::Int32Array& ids, int64_t rows, const char* what) {
  const int32_t* p = ids.Data();
  for (size_t i = 0; i < ids.ElementLength(); ++i)
    if (p[i] < 0 || p[i] >= rows)
      range_error(env, std::string(what) + ": id " + std::to_string(p[i]) + " at " + std::to_string(i) +
                           " is outside [0, " + std::to_string(rows) + ")");
}

Napi::Value Gather(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 table = f32(info, 0, "table"), out = f32(info, 3, "out");
  const Napi::Int32Array ids = i32(info, 1, "ids");
  const int64_t d = integer(info, 2, "d"), n = static_cast<int64_t>(ids.ElementLength());
  need(env, d >= 0, "gather: negative row width");
  if (d == 0 || n == 0) return env.Undefined();
  need(env, out.len >= n * d, "gather: out is smaller than ids·d");
  check_ids(env, ids, table.len / d, "gather");
  lmd::gather(table.data, ids.Data(), n, d, out.data);
  return env.Undefined();
}

Napi::Value ScatterAdd(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 src = f32(info, 0, "src"), out = f32(info, 3, "out");
  const Napi::Int32Array ids = i32(info, 1, "ids");
  const int64_t d = integer(info, 2, "d"), n = static_cast<int64_t>(ids.ElementLength());
  need(env, d >= 0, "scatterAdd: negative row width");
  if (d == 0 || n == 0) return env.Undefined();
  need(env, src.len >= n * d, "scatterAdd: src is smaller than ids·d");
  check_ids(env, ids, out.len / d, "scatterAdd");
  lmd::scatter_add(src.data, ids.Data(), n, d, out.data);
  return env.Undefined();
}

// ---- fused kernels: norms, AdamW, attention ----------------------------------------------------

Napi::Value NormForward(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 x = f32(info, 0, "x"), w = f32(info, 1, "w"), b = f32_or_null(info, 2, "b"), out = f32(info, 3, "out");
  const F32 mean = f32(info, 4, "mean"), rstd = f32(info, 5, "rstd");
  const int64_t rows = integer(info, 6, "rows"), cols = integer(info, 7, "cols");
  const double eps = number(info, 8, "eps");
  const bool rms = boolean(info, 9);
  need(env, rows >= 0 && cols >= 0, "normForward: negative size");
  if (rows == 0) return env.Undefined();
  need(env, x.len >= rows * cols && out.len >= rows * cols, "normForward: x or out is smaller than rows·cols");
  need(env, w.len >= cols && (b.data == nullptr || b.len >= cols), "normForward: w or b is shorter than cols");
  need(env, mean.len >= rows && rstd.len >= rows, "normForward: mean or rstd is shorter than rows");
  lmd::norm_forward(lmd::kernels(), x.data, w.data, b.data, out.data, mean.data, rstd.data, rows, cols, eps, rms);
  return env.Undefined();
}

Napi::Value NormBackward(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 x = f32(info, 0, "x"), w = f32(info, 1, "w"), mean = f32(info, 2, "mean"), rstd = f32(info, 3, "rstd");
  const F32 gy = f32(info, 4, "gy"), gx = f32(info, 5, "gx"), gw = f32(info, 6, "gw"), gb = f32_or_null(info, 7, "gb");
  const int64_t rows = integer(info, 8, "rows"), cols = integer(info, 9, "cols");
  const bool rms = boolean(info, 10);
  need(env, rows >= 0 && cols >= 0, "normBackward: negative size");
  if (rows == 0) return env.Undefined();
  const int64_t n = rows * cols;
  need(env, x.len >= n && gy.len >= n && gx.len >= n, "normBackward: x, gy or gx is smaller than rows·cols");
  need(env, w.len >= cols && gw.len >= cols && (gb.data == nullptr || gb.len >= cols), "normBackward: w, gw or gb is shorter than cols");
  need(env, mean.len >= rows && rstd.len >= rows, "normBackward: mean or rstd is shorter than rows");
  try {
    lmd::norm_backward(lmd::kernels(), x.data, w.data, mean.data, rstd.data, gy.data, gx.data, gw.data, gb.data, rows, cols, rms);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "lmdistill native: out of memory in normBackward");
  }
  return env.Undefined();
}

Napi::Value AdamW(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 w = f32(info, 0, "w"), g = f32_or_null(info, 1, "g"), m = f32(info, 2, "m"), v = f32(info, 3, "v");
  const lmd::AdamParams a{number(info, 4, "beta1"), number(info, 5, "beta2"), number(info, 6, "eps"),
                          number(info, 7, "decay"), number(info, 8, "stepSize"), number(info, 9, "sqrtBc2")};
  need(env, m.len >= w.len && v.len >= w.len && (g.data == nullptr || g.len >= w.len), "adamw: g, m or v is shorter than w");
  if (w.len == 0) return env.Undefined();
  lmd::adamw(lmd::kernels(), w.data, g.data, m.data, v.data, w.len, a);
  return env.Undefined();
}

// ---- configuration ---------------------------------------------------------------------------

// glibc's malloc by default serves every block above ~128 KiB–32 MiB with its own mmap and unmaps it on
// free, and trims the heap top; a training step that allocates its activations anew each step then
// touches fresh (zeroed-by-the-kernel) pages every step — ~20 µs per 4 KiB page in a VM. Telling malloc
// never to mmap and never to trim makes freed blocks reusable (what GLIBC_TUNABLES
// glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=… does, set from inside the process).
// The price: memory freed by the process is kept for reuse rather than returned to the OS.
bool g_malloc_retain = false;

Napi::Value RetainFreedMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  if (!g_malloc_retain) {
    const bool ok = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
    g_malloc_retain = ok;
  }
  return Napi::Boolean::New(info.Env(), g_malloc_retain);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", lmd::kernels().isa);
  o.Set("threads", lmd::pool_threads());
  const auto isas = lmd::supported_isas();
  Napi::Array arr = Napi::Array::New(env, isas.size());
  for (size_t i = 0; i < isas.size(); ++i) arr.Set(static_cast<uint32_t>(i), isas[i]);
  o.Set("supportedIsas", arr);
  o.Set("mallocRetain", g_malloc_retain);
  o.Set("spinUs", lmd::pool_spin_us());
  return o;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) type_error(info.Env(), "setIsa expects a string");
  return Napi::Boolean::New(info.Env(), lmd::set_isa(info[0].As<Napi::String>().Utf8Value()));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  lmd::pool_resize(static_cast<int>(integer(info, 0, "threads")));
  return Napi::Number::New(info.Env(), lmd::pool_threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward, "unaryBackward"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("where", Napi::Function::New(env, Where, "where"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("copyStrided", Napi::Function::New(env, CopyStrided, "copyStrided"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("softmax", Napi::Function::New(env, SoftmaxImpl<false>, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxImpl<true>, "softmaxBackward"));
  exports.Set("gather", Napi::Function::New(env, Gather, "gather"));
  exports.Set("scatterAdd", Napi::Function::New(env, ScatterAdd, "scatterAdd"));
  exports.Set("normForward", Napi::Function::New(env, NormForward, "normForward"));
  exports.Set("normBackward", Napi::Function::New(env, NormBackward, "normBackward"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
  lmd::register_attention(env, exports);
  lmd::register_row_losses(env, exports);
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("retainFreedMemory", Napi::Function::New(env, RetainFreedMemory, "retainFreedMemory"));
  return exports;
}

}  // namespace

NODE_API_MODULE(lmdistill_native, Init)
