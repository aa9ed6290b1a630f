// The restorer's launcher: its share of the page copying (UFFDIO_COPY into tasks' userfaultfds).
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace {

using namespace crtools::launcher;
using crtools::SysErr;

// ---- the launcher's share of the page copying (see restore_pages in the blob) ----
// A task that registered its big anonymous page runs with a userfaultfd publishes the fd number
// and the count of PAGE_CHUNK pieces in its status record; whoever claims a piece (an atomic add
// on `claimed`) copies it with UFFDIO_COPY and counts it in `copied`. The launcher takes a copy
// of that userfaultfd with pidfd_getfd and claims pieces like the task does, so two CPUs copy.

struct HelperRun {
  uint64_t vaddr, len, off;
  std::string path;
};

struct HelperTask {
  std::vector<HelperRun> runs;
  bool skip = false;  // pidfd_getfd refused: the task copies everything itself
};

struct Helper {
  uint8_t *status;
  uint64_t tasksOff, recordSize, pubOff, chunk;
  uint64_t fState, fPid, fUffd, fChunks, fClaimed, fCopied, fErr;
  uint64_t stFailed;
  std::vector<HelperTask> tasks;
  volatile uint64_t *field(size_t task, uint64_t off) { return (volatile uint64_t *)(status + tasksOff + task * recordSize + off); }
};

// copy piece k of task t's runs; 0 or an errno
int CopyPiece(Helper *h, HelperTask &t, uint64_t k, int uffd, std::vector<int> &fds) {
  for (size_t i = 0; i < t.runs.size(); i++) {
    HelperRun &r = t.runs[i];
    uint64_t n = (r.len + h->chunk - 1) / h->chunk;
    if (k >= n) {
      k -= n;
      continue;
    }
    uint64_t at = k * h->chunk, len = r.len - at < h->chunk ? r.len - at : h->chunk;
    if (fds[i] < 0) {
      for (size_t j = 0; j < i && fds[i] < 0; j++)
        if (fds[j] >= 0 && t.runs[j].path == r.path) fds[i] = dup(fds[j]);
      if (fds[i] < 0) fds[i] = open(r.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0) return errno;
    }
    void *src = mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fds[i], (off_t)(r.off + at));
    if (src == MAP_FAILED) return errno;
    int err = 0, again = 0;
    for (uint64_t done = 0; done < len;) {
      struct uffdio_copy cp;
      cp.dst = r.vaddr + at + done;
      cp.src = (uint64_t)(uintptr_t)src + done;
      cp.len = len - done;
      cp.mode = 0;
      cp.copy = 0;
      if (ioctl(uffd, UFFDIO_COPY, &cp) == 0) break;
      if (cp.copy > 0) {
        done += (uint64_t)cp.copy;
        continue;
      }
      if (errno != EAGAIN || ++again > 1000) {
        err = errno;
        break;
      }
    }
    munmap(src, len);
    return err;
  }
  return EINVAL;
}

void FreeHelper(Napi::Env, Helper *h) { delete h; }

// pageHelper(status, { tasksOff, recordSize, pubOff, chunk, fields: { state, pid, uffd, chunks,
//   claimed, copied, help_err }, failed, tasks: [[{ vaddr, len, off, path }]] }) -> External
Napi::Value PageHelper(const Napi::CallbackInfo &info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  Napi::Object a = info[1].As<Napi::Object>();
  Napi::Object f = a.Get("fields").As<Napi::Object>();
  auto num = [](Napi::Object o, const char *k) { return (uint64_t)o.Get(k).As<Napi::Number>().Int64Value(); };
  Helper *h = new Helper();
  h->status = (uint8_t *)ab.Data();
  h->tasksOff = num(a, "tasksOff");
  h->recordSize = num(a, "recordSize");
  h->pubOff = num(a, "pubOff");
  h->chunk = num(a, "chunk");
  h->stFailed = num(a, "failed");
  const std::pair<uint64_t Helper::*, const char *> fields[] = {
      {&Helper::fState, "state"}, {&Helper::fPid, "pid"}, {&Helper::fUffd, "uffd"}, {&Helper::fChunks, "chunks"},
      {&Helper::fClaimed, "claimed"}, {&Helper::fCopied, "copied"}, {&Helper::fErr, "help_err"}};
  for (auto &fd : fields) h->*fd.first = num(f, fd.second);
  Napi::Array tasks = a.Get("tasks").As<Napi::Array>();
  for (uint32_t i = 0; i < tasks.Length(); i++) {
    HelperTask t;
    Napi::Array runs = tasks.Get(i).As<Napi::Array>();
    for (uint32_t k = 0; k < runs.Length(); k++) {
      Napi::Object r = runs.Get(k).As<Napi::Object>();
      t.runs.push_back({BigU64(r.Get("vaddr")), BigU64(r.Get("len")), BigU64(r.Get("off")), r.Get("path").As<Napi::String>().Utf8Value()});
    }
    h->tasks.push_back(std::move(t));
  }
  return Napi::External<Helper>::New(info.Env(), h, FreeHelper);
}

// assist(helper, waitMs) -> pieces copied: take pieces of every task that published its
// userfaultfd; when there is none to take, wait up to waitMs for a task to publish.
Napi::Value Assist(const Napi::CallbackInfo &info) {
  Helper *h = info[0].As<Napi::External<Helper>>().Data();
  long waitMs = info[1].As<Napi::Number>().Int64Value();
  volatile uint32_t *pub = (volatile uint32_t *)(h->status + h->pubOff);
  double copied = 0;
  for (;;) {
    uint32_t seen = __atomic_load_n(pub, __ATOMIC_SEQ_CST);
    bool worked = false;
    for (size_t i = 0; i < h->tasks.size(); i++) {
      HelperTask &t = h->tasks[i];
      if (t.skip || t.runs.empty()) continue;
      uint64_t chunks = __atomic_load_n(h->field(i, h->fChunks), __ATOMIC_SEQ_CST);
      if (!chunks || __atomic_load_n(h->field(i, h->fClaimed), __ATOMIC_SEQ_CST) >= chunks) continue;
      if (__atomic_load_n(h->field(i, h->fState), __ATOMIC_SEQ_CST) == h->stFailed) continue;
      // the fd number stays the task's userfaultfd until every piece is claimed and copied:
      // a piece claimed below proves it was still that file when we took our copy
      int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)*h->field(i, h->fPid), 0);
      int uffd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)*h->field(i, h->fUffd), 0);
      if (pidfd >= 0) close(pidfd);
      if (uffd < 0) {
        t.skip = true;
        continue;
      }
      worked = true;
      std::vector<int> fds(t.runs.size(), -1);
      uint64_t k;
      while ((k = __atomic_fetch_add(h->field(i, h->fClaimed), 1, __ATOMIC_SEQ_CST)) < chunks) {
        int err = CopyPiece(h, t, k, uffd, fds);
        if (err) {
          uint64_t zero = 0;
          __atomic_compare_exchange_n(h->field(i, h->fErr), &zero, (uint64_t)err, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
        __atomic_add_fetch(h->field(i, h->fCopied), 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, h->field(i, h->fCopied), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
        copied++;
      }
      for (int fd : fds)
        if (fd >= 0) close(fd);
      close(uffd);
    }
    if (worked) continue;
    if (copied > 0 || waitMs <= 0) break;
    struct timespec ts = {waitMs / 1000, (waitMs % 1000) * 1000000};
    syscall(SYS_futex, pub, FUTEX_WAIT, seen, &ts, nullptr, 0);
    waitMs = 0;
  }
  return Napi::Number::New(info.Env(), copied);
}

}  // namespace

void crtools::launcher::AddPages(Napi::Object exports) {
  Export(exports, "pageHelper", PageHelper);
  Export(exports, "assist", Assist);
}
