// @crtools/kerndat: a raw system call with Buffers passed as pointers.
#include "kerndat.h"


namespace crtools::kerndat {
namespace {

using crtools::SysErr;

// syscall(nr, ...args) -> the return value (bigint) | { errno, syscall }
Napi::Value Syscall(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info.Length() > 7) {
    Napi::TypeError::New(env, "syscall(nr, ...up to 6 args)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  long nr = info[0].As<Napi::Number>().Int64Value();
  long a[6] = {0, 0, 0, 0, 0, 0};
  for (size_t i = 1; i < info.Length(); i++) a[i - 1] = (long)arg_u64(info[i]);
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r == -1) return SysErr(env, errno, "syscall");
  return Napi::BigInt::New(env, (int64_t)r);
}

Napi::Value AddressOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "addressOf(buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::BigInt::New(env, (uint64_t)(uintptr_t)info[0].As<Napi::Buffer<uint8_t>>().Data());
}

}  // namespace

void AddSyscall(Napi::Object exports) {
  Export(exports, "syscall", Syscall);
  Export(exports, "addressOf", AddressOf);
}

}  // namespace crtools::kerndat
