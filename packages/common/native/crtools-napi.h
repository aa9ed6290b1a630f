// Shared by the crtools addons: how a native call reports a failed system call to
// TypeScript (NativeSysError in @crtools/common: { errno, syscall }; TS builds the error),
// how arguments are read, and how each addon's files add their functions to the module.
#ifndef CRTOOLS_NAPI_H
#define CRTOOLS_NAPI_H

#include <napi.h>

#include <cstdint>

namespace crtools {

inline Napi::Object SysErr(Napi::Env env, int err, const char *syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", err);
  o.Set("syscall", syscall);
  return o;
}

// Argument conversions (the TypeScript wrappers check types before the call): a number, or a
// 64-bit value given as a bigint or a number.
inline int I32(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

inline uint64_t U64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return (uint64_t)v.As<Napi::Number>().Int64Value();
}

inline Napi::Value Num(Napi::Env env, double d) { return Napi::Number::New(env, d); }

// Add a native function to a module's exports under its JavaScript name.
inline void Export(Napi::Object exports, const char *name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(exports.Env(), fn, name));
}

}  // namespace crtools

#endif
