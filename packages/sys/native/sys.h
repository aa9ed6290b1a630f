// Private to the @crtools/sys addon: how its source files meet. Each file handles one
// concern and adds its functions to the module's exports; init.cc calls them all.
// Failures come back as { errno, syscall } objects (crtools::SysErr); TypeScript makes the errors.
#ifndef CRTOOLS_SYS_H
#define CRTOOLS_SYS_H

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>

#include "crtools-napi.h"

namespace crtools::sys {

using crtools::I32;
using crtools::Num;
using crtools::U64;
using crtools::Export;

void AddHandles(Napi::Object exports);  // handles.cc: kernel file handles
void AddProcess(Napi::Object exports);  // process.cc: kcmp, clocks
void AddPipes(Napi::Object exports);    // pipes.cc: pipes, splice, tee, close
void AddSockets(Napi::Object exports);  // sockets.cc: sock_diag, a task's socket seen through pidfd_getfd
void AddCpu(Napi::Object exports);      // cpu.cc: cpuid, xgetbv
// A descriptor of ours on the same open file as task pid's fd (pidfd_open + pidfd_getfd), or -1
// with the errno and the failing system call's name set (probe.cc).
int TaskFdCopy(int pid, int fd, int *err, const char **failed);

void AddProbe(Napi::Object exports);    // probe.cc: a task's open file, seen through a pidfd_getfd copy
void AddPackets(Napi::Object exports);  // packets.cc: SOCK_SEQPACKET sockets (RPC transport), readiness watches
void AddMemory(Napi::Object exports);   // memory.cc: PAGEMAP_SCAN, guard regions
void AddFiles(Napi::Object exports);    // files.cc: SEEK_DATA/SEEK_HOLE, futimens
void AddTty(Napi::Object exports);      // tty.cc: a task's terminal, seen through a pidfd_getfd copy
void AddTcp(Napi::Object exports);      // tcp.cc: TCP connections in repair mode (save, make again)
void AddSysvipc(Napi::Object exports);  // sysvipc.cc: SysV IPC objects of a namespace (read, made again)
void AddMounts(Napi::Object exports);   // mounts.cc: mounts made, changed and removed in a task's mount namespace
void AddTun(Napi::Object exports);      // tun.cc: tun/tap devices and their /dev/net/tun files
void AddSource(Napi::Object exports);   // source.cc: a file read whole for node to run (the bundled commands)
// Run work on a thread of its own that first joins the namespace nsPath names (setns(2) of
// nsType); returns 0, or an errno with *failed naming the call that failed (else *failed null).
int InNamespace(const std::string &nsPath, int nsType, const std::function<void()> &work, const char **failed);
void AddNetns(Napi::Object exports);    // netns.cc: network namespaces, rtnetlink, where sockets are made
// A socket (close-on-exec) made inside the network namespace nsPath names ("" this thread's), or
// -1 with the errno and the failing call set.
int NetSocket(const std::string &nsPath, int domain, int type, int protocol, int *err, const char **failed);
// A socket (close-on-exec) made in the namespace setSocketNamespace chose, or -1 with errno set:
// the sockets of sock_diag queries and TCP repair.
int SocketNsSocket(int domain, int type, int protocol);

}  // namespace crtools::sys

#endif
