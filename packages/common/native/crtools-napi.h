// Shared by the crtools addons: how a native call reports a failed system call to
// TypeScript (NativeSysError in @crtools/common: { errno, syscall }; TS builds the error).
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

}  // namespace crtools

#endif
