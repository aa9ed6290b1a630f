// Thin native layer of @crtools/parasite: only what Node cannot do (ptrace requests, waitpid
// with a timeout, process_vm_readv/writev into caller Buffers, mapping a shared fd, and for
// tests starting a process that is not a child of Node). One file per concern (see
// parasite.h); this one only assembles the module. Generic system calls are @crtools/sys's.
#include "parasite.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  crtools::parasite::AddPtrace(exports);
  crtools::parasite::AddMemory(exports);
  crtools::parasite::AddTasks(exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(parasite, Init)
