// Thin native layer of @crtools/kerndat: only what Node cannot do itself (raw system calls with
// Buffers passed as pointers, and the few probes that need a forked child). One file per probe
// or piece of machinery (see kerndat.h); this one only assembles the module.
#include "kerndat.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  crtools::kerndat::AddSyscall(exports);
  crtools::kerndat::AddPtraceProbe(exports);
  crtools::kerndat::AddForkProbe(exports);
  crtools::kerndat::AddClone3Probe(exports);
  crtools::kerndat::AddVdsoProbe(exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(kerndat, Init)
