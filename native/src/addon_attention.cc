// N-API binding of the fused attention kernels (fused.h), with their head-layout argument: dims, the
// optional [offset, sB, sH, sT] × (q, k, v, out) layout, and a bounds check of every layout against its
// array before the kernel runs.
#include <napi.h>

#include <cmath>
#include <new>

#include "addon_args.h"
#include "dispatch.h"
#include "fused.h"

namespace {

using namespace lmd::args;

lmd::AttnDims attn_dims(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Env env = info.Env();
  lmd::AttnDims d{integer(info, i, "B"), integer(info, i + 1, "H"), integer(info, i + 2, "Hkv"), integer(info, i + 3, "T"),
                  integer(info, i + 4, "S"), integer(info, i + 5, "D"), boolean(info, i + 6),
                  static_cast<float>(number(info, i + 7, "scale")), {}, {}, {}, {}};
  need(env, d.B >= 0 && d.H >= 0 && d.Hkv >= 0 && d.T >= 0 && d.S >= 0 && d.D >= 0, "attention: negative size");
  need(env, d.H == 0 || (d.Hkv > 0 && d.H % d.Hkv == 0), "attention: H must be a multiple of Hkv");
  need(env, d.Hkv <= d.H, "attention: Hkv exceeds H");
  d.q = d.o = lmd::dense_layout(d.H, d.T, d.D);
  d.k = d.v = lmd::dense_layout(d.Hkv, d.S, d.D);
  const Napi::Value lv = info[i + 8];
  if (!lv.IsUndefined() && !lv.IsNull()) {
    // [off, sB, sH, sT] × (q, k, v, out)
    if (!lv.IsArray() || lv.As<Napi::Array>().Length() != 16) type_error(env, "attention layout must be an array of 16 integers");
    const Napi::Array a = lv.As<Napi::Array>();
    int64_t x[16];
    for (uint32_t j = 0; j < 16; ++j) {
      const Napi::Value e = a.Get(j);
      const double v = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
      need(env, v >= 0 && v == std::floor(v) && v < 9.0e15, "attention layout entries must be non-negative integers");
      x[j] = static_cast<int64_t>(v);
    }
    d.q = {x[0], x[1], x[2], x[3]};
    d.k = {x[4], x[5], x[6], x[7]};
    d.v = {x[8], x[9], x[10], x[11]};
    d.o = {x[12], x[13], x[14], x[15]};
  }
  return d;
}

/** One past the last element a layout addresses for `heads` heads of `rows` rows (0 when empty). */
int64_t layout_end(const lmd::HeadLayout& L, int64_t B, int64_t heads, int64_t rows, int64_t D) {
  if (B == 0 || heads == 0 || rows == 0 || D == 0) return 0;
  return L.off + (B - 1) * L.sb + (heads - 1) * L.sh + (rows - 1) * L.st + D;
}

struct AttnExtents {
  int64_t q, k, v, o, lse;
};
AttnExtents attn_extents(const lmd::AttnDims& d) {
  return {layout_end(d.q, d.B, d.H, d.T, d.D), layout_end(d.k, d.B, d.Hkv, d.S, d.D), layout_end(d.v, d.B, d.Hkv, d.S, d.D),
          layout_end(d.o, d.B, d.H, d.T, d.D), d.B * d.H * d.T};
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 q = f32(info, 0, "q"), k = f32(info, 1, "k"), v = f32(info, 2, "v"), out = f32(info, 3, "out"), lse = f32(info, 4, "lse");
  const lmd::AttnDims d = attn_dims(info, 5);
  const AttnExtents e = attn_extents(d);
  need(env, q.len >= e.q && out.len >= e.o, "attention: q or out is smaller than its layout (B·H·T·D when dense)");
  need(env, k.len >= e.k && v.len >= e.v, "attention: k or v is smaller than its layout (B·Hkv·S·D when dense)");
  need(env, lse.len >= e.lse, "attention: lse is smaller than B·H·T");
  try {
    lmd::attention_forward(lmd::kernels(), q.data, k.data, v.data, out.data, lse.data, d);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "lmdistill native: out of memory for attention scratch");
  }
  return env.Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const F32 q = f32(info, 0, "q"), k = f32(info, 1, "k"), v = f32(info, 2, "v"), out = f32(info, 3, "out"), lse = f32(info, 4, "lse");
  const F32 go = f32(info, 5, "gOut"), gq = f32(info, 6, "gq"), gk = f32(info, 7, "gk"), gv = f32(info, 8, "gv");
  const lmd::AttnDims d = attn_dims(info, 9);
  const AttnExtents e = attn_extents(d);
  need(env, q.len >= e.q && gq.len >= e.q && out.len >= e.o && go.len >= e.o, "attentionBackward: q, gq, out or gOut is smaller than its layout (B·H·T·D when dense)");
  need(env, k.len >= e.k && gk.len >= e.k && v.len >= e.v && gv.len >= e.v, "attentionBackward: k, gk, v or gv is smaller than its layout (B·Hkv·S·D when dense)");
  need(env, lse.len >= e.lse, "attentionBackward: lse is smaller than B·H·T");
  try {
    lmd::attention_backward(lmd::kernels(), q.data, k.data, v.data, out.data, lse.data, go.data, gq.data, gk.data, gv.data, d);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "lmdistill native: out of memory for attention scratch");
  }
  return env.Undefined();
}

}  // namespace

namespace lmd {
void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
}
}  // namespace lmd
