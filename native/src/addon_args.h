// Argument checking and conversion shared by the addon's binding files (addon.cc, addon_attention.cc):
// typed arrays are taken in place, and every malformed argument throws a TypeError / RangeError that
// names it, before any kernel runs.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "strided.h"

namespace lmd::args {

using lmd::Dims;

struct F32 {
  float* data;
  int64_t len;
};

[[noreturn]] inline void range_error(const Napi::Env& env, const std::string& msg) {
  throw Napi::RangeError::New(env, "lmdistill native: " + msg);
}
[[noreturn]] inline void type_error(const Napi::Env& env, const std::string& msg) {
  throw Napi::TypeError::New(env, "lmdistill native: " + msg);
}

inline F32 f32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(info.Env(), std::string(what) + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

inline Napi::Int32Array i32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(info.Env(), std::string(what) + " must be an Int32Array");
  return v.As<Napi::Int32Array>();
}

inline int64_t integer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) type_error(info.Env(), std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == std::floor(d)) || std::fabs(d) > 9.007199254740991e15) range_error(info.Env(), std::string(what) + " must be an integer");
  return static_cast<int64_t>(d);
}

inline double number(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) type_error(info.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

/** A Float32Array argument that may be null / undefined (data == nullptr then). */
inline F32 f32_or_null(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info[i].IsNull() || info[i].IsUndefined()) return {nullptr, 0};
  return f32(info, i, what);
}

inline bool boolean(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

inline int op_code(const Napi::CallbackInfo& info, size_t i, int count) {
  const int64_t op = integer(info, i, "op");
  if (op < 0 || op >= count) range_error(info.Env(), "unknown op code " + std::to_string(op));
  return static_cast<int>(op);
}

inline Dims dims(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const Napi::Value v = info[i];
  if (!v.IsArray()) type_error(info.Env(), std::string(what) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  const uint32_t n = a.Length();
  if (n > 64) range_error(info.Env(), std::string(what) + ": rank above 64");
  Dims out(n);
  for (uint32_t k = 0; k < n; ++k) {
    const Napi::Value e = a.Get(k);
    if (!e.IsNumber()) type_error(info.Env(), std::string(what) + " must be an array of integers");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (!(d == std::floor(d)) || std::fabs(d) > 9.007199254740991e15) range_error(info.Env(), std::string(what) + " must hold integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

inline int64_t numel(const Napi::Env& env, const Dims& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) range_error(env, "negative dimension");
    n *= s;
  }
  return n;
}

inline void need(const Napi::Env& env, bool ok, const char* msg) {
  if (!ok) range_error(env, msg);
}

/** Checks that `strides` over `shape` from `base` stay inside an array of length len. */
inline void check_view(const Napi::Env& env, const Dims& shape, const Dims& strides, int64_t base, int64_t len, const char* what) {
  if (strides.size() != shape.size()) range_error(env, std::string(what) + ": strides rank differs from shape rank");
  int64_t lo, hi;
  lmd::offset_range(shape, strides, base, &lo, &hi);
  if (lo < 0 || hi >= len) range_error(env, std::string(what) + ": view reaches outside its array");
}

}  // namespace lmd::args
