// The @crtools/sys addon: system calls that the dump side and the restore side both need.
// One file per concern (see sys.h); this one only assembles the module.
#include "sys.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  crtools::sys::AddHandles(exports);
  crtools::sys::AddProcess(exports);
  crtools::sys::AddPipes(exports);
  crtools::sys::AddSockets(exports);
  crtools::sys::AddCpu(exports);
  crtools::sys::AddProbe(exports);
  crtools::sys::AddPackets(exports);
  crtools::sys::AddMemory(exports);
  crtools::sys::AddFiles(exports);
  crtools::sys::AddTty(exports);
  crtools::sys::AddTcp(exports);
  crtools::sys::AddSysvipc(exports);
  crtools::sys::AddNetns(exports);
  crtools::sys::AddMounts(exports);
  crtools::sys::AddTun(exports);
  crtools::sys::AddSource(exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(sys, Init)
