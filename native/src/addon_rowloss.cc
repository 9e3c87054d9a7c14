// N-API binding of the row-loss kernel (rowloss.h), kept out of addon.cc to keep that file small:
//   rowLosses(z, t | null, labels | null, w, rows, V, parts, grad, partLoss, refused)
// parts is a Float64Array of [kind, weight, tau, scale] quadruples (kinds as in rowloss.h), partLoss
// a Float64Array [rows, nparts], refused a Uint8Array [rows]. Every size is checked before the call.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "dispatch.h"
#include "rowloss.h"

namespace {

[[noreturn]] void fail(const Napi::Env& env, const std::string& msg, bool type = false) {
  if (type) throw Napi::TypeError::New(env, "lmdistill native: rowLosses: " + msg);
  throw Napi::RangeError::New(env, "lmdistill native: rowLosses: " + msg);
}

template <typename T, napi_typedarray_type Kind>
T* typed(const Napi::CallbackInfo& info, size_t i, const char* what, const char* type, int64_t need, bool nullable = false) {
  const Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind)
    fail(info.Env(), std::string(what) + " must be a " + type + (nullable ? " or null" : ""), true);
  const Napi::TypedArray a = v.As<Napi::TypedArray>();
  if (static_cast<int64_t>(a.ElementLength()) < need)
    fail(info.Env(), std::string(what) + " has " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(need));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

int64_t count(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d == std::floor(d) && d < 9.0e15)) fail(info.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}

Napi::Value RowLosses(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int64_t rows = count(info, 4, "rows"), V = count(info, 5, "V"), n = rows * V;
  const Napi::Value pv = info[6];
  if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    fail(env, "parts must be a Float64Array", true);
  const Napi::Float64Array pa = pv.As<Napi::Float64Array>();
  if (pa.ElementLength() % 4 != 0) fail(env, "parts must hold [kind, weight, tau, scale] quadruples");
  std::vector<lmd::RowLossPart> parts(pa.ElementLength() / 4);
  bool need_t = false, need_y = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const double kind = pa[4 * i];
    parts[i] = {static_cast<int>(kind), pa[4 * i + 1], pa[4 * i + 2], pa[4 * i + 3]};
    if (!(kind >= 0 && kind < lmd::kRowKindCount && kind == std::floor(kind))) fail(env, "unknown part kind " + std::to_string(kind));
    if (!(parts[i].tau > 0 && std::isfinite(parts[i].tau))) fail(env, "tau must be positive and finite");
    if (!std::isfinite(parts[i].weight) || !std::isfinite(parts[i].scale)) fail(env, "weight and scale must be finite");
    (parts[i].kind == lmd::kRowCe ? need_y : need_t) = true;
  }
  lmd::RowLossArgs a{};
  a.z = typed<float, napi_float32_array>(info, 0, "z", "Float32Array", n);
  a.t = typed<float, napi_float32_array>(info, 1, "t", "Float32Array", n, true);
  a.labels = typed<int32_t, napi_int32_array>(info, 2, "labels", "Int32Array", rows, true);
  a.w = typed<float, napi_float32_array>(info, 3, "w", "Float32Array", rows);
  if (need_t && !a.t) fail(env, "a kl part needs teacher logits t", true);
  if (need_y && !a.labels) fail(env, "a ce part needs labels", true);
  a.rows = rows;
  a.V = V;
  a.parts = parts.data();
  a.nparts = static_cast<int>(parts.size());
  a.grad = typed<float, napi_float32_array>(info, 7, "grad", "Float32Array", n);
  a.part_loss = typed<double, napi_float64_array>(info, 8, "partLoss", "Float64Array", rows * a.nparts);
  a.refused = typed<uint8_t, napi_uint8_array>(info, 9, "refused", "Uint8Array", rows);
  try {
    lmd::row_losses(lmd::kernels(), a);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "lmdistill native: out of memory for row-loss scratch");
  }
  return env.Undefined();
}

}  // namespace

namespace lmd {
void register_row_losses(Napi::Env env, Napi::Object exports) {
  exports.Set("rowLosses", Napi::Function::New(env, RowLosses, "rowLosses"));
}
}  // namespace lmd
