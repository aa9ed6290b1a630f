// Thin native launcher of @crtools/restorer: maps the restorer blob and the plan block at an
// address chosen by TypeScript, starts the root task with clone3(set_tid) and hands it straight
// to the blob. Everything else (choosing the hole, building the plan, deciding what errors
// mean) is in TypeScript. One file per step (see launcher.h); this one assembles the module.
#include "launcher.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  crtools::launcher::AddLaunch(exports);
  crtools::launcher::AddFinish(exports);
  crtools::launcher::AddShmem(exports);
  crtools::launcher::AddPages(exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(restorer, Init)
