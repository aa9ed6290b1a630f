/* SysV IPC objects in an IPC namespace of the tree's own: the root unshares its IPC namespace and
 * makes a shared memory segment (filled with a pattern), a semaphore set (values 0..NSEMS-1 times
 * 7) and a message queue (messages of several types), all with keys, owners and modes of their
 * own, and forks a child living in the same namespace. With "mapped" the root and the child keep
 * the segment attached (the root at a fixed address, read-only in the child) and the child writes
 * into it; otherwise the segment is attached only while it is filled and checked.
 *
 *   sysvipc [mapped] STATEFILE
 *
 * SIGUSR1: "check ok shm=1 sem=1 msg=1 child=1" when every object has its id, key, mode, size and
 * contents (the queue read with MSG_COPY, not consumed) and the child is alive in the namespace. */
#include "workload.h"
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define SHM_KEY 0x5eed0001
#define SEM_KEY 0x5eed0002
#define MSG_KEY 0x5eed0003
#define SHM_SIZE (3 * 4096 + 100)
#define NSEMS 5
#define SHM_AT ((void *)0x7e0000000000UL)

static const long types[] = { 3, 1, 7, 3, 2 };
static const char *texts[] = { "first of type 3", "one", "seven, the longest message of the queue", "second of type 3", "" };
#define NMSG 5

union semun { int val; struct semid_ds *buf; unsigned short *array; };

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + 7); }

static int shm_ok(int id, unsigned char *at) {
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) || ds.shm_segsz != SHM_SIZE || (ds.shm_perm.mode & 0777) != 0640 || ds.shm_perm.__key != SHM_KEY) return 0;
	if (shmget(SHM_KEY, 0, 0) != id) return 0;
	unsigned char *p = at ? at : shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1) return 0;
	int ok = 1;
	for (size_t i = 0; i < SHM_SIZE; i++) {
		unsigned char want = (at && i < 4096 && i >= 4000) ? 0xcc : pattern(i);
		if (p[i] != want) { ok = 0; break; }
	}
	if (!at) shmdt(p);
	return ok;
}

static int sem_ok(int id) {
	struct semid_ds ds;
	union semun a = { .buf = &ds };
	if (semctl(id, 0, IPC_STAT, a) || ds.sem_nsems != NSEMS || (ds.sem_perm.mode & 0777) != 0604 || semget(SEM_KEY, 0, 0) != id) return 0;
	unsigned short v[NSEMS];
	a.array = v;
	if (semctl(id, 0, GETALL, a)) return 0;
	for (int i = 0; i < NSEMS; i++) if (v[i] != i * 7) return 0;
	return 1;
}

static int msg_ok(int id) {
	struct msqid_ds ds;
	if (msgctl(id, IPC_STAT, &ds) || ds.msg_qnum != NMSG || (ds.msg_perm.mode & 0777) != 0620 || msgget(MSG_KEY, 0) != id) return 0;
	struct { long mtype; char text[256]; } m;
	for (int i = 0; i < NMSG; i++) {
		ssize_t n = msgrcv(id, &m, sizeof m.text, i, IPC_NOWAIT | MSG_COPY);
		if (n != (ssize_t)strlen(texts[i]) || m.mtype != types[i] || memcmp(m.text, texts[i], n)) return 0;
	}
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int mapped = argc > 2 && strcmp(argv[1], "mapped") == 0;
	wl_detach(argv[argc - 1]);
	if (unshare(CLONE_NEWIPC)) {
		wl_say("error unshare");
		return 1;
	}
	/* ids away from the first ones, as a busy namespace would have them */
	int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY);
	if (fd < 0 || write(fd, "40", 2) != 2) { wl_say("error shm_next_id"); return 1; }
	close(fd);
	int shm = shmget(SHM_KEY, SHM_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	int sem = semget(SEM_KEY, NSEMS, IPC_CREAT | IPC_EXCL | 0604);
	int unused = msgget(IPC_PRIVATE, IPC_CREAT | 0600); /* a hole in the queue ids */
	int msg = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0620);
	if (shm < 0 || sem < 0 || msg < 0 || unused < 0 || msgctl(unused, IPC_RMID, NULL)) { wl_say("error get"); return 1; }
	unsigned char *p = shmat(shm, mapped ? SHM_AT : NULL, 0);
	if (p == (void *)-1) { wl_say("error shmat"); return 1; }
	for (size_t i = 0; i < SHM_SIZE; i++) p[i] = pattern(i);
	if (!mapped) { shmdt(p); p = NULL; }
	unsigned short v[NSEMS];
	for (int i = 0; i < NSEMS; i++) v[i] = i * 7;
	union semun a = { .array = v };
	if (semctl(sem, 0, SETALL, a)) { wl_say("error setall"); return 1; }
	struct { long mtype; char text[256]; } m;
	for (int i = 0; i < NMSG; i++) {
		m.mtype = types[i];
		memcpy(m.text, texts[i], strlen(texts[i]));
		if (msgsnd(msg, &m, strlen(texts[i]), IPC_NOWAIT)) { wl_say("error msgsnd"); return 1; }
	}
	wl_handle_usr1();
	int pfd[2];
	if (pipe(pfd)) return 1;
	pid_t child = fork();
	if (child == 0) {
		if (mapped) {
			/* the child's own attach: read-write elsewhere, writes into the segment */
			unsigned char *c = shmat(shm, NULL, 0);
			if (c == (void *)-1) _exit(1);
			memset(c + 4000, 0xcc, 96);
			unsigned char *r = shmat(shm, NULL, SHM_RDONLY);
			if (r == (void *)-1) _exit(1);
		}
		if (write(pfd[1], "x", 1) != 1) _exit(1);
		for (;;) pause();
	}
	char x;
	if (read(pfd[0], &x, 1) != 1) { wl_say("error child"); return 1; }
	close(pfd[0]);
	close(pfd[1]);
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		wl_wait_check();
		int s1 = shm_ok(shm, p), s2 = sem_ok(sem), s3 = msg_ok(msg);
		char a1[64], a2[64];
		snprintf(a1, sizeof a1, "/proc/%d/ns/ipc", (int)getpid());
		snprintf(a2, sizeof a2, "/proc/%d/ns/ipc", (int)child);
		char l1[64] = "", l2[64] = "";
		int kid = kill(child, 0) == 0 && readlink(a1, l1, sizeof l1 - 1) > 0 && readlink(a2, l2, sizeof l2 - 1) > 0 && strcmp(l1, l2) == 0;
		wl_say("check %s shm=%d sem=%d msg=%d child=%d", s1 && s2 && s3 && kid ? "ok" : "bad", s1, s2, s3, kid);
	}
}
