// @crtools/sys: a file read whole into memory of its own, for node to take as JavaScript source
// or as bytes without copying them again: the bundled commands of @crtools/cli (load-bundle.ts)
// read ~1.5 MB of source and ~1 MB of V8 code cache at each start. Read by node:fs, each is read
// into a new buffer and the source copied once more into a string, every page of both faulted
// in one at a time (costly where faults go through a hypervisor: ~15 ms of each start on such a
// guest). Here the memory is populated in one call (MAP_POPULATE), the file read into it, and
// handed to node as it is: an external latin1 string (the source, kept for the process's life:
// V8 compiles lazily from it) or an external buffer (unmapped when collected). The copy makes
// the text immune to the file being rewritten meanwhile (a rebuild, an upgrade in place).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

// Node's external latin1 strings (Node 20.4+, still experimental in its headers): weak, so that
// the addon loads on a node without it (the text is then copied into a string of V8's own)
extern "C" napi_status __attribute__((weak)) node_api_create_external_string_latin1(napi_env env, char *str, size_t length, napi_finalize finalize_callback, void *finalize_hint, napi_value *result, bool *copied);

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// The file at path read whole into fresh anonymous memory; nullptr with *err and *failed set
void *ReadWhole(const std::string &path, size_t *len, int *err, const char **failed) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return *err = errno, *failed = "open", nullptr;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    *err = errno, *failed = "fstat";
    close(fd);
    return nullptr;
  }
  size_t size = (size_t)st.st_size, done = 0;
  // (one byte at least: mmap takes no empty mapping)
  void *p = mmap(nullptr, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    *err = errno, *failed = "mmap";
    close(fd);
    return nullptr;
  }
  while (done < size) {
    ssize_t n = pread(fd, (char *)p + done, size - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = n < 0 ? errno : EIO, *failed = "pread";  // (EIO: the file shrank meanwhile)
      munmap(p, size ? size : 1);
      close(fd);
      return nullptr;
    }
    done += (size_t)n;
  }
  close(fd);
  *len = size;
  return p;
}

// The file named by the call's first argument read whole (ReadWhole): an empty value, or the
// { errno, syscall } to return
Napi::Value ReadArg(const Napi::CallbackInfo &info, void **p, size_t *len) {
  int err = 0;
  const char *failed = "";
  *p = ReadWhole(info[0].As<Napi::String>().Utf8Value(), len, &err, &failed);
  return *p ? Napi::Value() : Napi::Value(SysErr(info.Env(), err, failed));
}

// sourceText(path) -> string | { errno, syscall }: the file's bytes as a latin1 string
Napi::Value SourceText(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  void *p = nullptr;
  size_t len = 0;
  Napi::Value e = ReadArg(info, &p, &len);
  if (!e.IsEmpty()) return e;
  napi_value s;
  bool copied = true;
  if (node_api_create_external_string_latin1 && node_api_create_external_string_latin1(env, (char *)p, len, nullptr, nullptr, &s, &copied) == napi_ok) {
    if (copied) munmap(p, len ? len : 1);
    return Napi::Value(env, s);
  }
  napi_status st = napi_create_string_latin1(env, (const char *)p, len, &s);
  munmap(p, len ? len : 1);
  if (st != napi_ok) return SysErr(env, ENOMEM, "napi_create_string_latin1");
  return Napi::Value(env, s);
}

// fileBytes(path) -> Buffer | { errno, syscall }: the file's bytes (the memory unmapped when the
// buffer is collected)
Napi::Value FileBytes(const Napi::CallbackInfo &info) {
  void *p = nullptr;
  size_t len = 0;
  Napi::Value e = ReadArg(info, &p, &len);
  if (!e.IsEmpty()) return e;
  return Napi::Buffer<uint8_t>::New(info.Env(), (uint8_t *)p, len, [](Napi::Env, uint8_t *data, size_t *size) {
    munmap(data, *size ? *size : 1);
    delete size;
  }, new size_t(len));
}

}  // namespace

void crtools::sys::AddSource(Napi::Object exports) {
  Export(exports, "sourceText", SourceText);
  Export(exports, "fileBytes", FileBytes);
}
