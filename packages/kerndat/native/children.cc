// @crtools/kerndat: forked children, waited for with a deadline, killed and reaped.
#include "kerndat.h"

#include <csignal>
#include <ctime>
#include <sys/wait.h>

namespace crtools::kerndat {

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// waitpid with a deadline (WNOHANG polling). Returns pid, 0 on timeout, -errno.
pid_t wait_deadline(pid_t pid, int *status, int flags, int64_t deadline) {
  for (;;) {
    pid_t r = waitpid(pid, status, flags | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == pid) return r;
    if (now_ms() >= deadline) return 0;
    sleep_ms(1);
  }
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int st;
  int64_t deadline = now_ms() + 2000;
  while (wait_deadline(pid, &st, __WALL, deadline) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st)) {
  }
}

Napi::Object status_object(Napi::Env env, pid_t pid, int status, bool timed_out) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  o.Set("timedOut", timed_out);
  o.Set("exited", !timed_out && WIFEXITED(status));
  o.Set("code", !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  o.Set("signal", !timed_out && WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return o;
}

}  // namespace crtools::kerndat
