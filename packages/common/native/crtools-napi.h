// Shared by the crtools addons: how a native call reports a failed system call to
// TypeScript (NativeSysError in @crtools/common: { errno, syscall }; TS builds the error),
// and how each addon's files add their functions to the module.
#ifndef CRTOOLS_NAPI_H
#define CRTOOLS_NAPI_H

#include <napi.h>

namespace crtools {

inline Napi::Object SysErr(Napi::Env env, int err, const char *syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", err);
  o.Set("syscall", syscall);
  return o;
}

// Add a native function to a module's exports under its JavaScript name.
inline void Export(Napi::Object exports, const char *name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(exports.Env(), fn, name));
}

}  // namespace crtools

#endif
