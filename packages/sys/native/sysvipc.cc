// @crtools/sys: the SysV IPC objects of an IPC namespace, read (shared memory contents, semaphore
// values, queued messages copied with MSG_COPY) and made again with the same ids (the namespace's
// kernel/*_next_id sysctl set before each is created), all from a thread that joins the namespace.
#include "sys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <cstdio>
#include <unistd.h>
#include <vector>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

namespace {

using namespace crtools::sys;
using crtools::SysErr;

union semun_arg {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

struct Msg {
  uint64_t mtype;
  std::string data;
};

struct Obj {
  int kind = 0;  // 0 shm, 1 sem, 2 msg
  int id = 0;
  uint32_t key = 0, mode = 0, uid = 0, gid = 0;
  uint32_t cuid = 0, cgid = 0;  // its creator's (made with them as this thread's effective ids)
  uint64_t size = 0;        // shm
  std::string data;         // shm contents
  std::vector<uint16_t> values;  // sem
  std::vector<Msg> msgs;    // msg
  uint64_t qbytes = 0;      // msg
  uint32_t dev_major = 0, dev_minor = 0;  // shm: the device of its file
  uint32_t hugetlb = 0;     // shm: SHM_HUGETLB and its size bits, made on huge pages
};

struct Job {
  std::vector<Obj> objs;
  int err = 0;
  const char *syscall = nullptr;
  bool fail(const char *what) {
    err = errno, syscall = what;
    return false;
  }
};

bool DumpOne(Job &j, Obj &o) {
  if (o.kind == 0) {
    struct shmid_ds ds;
    if (shmctl(o.id, IPC_STAT, &ds) < 0) return j.fail("shmctl");
    void *a = shmat(o.id, nullptr, SHM_RDONLY);
    if (a == (void *)-1) return j.fail("shmat");
    o.size = ds.shm_segsz;
    o.data.assign((const char *)a, ds.shm_segsz);
    // the file behind the attach: on the shm mount, or on a hugetlbfs one (SHM_HUGETLB), whose
    // attach spans whole huge pages (2 MiB, 1 GiB: the first link that exists names it)
    char link[64];
    struct stat st;
    int sr = -1, se = ENOENT;
    for (unsigned long unit : {4096UL, 2UL << 20, 1UL << 30}) {
      snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)a, (unsigned long)a + ((ds.shm_segsz + unit - 1) & ~(unit - 1)));
      sr = stat(link, &st);
      se = errno;
      if (sr == 0 || se != ENOENT) break;
    }
    shmdt(a);
    if (sr < 0) {
      errno = se;
      return j.fail("stat");
    }
    o.dev_major = major(st.st_dev), o.dev_minor = minor(st.st_dev);
  } else if (o.kind == 1) {
    struct semid_ds ds;
    semun_arg arg;
    arg.buf = &ds;
    if (semctl(o.id, 0, IPC_STAT, arg) < 0) return j.fail("semctl");
    o.values.resize(ds.sem_nsems);
    arg.array = o.values.data();
    if (ds.sem_nsems && semctl(o.id, 0, GETALL, arg) < 0) return j.fail("semctl");
  } else {
    struct msqid_ds ds;
    if (msgctl(o.id, IPC_STAT, &ds) < 0) return j.fail("msgctl");
    o.qbytes = ds.msg_qbytes;
    size_t max = ds.msg_qbytes > 65536 ? ds.msg_qbytes : 65536;
    std::vector<char> buf(sizeof(long) + max);
    for (unsigned long i = 0; i < ds.msg_qnum; i++) {
      ssize_t n = msgrcv(o.id, buf.data(), max, (long)i, IPC_NOWAIT | MSG_COPY);
      if (n < 0) return j.fail("msgrcv");
      long t;
      memcpy(&t, buf.data(), sizeof(t));
      o.msgs.push_back(Msg{(uint64_t)t, std::string(buf.data() + sizeof(long), (size_t)n)});
    }
  }
  return true;
}

bool SetNextId(Job &j, const char *file, int id) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return j.fail("open");
  std::string s = std::to_string(id);
  ssize_t n = write(fd, s.data(), s.size());
  int e = errno;
  close(fd);
  if (n != (ssize_t)s.size()) {
    errno = n < 0 ? e : EIO;
    return j.fail("write");
  }
  return true;
}

// The object's creator (cuid, cgid) is whoever made it, and IPC_SET cannot change it: this
// thread takes the creator's effective ids for the get call alone (raw system calls: the ids of
// this thread only; its real and saved uid stay 0, so it takes 0 and its capabilities back).
bool AsCreator(Job &j, uint32_t uid, uint32_t gid) {
  if (syscall(SYS_setresgid, -1, gid, -1) < 0) return j.fail("setresgid");
  if (syscall(SYS_setresuid, -1, uid, -1) < 0) return j.fail("setresuid");
  return true;
}

bool AsRoot(Job &j) {
  if (syscall(SYS_setresuid, -1, 0, -1) < 0) return j.fail("setresuid");
  if (syscall(SYS_setresgid, -1, 0, -1) < 0) return j.fail("setresgid");
  return true;
}

bool MakeOne(Job &j, const Obj &o) {
  static const char *next[] = {"/proc/sys/kernel/shm_next_id", "/proc/sys/kernel/sem_next_id", "/proc/sys/kernel/msg_next_id"};
  if (!SetNextId(j, next[o.kind], o.id)) return false;
  int flags = (int)(o.mode & 0777) | IPC_CREAT | IPC_EXCL | (o.kind == 0 ? (int)o.hugetlb : 0);
  int id;
  if (!AsCreator(j, o.cuid, o.cgid)) {
    AsRoot(j);
    return false;
  }
  if (o.kind == 0) id = shmget((key_t)o.key, o.size, flags);
  else if (o.kind == 1) id = semget((key_t)o.key, (int)o.values.size(), flags);
  else id = msgget((key_t)o.key, flags);
  int e = errno;
  if (!AsRoot(j)) return false;
  if (id < 0) {
    errno = e;
    return j.fail(o.kind == 0 ? "shmget" : o.kind == 1 ? "semget" : "msgget");
  }
  if (id != o.id) {
    errno = EEXIST;
    return j.fail(o.kind == 0 ? "shmget" : o.kind == 1 ? "semget" : "msgget");
  }
  if (o.kind == 0) {
    if (!o.data.empty()) {
      void *a = shmat(id, nullptr, 0);
      if (a == (void *)-1) return j.fail("shmat");
      memcpy(a, o.data.data(), o.data.size() < o.size ? o.data.size() : o.size);
      shmdt(a);
    }
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0) return j.fail("shmctl");
    ds.shm_perm.uid = o.uid, ds.shm_perm.gid = o.gid, ds.shm_perm.mode = o.mode & 0777;
    if (shmctl(id, IPC_SET, &ds) < 0) return j.fail("shmctl");
  } else if (o.kind == 1) {
    semun_arg arg;
    std::vector<uint16_t> v = o.values;
    arg.array = v.data();
    if (!v.empty() && semctl(id, 0, SETALL, arg) < 0) return j.fail("semctl");
    struct semid_ds ds;
    arg.buf = &ds;
    if (semctl(id, 0, IPC_STAT, arg) < 0) return j.fail("semctl");
    ds.sem_perm.uid = o.uid, ds.sem_perm.gid = o.gid, ds.sem_perm.mode = o.mode & 0777;
    arg.buf = &ds;
    if (semctl(id, 0, IPC_SET, arg) < 0) return j.fail("semctl");
  } else {
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) < 0) return j.fail("msgctl");
    // room for the messages first (a queue's limit can be lowered, raised only up to msgmnb)
    if (o.qbytes > ds.msg_qbytes) {
      ds.msg_qbytes = o.qbytes;
      if (msgctl(id, IPC_SET, &ds) < 0) return j.fail("msgctl");
    }
    for (auto &m : o.msgs) {
      std::vector<char> buf(sizeof(long) + m.data.size());
      long t = (long)m.mtype;
      memcpy(buf.data(), &t, sizeof(t));
      memcpy(buf.data() + sizeof(long), m.data.data(), m.data.size());
      if (msgsnd(id, buf.data(), m.data.size(), IPC_NOWAIT) < 0) return j.fail("msgsnd");
    }
    if (msgctl(id, IPC_STAT, &ds) < 0) return j.fail("msgctl");
    ds.msg_perm.uid = o.uid, ds.msg_perm.gid = o.gid, ds.msg_perm.mode = o.mode & 0777;
    ds.msg_qbytes = o.qbytes;
    if (msgctl(id, IPC_SET, &ds) < 0) return j.fail("msgctl");
  }
  return true;
}

uint32_t U32(Napi::Object o, const char *k) { return (uint32_t)o.Get(k).As<Napi::Number>().Int64Value(); }

// The objects of info[2] (their kind and id; `more` takes the rest a call needs) into the job.
void ReadObjs(const Napi::CallbackInfo &info, Job &j, void (*more)(Napi::Object, Obj &)) {
  Napi::Array in = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < in.Length(); i++) {
    Napi::Object x = in.Get(i).As<Napi::Object>();
    Obj o;
    o.kind = (int)U32(x, "kind"), o.id = (int)U32(x, "id");
    more(x, o);
    j.objs.push_back(std::move(o));
  }
}

Napi::Value Run(const Napi::CallbackInfo &info, Job &j, bool dump) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  const char *failed = nullptr;
  int err = InNamespace(path, I32(info[1]), [&j, dump] {
    for (auto &o : j.objs)
      if (!(dump ? DumpOne(j, o) : MakeOne(j, o))) return;
  }, &failed);
  if (failed) return SysErr(env, err, failed);
  if (j.syscall) return SysErr(env, j.err, j.syscall);
  return env.Undefined();
}

// sysvRead(nsPath, nsType, objs: { kind, id }[]) -> { size, data: Buffer } | { values: number[] }
// | { qbytes, msgs: [mtype: bigint, Buffer][] } for each object, in order | { errno, syscall }
Napi::Value SysvRead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Job j;
  ReadObjs(info, j, [](Napi::Object, Obj &) {});
  Napi::Value r = Run(info, j, true);
  if (!r.IsUndefined()) return r;
  Napi::Array out = Napi::Array::New(env, j.objs.size());
  for (uint32_t i = 0; i < j.objs.size(); i++) {
    Obj &o = j.objs[i];
    Napi::Object e = Napi::Object::New(env);
    if (o.kind == 0) {
      e.Set("size", Num(env, (double)o.size));
      e.Set("devMajor", Num(env, o.dev_major));
      e.Set("devMinor", Num(env, o.dev_minor));
      e.Set("data", Napi::Buffer<uint8_t>::Copy(env, (const uint8_t *)o.data.data(), o.data.size()));
    } else if (o.kind == 1) {
      Napi::Array v = Napi::Array::New(env, o.values.size());
      for (uint32_t k = 0; k < o.values.size(); k++) v.Set(k, Num(env, o.values[k]));
      e.Set("values", v);
    } else {
      e.Set("qbytes", Num(env, (double)o.qbytes));
      Napi::Array ms = Napi::Array::New(env, o.msgs.size());
      for (uint32_t k = 0; k < o.msgs.size(); k++) {
        Napi::Array m = Napi::Array::New(env, 2);
        m.Set(0u, Napi::BigInt::New(env, o.msgs[k].mtype));
        m.Set(1u, Napi::Buffer<uint8_t>::Copy(env, (const uint8_t *)o.msgs[k].data.data(), o.msgs[k].data.size()));
        ms.Set(k, m);
      }
      e.Set("msgs", ms);
    }
    out.Set(i, e);
  }
  return out;
}

// sysvMake(nsPath, nsType, objs: { kind, id, key, mode, uid, gid, cuid?, cgid?, size?, hugetlb?, data?, values?,
// qbytes?, msgs? }[]) -> undefined | { errno, syscall }: each made in order with its id
Napi::Value SysvMake(const Napi::CallbackInfo &info) {
  Job j;
  ReadObjs(info, j, [](Napi::Object x, Obj &o) {
    o.key = U32(x, "key"), o.mode = U32(x, "mode"), o.uid = U32(x, "uid"), o.gid = U32(x, "gid");
    o.cuid = x.Has("cuid") ? U32(x, "cuid") : o.uid, o.cgid = x.Has("cgid") ? U32(x, "cgid") : o.gid;
    if (o.kind == 0) {
      o.size = (uint64_t)x.Get("size").As<Napi::Number>().Int64Value();
      if (x.Has("hugetlb")) o.hugetlb = U32(x, "hugetlb");
      if (x.Get("data").IsBuffer()) {
        auto b = x.Get("data").As<Napi::Buffer<uint8_t>>();
        o.data.assign((const char *)b.Data(), b.Length());
      }
    } else if (o.kind == 1) {
      Napi::Array v = x.Get("values").As<Napi::Array>();
      for (uint32_t k = 0; k < v.Length(); k++) o.values.push_back((uint16_t)v.Get(k).As<Napi::Number>().Uint32Value());
    } else {
      o.qbytes = (uint64_t)x.Get("qbytes").As<Napi::Number>().Int64Value();
      Napi::Array ms = x.Get("msgs").As<Napi::Array>();
      for (uint32_t k = 0; k < ms.Length(); k++) {
        Napi::Array m = ms.Get(k).As<Napi::Array>();
        bool lossless;
        auto b = m.Get(1u).As<Napi::Buffer<uint8_t>>();
        o.msgs.push_back(Msg{m.Get(0u).As<Napi::BigInt>().Uint64Value(&lossless), std::string((const char *)b.Data(), b.Length())});
      }
    }
  });
  return Run(info, j, false);
}

}  // namespace

void crtools::sys::AddSysvipc(Napi::Object exports) {
  Export(exports, "sysvRead", SysvRead);
  Export(exports, "sysvMake", SysvMake);
}
