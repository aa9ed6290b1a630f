// @crtools/sys: files beyond what node:fs offers: where a file's data lies (lseek SEEK_DATA /
// SEEK_HOLE), setting its times to the nanosecond (futimens), making a FIFO (mknod), a symbolic
// link's own contents and times (readlinkat, utimensat).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace {

using namespace crtools::sys;
using crtools::SysErr;

// seekFile(fd, offset, whence) -> the offset lseek(2) returns (a bigint) | { errno, syscall }
// (SEEK_DATA at or past the last data: ENXIO)
Napi::Value SeekFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  off_t r = lseek(I32(info[0]), (off_t)U64(info[1]), I32(info[2]));
  if (r < 0) return SysErr(env, errno, "lseek");
  return Napi::BigInt::New(env, (int64_t)r);
}

// setFileTimes(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec) -> 0 | { errno, syscall }: futimens(2)
Napi::Value SetFileTimes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)U64(info[1]);
  ts[0].tv_nsec = (long)U64(info[2]);
  ts[1].tv_sec = (time_t)U64(info[3]);
  ts[1].tv_nsec = (long)U64(info[4]);
  if (futimens(I32(info[0]), ts) < 0) return SysErr(env, errno, "futimens");
  return Num(env, 0);
}

// makeFifo(path, mode) -> 0 | { errno, syscall }: mkfifo(3) (mknod S_IFIFO), mode as given
// (the umask applies: the caller sets the final mode with fchmod)
Napi::Value MakeFifo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (mknod(path.c_str(), S_IFIFO | (I32(info[1]) & 07777), 0) < 0) return SysErr(env, errno, "mknod");
  return Num(env, 0);
}

// makeDeviceNode(path, mode, rdev) -> 0 | { errno, syscall }: mknod(2) of a character or block
// device (mode's type bits say which, its permission bits less the umask), rdev as stat(2) gives it
Napi::Value MakeDeviceNode(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = (mode_t)I32(info[1]);
  dev_t rdev = (dev_t)info[2].As<Napi::Number>().Int64Value();
  if (mknod(path.c_str(), mode, rdev) < 0) return SysErr(env, errno, "mknod");
  return Num(env, 0);
}

// readLinkAt(dirfd, path) -> the link's contents (a Buffer) | { errno, syscall }: readlinkat(2);
// with path "" and a descriptor opened O_PATH on a symbolic link, that link's own contents
Napi::Value ReadLinkAt(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  std::string buf(4096, '\0');
  ssize_t n = readlinkat(I32(info[0]), path.c_str(), &buf[0], buf.size());
  if (n < 0) return SysErr(env, errno, "readlinkat");
  if ((size_t)n == buf.size()) return SysErr(env, ENAMETOOLONG, "readlinkat");
  return Napi::Buffer<char>::Copy(env, buf.data(), (size_t)n);
}

// setLinkTimes(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec) -> 0 | { errno, syscall }:
// utimensat(2) with AT_SYMLINK_NOFOLLOW (the times of a symbolic link itself)
Napi::Value SetLinkTimes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)U64(info[1]);
  ts[0].tv_nsec = (long)U64(info[2]);
  ts[1].tv_sec = (time_t)U64(info[3]);
  ts[1].tv_nsec = (long)U64(info[4]);
  if (utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0) return SysErr(env, errno, "utimensat");
  return Num(env, 0);
}

// linkFollow(from, to) -> 0 | { errno, syscall }: linkat(2) with AT_SYMLINK_FOLLOW, so that a
// /proc/PID/fd/N link gives the open file a new name (one whose inode still has links)
Napi::Value LinkFollow(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string from = info[0].As<Napi::String>().Utf8Value();
  std::string to = info[1].As<Napi::String>().Utf8Value();
  if (linkat(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) < 0) return SysErr(env, errno, "linkat");
  return Num(env, 0);
}

}  // namespace

void crtools::sys::AddFiles(Napi::Object exports) {
  Export(exports, "seekFile", SeekFile);
  Export(exports, "setFileTimes", SetFileTimes);
  Export(exports, "makeFifo", MakeFifo);
  Export(exports, "makeDeviceNode", MakeDeviceNode);
  Export(exports, "readLinkAt", ReadLinkAt);
  Export(exports, "setLinkTimes", SetLinkTimes);
  Export(exports, "linkFollow", LinkFollow);
}
