// Shared by the crtools addons: waitpid with a deadline that sleeps in the kernel until the
// awaited state change (a tracee's stop, a child's exit) instead of polling for it. At the
// deadline a POSIX timer of the waiting thread (SIGEV_THREAD_ID) sends it WakeSignal(), whose
// handler does nothing and is installed without SA_RESTART: waitpid returns EINTR and the
// deadline is seen. The timer repeats after the deadline (a tick that came just before
// waitpid was entered is not waited through), and is disarmed once the wait is over.
// Where the signal cannot be had (another handler holds it, the thread blocks it, no timer),
// the wait polls as before: WNOHANG, then short sleeps.
#ifndef CRTOOLS_WAIT_H
#define CRTOOLS_WAIT_H

#include <cerrno>
#include <csignal>
#include <cstring>
#include <pthread.h>
#include <ctime>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace crtools {

// (glibc keeps SIGRTMIN..SIGRTMIN+2 for itself; node, libuv and V8 use no real-time signal)
inline int WakeSignal() { return SIGRTMIN + 6; }

inline void WakeHandler(int, siginfo_t *, void *) {}

// The handler is installed when the signal has none; one with this shape (SA_SIGINFO without
// SA_RESTART, masking exactly the signal itself) is taken as another crtools addon's.
inline bool InstallWakeHandler() {
  int sig = WakeSignal();
  struct sigaction cur;
  if (sigaction(sig, nullptr, &cur) != 0) return false;
  if (cur.sa_handler == SIG_DFL) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = WakeHandler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    return sigaction(sig, &sa, nullptr) == 0;
  }
  if (!(cur.sa_flags & SA_SIGINFO) || (cur.sa_flags & SA_RESTART)) return false;
  for (int s = 1; s < NSIG; s++)
    if (sigismember(&cur.sa_mask, s) != (s == sig)) return false;
  return true;
}

inline bool WakeSignalReady() {
  static const bool ready = InstallWakeHandler();
  return ready;
}

inline double MonoMs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// One wait made until timeoutMs have passed: attempt(extra) runs a waitpid or waitid with extra
// added to its flags (WNOHANG: do not block; 0: block) and returns what it found (> 0), 0 for
// nothing yet, or -1 with errno. Returns that, or 0 at the deadline.
template <typename Attempt>
pid_t WaitUntil(Attempt attempt, double timeoutMs) {
  pid_t r;
  do r = attempt(WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r != 0) return r;
  double end = MonoMs() + timeoutMs;
  timer_t timer;
  bool armed = false;
  sigset_t mask;
  if (timeoutMs > 0 && WakeSignalReady() && pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0 && !sigismember(&mask, WakeSignal())) {
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = WakeSignal();
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0) {
      double ms = timeoutMs < 1e9 ? timeoutMs : 1e9;
      struct itimerspec its;
      its.it_value.tv_sec = (time_t)(ms / 1000);
      its.it_value.tv_nsec = (long)((ms - its.it_value.tv_sec * 1000.0) * 1e6);
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
      its.it_interval = {0, 2 * 1000 * 1000};
      if (timer_settime(timer, 0, &its, nullptr) == 0) armed = true;
      else timer_delete(timer);
    }
  }
  for (;;) {
    if (MonoMs() >= end) { r = 0; break; }
    r = attempt(armed ? 0 : WNOHANG);
    if (r > 0) break;
    if (r < 0 && errno != EINTR) break;
    if (r == 0) {
      struct timespec ts = {0, 200 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
  if (armed) {
    int e = errno;
    timer_delete(timer);
    errno = e;
  }
  return r;
}

// waitpid(pid, status, flags) until timeoutMs have passed: the pid, 0 at the deadline, -1 and errno.
inline pid_t WaitPidFor(pid_t pid, int *status, int flags, double timeoutMs) {
  return WaitUntil([&](int extra) { return waitpid(pid, status, flags | extra); }, timeoutMs);
}

}  // namespace crtools

#endif
