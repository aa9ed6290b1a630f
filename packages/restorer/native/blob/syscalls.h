/*
 * The restorer blob's own view of the kernel: integer types, the x86_64 system call numbers
 * and constants it uses, and the raw syscall instruction. No libc, no globals.
 */
#ifndef CRTOOLS_BLOB_SYSCALLS_H
#define CRTOOLS_BLOB_SYSCALLS_H

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef long long s64;

#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_fstat 5
#define NR_lseek 8
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_pread64 17
#define NR_preadv 295
#define NR_shmat 30
#define NR_mremap 25
#define NR_madvise 28
#define NR_dup2 33
#define NR_nanosleep 35
#define NR_setitimer 38
#define NR_getpid 39
#define NR_exit 60
#define NR_fcntl 72
#define NR_flock 73
#define NR_chdir 80
#define NR_fchdir 81
#define NR_umask 95
#define NR_setpgid 109
#define NR_setsid 112
#define NR_setgroups 116
#define NR_setresuid 117
#define NR_getresuid 118
#define NR_setresgid 119
#define NR_getresgid 120
#define NR_getpgid 121
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_personality 135
#define NR_setpriority 141
#define NR_sched_setscheduler 144
#define NR_rt_sigqueueinfo 129
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_chroot 161
#define NR_futex 202
#define NR_timer_create 222
#define NR_timer_settime 223
#define NR_timer_delete 226
#define NR_set_tid_address 218
#define NR_io_setup 206
#define NR_io_submit 209
#define NR_exit_group 231
#define NR_epoll_ctl 233
#define NR_ioctl 16
#define NR_kill 62
#define NR_unlink 87
#define NR_newfstatat 262
#define NR_userfaultfd 323
#define NR_socket 41
#define NR_bind 49
#define NR_connect 42
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_accept4 288
#define NR_rename 82
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_fchownat 260
#define NR_fchmodat 268
#define NR_listen 50
#define NR_shutdown 48
#define NR_socketpair 53
#define NR_setsockopt 54
#define NR_getsockopt 55
#define NR_timerfd_create 283
#define NR_timerfd_settime 286
#define NR_signalfd4 289
#define NR_eventfd2 290
#define NR_epoll_create1 291
#define NR_openat 257
#define NR_pipe2 293
#define NR_inotify_init1 294
#define NR_fanotify_init 300
#define NR_fanotify_mark 301
#define NR_inotify_add_watch 254
#define NR_rt_tgsigqueueinfo 297
#define NR_prlimit64 302
#define NR_rseq 334
#define NR_seccomp 317
#define NR_set_robust_list 273
#define NR_membarrier 324
#define NR_clone3 435
#define NR_close_range 436
#define NR_pidfd_open 434
#define NR_pidfd_getfd 438
#define NR_pidfd_send_signal 424
#define NR_pause 34
#define NR_sched_yield 24
#define NR_waitid 247
#define NR_unshare 272
#define NR_setns 308

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_SHARED 0x01
#define MAP_GROWSDOWN 0x0100
#define MAP_HUGETLB 0x40000
#define PROT_NONE 0
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_GUARD_INSTALL 102
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_EXCL 0200
#define O_RDWR 02
#define O_TRUNC 01000
#define O_NONBLOCK 04000
#define AT_FDCWD (-100)
#define F_SETFD 2
#define F_DUPFD_CLOEXEC 1030
#define F_GETFL 3
#define F_SETFL 4
#define F_SETSIG 10
#define F_SETOWN_EX 15
#define O_ASYNC 020000
#define F_SETPIPE_SZ 1031
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define PR_SET_NAME 15
#define PR_SET_SECCOMP 22
#define SECCOMP_MODE_STRICT 1
#define SECCOMP_SET_MODE_FILTER 1
#define PR_GET_DUMPABLE 3
#define PR_SET_DUMPABLE 4
#define PR_SET_CHILD_SUBREAPER 36
#define PR_SET_PDEATHSIG 1
#define PR_SET_THP_DISABLE 41
#define PR_SET_MM 35
#define PR_SET_MM_MAP 14
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_SET_KEEPCAPS 8
#define SECBIT_KEEP_CAPS 0x10
#define PR_CAPBSET_DROP 24
#define PR_SET_SECUREBITS 28
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define SIGCHLD 17
#define SIGKILL 9
#define SIGSTOP 19
#define CLONE_VM 0x100
#define CLONE_PIDFD 0x1000
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define ETIMEDOUT 110
#define EAGAIN 11
#define EINTR 4
#define EPERM 1
#define ESRCH 3
#define EINVAL 22
#define EEXIST 17
#define EACCES 13
#define EIO 5
#define ESTALE 116
#define EMSGSIZE 90
#define E2BIG 7
#define EADDRINUSE 98
#define ENOENT 2
#define TASK_TOP 0x7ffffffff000ULL
#define PAGE 4096ULL
#define MAX_THREADS 1024

#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define UC_FP_XSTATE 1
#define UC_SIGCONTEXT_SS 2
#define UC_STRICT_RESTORE_SS 4

#define HIDDEN __attribute__((visibility("hidden")))

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define S0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define S1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define S2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define S6(n, a, b, c, d, e, f) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#endif
