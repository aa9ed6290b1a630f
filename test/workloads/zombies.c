/* zombies [group] STATEFILE: two children the parent never waits for: one exits with status 7, one
 * is killed by SIGTERM. On SIGUSR1 the parent looks at both without reaping them (WNOWAIT):
 * "check ok" when both are still its zombies with those statuses, else "check bad what=...".
 * With "group", also a process group whose leader is gone: a child L leads a new group and makes
 * two more children of the parent (CLONE_PARENT) in it, one that exits (a zombie, status 3) and
 * one that lives; then L exits and the parent reaps it. Checked: both still in group L, no
 * process L. "ready pid=P a=A b=B" (+ " leader=L zombie=Z live=M"). With "group2", the live
 * member also has a child of its own in the group: members of different parents, which the
 * restore cannot make again and the dump refuses. With "session", the parent is a child
 * subreaper and has a child S that makes a session of its own (setsid) and a grandchild there
 * whose own child C is orphaned: C, reparented to the parent, is in S's session, not its
 * parent's (zdtm child_subreaper_and_reparent): "ready ... s=S c=C"; checked: C's session is S. */
#include "workload.h"
#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static pid_t leader, gz, gm, sleader, orphan;

/* until pid p is this process's child (an orphan reparented to it), for at most 2 s */
static void wait_adopted(pid_t p) {
	for (int i = 0; i < 200; i++) {
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
		FILE *f = fopen(path, "r");
		int ppid = 0;
		if (f && fgets(buf, sizeof buf, f)) sscanf(strrchr(buf, ')') + 2, "%*c %d", &ppid);
		if (f) fclose(f);
		if (ppid == getpid()) return;
		usleep(10000);
	}
}

/* the "session" tree (see above); 0 or what failed */
static const char *make_session(void) {
	int p[2];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) || pipe(p)) return "prctl";
	sleader = fork();
	if (sleader == 0) {
		setsid();
		pid_t h = fork();
		if (h == 0) {
			pid_t c = fork();
			if (c == 0)
				for (;;) pause();
			if (write(p[1], &c, sizeof c) != sizeof c) _exit(1);
			_exit(0);
		}
		waitpid(h, 0, 0);
		for (;;) pause();
	}
	if (sleader < 0 || read(p[0], &orphan, sizeof orphan) != sizeof orphan) return "fork";
	wait_adopted(orphan);
	close(p[0]), close(p[1]);
	return 0;
}
static int nested;
static pid_t gonez;

/* the "born" tree (see above); 0 or what failed */
static const char *make_born(void) {
	int p[2];
	if (pipe(p)) return "pipe";
	sleader = fork();
	if (sleader == 0) {
		pid_t c = fork();
		if (c == 0)
			for (;;) pause();
		setsid();
		if (write(p[1], &c, sizeof c) != sizeof c) _exit(1);
		for (;;) pause();
	}
	if (sleader < 0 || read(p[0], &orphan, sizeof orphan) != sizeof orphan) return "fork";
	close(p[0]), close(p[1]);
	return 0;
}

/* the "gone" and "zleader" trees (see above); 0 or what failed */
static const char *make_gone(int reap) {
	int p[2];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) || pipe(p)) return "prctl";
	sleader = fork();
	if (sleader == 0) {
		setsid();
		pid_t two[2] = {0, 0};
		two[0] = fork();
		if (two[0] == 0)
			for (;;) pause();
		if (reap) {
			two[1] = fork();
			if (two[1] == 0) _exit(5);
		}
		if (write(p[1], two, sizeof two) != sizeof two) _exit(1);
		_exit(0);
	}
	pid_t two[2];
	if (sleader < 0 || read(p[0], two, sizeof two) != sizeof two) return "fork";
	orphan = two[0], gonez = two[1];
	siginfo_t si;
	if (reap ? waitpid(sleader, 0, 0) != sleader : waitid(P_PID, (id_t)sleader, &si, WEXITED | WNOWAIT) != 0) return "wait";
	/* (their reparenting follows the leader's exit) */
	wait_adopted(orphan);
	close(p[0]), close(p[1]);
	return 0;
}

/* the group whose leader is gone (see above); 0 or what failed */
static const char *make_group(void) {
	int p[2];
	if (pipe(p)) return "pipe";
	leader = fork();
	if (leader == 0) {
		if (setpgid(0, 0)) _exit(1);
		pid_t z = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (z == 0) _exit(3);
		pid_t m = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (m == 0) {
			if (nested && fork() == 0)
				for (;;) pause();
			for (;;) pause();
		}
		pid_t two[2] = {z, m};
		if (write(p[1], two, sizeof two) != sizeof two) _exit(1);
		_exit(0);
	}
	pid_t two[2];
	int st;
	if (leader < 0 || read(p[0], two, sizeof two) != sizeof two) return "leader";
	if (waitpid(leader, &st, 0) != leader) return "reap";
	gz = two[0], gm = two[1];
	close(p[0]), close(p[1]);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int group = argc > 2 && (!strcmp(argv[1], "group") || !strcmp(argv[1], "group2"));
	nested = argc > 2 && !strcmp(argv[1], "group2");
	int session = argc > 2 && !strcmp(argv[1], "session");
	int gone = argc > 2 && !strcmp(argv[1], "gone");
	int zleader = argc > 2 && !strcmp(argv[1], "zleader");
	int born = argc > 2 && !strcmp(argv[1], "born");
	wl_detach(argv[argc - 1]);
	pid_t a = fork();
	if (a == 0) _exit(7);
	pid_t b = fork();
	if (b == 0) {
		kill(getpid(), SIGTERM);
		_exit(1);
	}
	if (a < 0 || b < 0) { wl_say("error fork"); return 1; }
	const char *err = group ? make_group() : session ? make_session() : gone || zleader ? make_gone(gone) : born ? make_born() : 0;
	if (err) { wl_say("error group %s", err); return 1; }
	usleep(100000);
	wl_handle_usr1();
	if (group) wl_say("ready pid=%d a=%d b=%d leader=%d zombie=%d live=%d", (int)getpid(), (int)a, (int)b, (int)leader, (int)gz, (int)gm);
	else if (gone) wl_say("ready pid=%d a=%d b=%d s=%d c=%d z=%d", (int)getpid(), (int)a, (int)b, (int)sleader, (int)orphan, (int)gonez);
	else if (zleader || born) wl_say("ready pid=%d a=%d b=%d s=%d c=%d", (int)getpid(), (int)a, (int)b, (int)sleader, (int)orphan);
	else if (session) wl_say("ready pid=%d a=%d b=%d s=%d c=%d", (int)getpid(), (int)a, (int)b, (int)sleader, (int)orphan);
	else wl_say("ready pid=%d a=%d b=%d", (int)getpid(), (int)a, (int)b);
	for (;;) {
		wl_wait_check();
		siginfo_t si;
		const char *bad = 0;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != a || si.si_code != CLD_EXITED || si.si_status != 7) bad = "exited";
		memset(&si, 0, sizeof si);
		if (!bad && (waitid(P_PID, (id_t)b, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != b || si.si_code != CLD_KILLED || si.si_status != SIGTERM)) bad = "killed";
		memset(&si, 0, sizeof si);
		if (!bad && group && (waitid(P_PID, (id_t)gz, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != gz || si.si_code != CLD_EXITED || si.si_status != 3)) bad = "group-zombie";
		if (!bad && group && (getpgid(gz) != leader || getpgid(gm) != leader)) bad = "group";
		if (!bad && group && (kill(leader, 0) == 0 || errno != ESRCH)) bad = "leader";
		if (!bad && (session || gone || zleader) && getsid(orphan) != sleader) bad = "session";
		if (!bad && born && (getsid(orphan) != getsid(0) || getsid(sleader) != sleader)) bad = "born";
		memset(&si, 0, sizeof si);
		if (!bad && gone && (waitid(P_PID, (id_t)gonez, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != gonez || si.si_code != CLD_EXITED || si.si_status != 5)) bad = "gone-zombie";
		if (!bad && gone && (getsid(gonez) != sleader || getpgid(gonez) != sleader || getpgid(orphan) != sleader)) bad = "gone-group";
		if (!bad && gone && (kill(sleader, 0) == 0 || errno != ESRCH)) bad = "leader";
		memset(&si, 0, sizeof si);
		if (!bad && zleader && (waitid(P_PID, (id_t)sleader, &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != sleader || si.si_code != CLD_EXITED || si.si_status != 0)) bad = "zombie-leader";
		if (bad) wl_say("check bad what=%s", bad);
		else wl_say("check ok");
	}
}
