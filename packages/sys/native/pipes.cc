// @crtools/sys: pipes and descriptors: a pipe with a chosen capacity, splice until done (or
// while a writer fills the pipe), a non-consuming look at a pipe's buffer (tee), close.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// peekPipe(fd) -> { size, data } | { errno, syscall }: the bytes buffered in the pipe behind fd,
// copied with tee(2) into a private pipe (nothing is consumed), and the pipe's capacity
Napi::Value PeekPipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  int size = fcntl(fd, F_GETPIPE_SZ);
  if (size < 0) return SysErr(env, errno, "fcntl");
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return SysErr(env, errno, "pipe2");
  auto fail = [&](const char *syscall) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return SysErr(env, e, syscall);
  };
  if (fcntl(p[1], F_SETPIPE_SZ, size) < 0) return fail("fcntl");
  ssize_t n = tee(fd, p[1], (size_t)size, SPLICE_F_NONBLOCK);
  if (n < 0 && errno == EAGAIN) n = 0;  // empty pipe
  if (n < 0) return fail("tee");
  auto data = Napi::Buffer<uint8_t>::New(env, (size_t)n);
  size_t got = 0;
  while (got < (size_t)n) {
    ssize_t r = read(p[0], data.Data() + got, (size_t)n - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(p[0]);
  close(p[1]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", Num(env, size));
  o.Set("data", data);
  return o;
}

// pipe(size) -> [readFd, writeFd, capacity] | { errno, syscall }: O_CLOEXEC, the capacity set
// to size when the kernel allows it
Napi::Value Pipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return SysErr(env, errno, "pipe2");
  int size = I32(info[0]);
  if (size > 0) fcntl(p[1], F_SETPIPE_SZ, size);
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(0u, Num(env, p[0]));
  r.Set(1u, Num(env, p[1]));
  r.Set(2u, Num(env, fcntl(p[1], F_GETPIPE_SZ)));
  return r;
}

// spliceAll(fdIn, fdOut, len) -> bytes moved (all of len unless the pipe ran dry) | { errno, syscall }
Napi::Value SpliceAll(const Napi::CallbackInfo &info) {
  int in = I32(info[0]), out = I32(info[1]);
  size_t len = (size_t)U64(info[2]), done = 0;
  while (done < len) {
    ssize_t n = splice(in, nullptr, out, nullptr, len - done, SPLICE_F_MOVE);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysErr(info.Env(), errno, "splice");
    }
    if (n == 0) break;
    done += (size_t)n;
  }
  return Num(info.Env(), (double)done);
}

// spliceSome(fdIn, fdOut, len, waitMs) -> { moved, eof } | { errno, syscall }: splice(2) from the
// pipe fdIn into fdOut while bytes come, up to len; an empty pipe (or a full fdOut) is waited for
// (poll) at most waitMs at a time: moved < len then means nothing moved for that long (eof: the
// pipe's last writer is gone). For a pipe another process fills as we empty it.
constexpr size_t kSomeChunk = 256 << 10;

Napi::Value SpliceSome(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int in = I32(info[0]), out = I32(info[1]);
  size_t len = (size_t)U64(info[2]), done = 0;
  int waitMs = I32(info[3]);
  bool eof = false;
  while (done < len) {
    // a quarter of a 1 MiB pipe at a time: the writer refills what each call has emptied while
    // the next one copies (a whole pipe-full per call makes the two take turns: 1.0-1.4 us a page
    // into tmpfs here against 0.55-0.9)
    ssize_t n = splice(in, nullptr, out, nullptr, std::min(len - done, kSomeChunk), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return SysErr(env, errno, "splice");
    // an empty pipe, or a full one to write to (fdOut a pipe nobody empties fast enough): the
    // one that holds us up is waited for, not spun on
    struct pollfd p = {in, POLLIN, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) p = {out, POLLOUT, 0};
    int r = poll(&p, 1, waitMs);
    if (r < 0 && errno != EINTR) return SysErr(env, errno, "poll");
    if (r == 0) break;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("moved", Num(env, (double)done));
  o.Set("eof", Napi::Boolean::New(env, eof));
  return o;
}

// closeFd(fd) -> 0 | { errno, syscall }
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  if (close(I32(info[0])) < 0) return SysErr(info.Env(), errno, "close");
  return Num(info.Env(), 0);
}

// setPipeSize(fd, size) -> capacity | { errno, syscall }: F_SETPIPE_SZ, then the capacity it got
Napi::Value SetPipeSize(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  if (fcntl(fd, F_SETPIPE_SZ, I32(info[1])) < 0) return SysErr(env, errno, "fcntl");
  int size = fcntl(fd, F_GETPIPE_SZ);
  if (size < 0) return SysErr(env, errno, "fcntl");
  return Num(env, size);
}

}  // namespace

void crtools::sys::AddPipes(Napi::Object exports) {
  Export(exports, "peekPipe", PeekPipe);
  Export(exports, "pipe", Pipe);
  Export(exports, "setPipeSize", SetPipeSize);
  Export(exports, "spliceAll", SpliceAll);
  Export(exports, "spliceSome", SpliceSome);
  Export(exports, "closeFd", CloseFd);
}
