// @crtools/sys: kernel file handles (open_by_handle_at).
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

namespace {

using crtools::SysErr;

// pathOfHandle(mountDir, type, handle: Buffer) -> path | { errno, syscall }: the name, as this
// process sees it, of the file a kernel file handle (name_to_handle_at) designates on the
// filesystem mounted at mountDir (open_by_handle_at needs CAP_DAC_READ_SEARCH)
Napi::Value PathOfHandle(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "pathOfHandle(mountDir, type, handle)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  int type = info[1].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> h = info[2].As<Napi::Buffer<uint8_t>>();
  if (h.Length() > 128) return SysErr(env, EINVAL, "open_by_handle_at");
  int mfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mfd < 0) return SysErr(env, errno, "open");
  struct {
    unsigned int bytes;
    int type;
    unsigned char handle[128];
  } fh;
  fh.bytes = (unsigned int)h.Length();
  fh.type = type;
  memcpy(fh.handle, h.Data(), h.Length());
  int fd = (int)syscall(SYS_open_by_handle_at, mfd, &fh, O_PATH | O_CLOEXEC);
  int e = errno;
  close(mfd);
  if (fd < 0) return SysErr(env, e, "open_by_handle_at");
  char link[64], buf[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  e = errno;
  close(fd);
  if (n < 0) return SysErr(env, e, "readlink");
  return Napi::String::New(env, buf, (size_t)n);
}

}  // namespace

void crtools::sys::AddHandles(Napi::Object exports) { Export(exports, "pathOfHandle", PathOfHandle); }
