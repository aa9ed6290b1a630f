// @crtools/sys: what the CPU says about itself: cpuid and xgetbv. Neither can fail.
#include "sys.h"

#include <cpuid.h>

namespace {

using namespace crtools::sys;

// cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx]
Napi::Value Cpuid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid_count((unsigned)I32(info[0]), (unsigned)I32(info[1]), a, b, c, d);
  Napi::Array r = Napi::Array::New(env, 4);
  r.Set(0u, Num(env, a));
  r.Set(1u, Num(env, b));
  r.Set(2u, Num(env, c));
  r.Set(3u, Num(env, d));
  return r;
}

// xgetbv(index) -> the extended control register as a bigint; 0n when the OS has not enabled
// XSAVE (OSXSAVE clear), where the instruction would fault
Napi::Value Xgetbv(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid(1, a, b, c, d);
  if (!(c & (1u << 27))) return Napi::BigInt::New(env, (uint64_t)0);
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"((unsigned)I32(info[0])));
  return Napi::BigInt::New(env, ((uint64_t)hi << 32) | lo);
}

}  // namespace

void crtools::sys::AddCpu(Napi::Object exports) {
  Export(exports, "cpuid", Cpuid);
  Export(exports, "xgetbv", Xgetbv);
}
