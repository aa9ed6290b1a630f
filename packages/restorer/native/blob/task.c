/*
 * crtools restorer blob: the rest of a task's state. Signal actions, rlimits, itimers, POSIX
 * timers, scheduling and OOM score, credentials.
 */
#include "blob.h"

void restore_task_misc(struct ctx *c)
{
	struct plan_task *t = c->t;
	struct plan_rlimit *rl = AT(c, t->rlimits_off);
	struct plan_sigact *sa = AT(c, t->sigacts_off);
	struct plan_itimer *it = AT(c, t->itimers_off);
	u64 i;

	set_step(c, STEP_RLIMITS);
	for (i = 0; i < t->nrlimits; i++) {
		u64 lim[2] = { rl[i].cur, rl[i].max };
		long r = S4(NR_prlimit64, 0, i, lim, 0);
		/* limits above what this machine allows (no CAP_SYS_RESOURCE) stay as they are */
		if (r == -EPERM)
			continue;
		chk(c, r, i);
	}
	set_step(c, STEP_SIGACTIONS);
	for (i = 1; i <= 64; i++) {
		if (i == SIGKILL || i == SIGSTOP)
			continue;
		chk(c, S4(NR_rt_sigaction, i, &sa[i - 1], 0, 8), i);
	}
	set_step(c, STEP_ITIMERS);
	for (i = 0; i < 3; i++) {
		u64 v[4] = { it[i].isec, it[i].iusec, it[i].vsec, it[i].vusec };
		if (v[0] | v[1] | v[2] | v[3])
			chk(c, S3(NR_setitimer, i, v, 0), i);
	}
	if (t->child_subreaper)
		chk(c, S5(NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	set_step(c, STEP_MISC);
	if (t->thp_disabled)
		chk(c, S5(NR_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0), 1);
	/* which mappings a core dump of it would hold: "0x" and the bits in hex (the kernel reads
	   the number C's way: without the prefix, the leading zeros it shows would make it octal) */
	if (t->has_coredump_filter) {
		char buf[10] = { '0', 'x' };
		u64 k;
		long fd;
		for (k = 0; k < 8; k++)
			buf[2 + k] = "0123456789abcdef"[(t->coredump_filter >> (28 - 4 * k)) & 0xf];
		fd = chk(c, xopen("/proc/self/coredump_filter", O_WRONLY), 2);
		chk(c, S3(NR_write, fd, buf, 10), 2);
		S1(NR_close, fd);
	}
	/* membarrier registrations of the process: each recorded bit is its register command */
	for (i = 0; i < 32; i++)
		if (t->membarrier & (1ULL << i))
			chk(c, S3(NR_membarrier, 1ULL << i, 0, 0), 100 + i);
}

/* the kernel's struct sigevent: value, signo, notify, then the target tid (64 bytes in all) */
struct ksigevent {
	u64 value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};

/* POSIX timers get their recorded ids back: the kernel takes the wanted id in *id when
 * PR_TIMER_CREATE_RESTORE_IDS is on; older kernels hand ids out in order, so timers are created
 * (and the extra ones deleted) until the wanted id comes up. Armed later, just before sigreturn. */
void create_timers(struct ctx *c)
{
	struct plan_ptimer *pt = AT(c, c->t->timers_off);
	u64 i, n = c->t->ntimers;
	int by_id;
	long r;

	if (!n)
		return;
	set_step(c, STEP_TIMERS);
	r = S5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
	if (r != 0 && r != -EINVAL)
		fail(c, (u64)-r, 0);
	by_id = r == 0;
	for (i = 0; i < n; i++) {
		struct ksigevent sev;
		int id, tries;
		memset(&sev, 0, sizeof(sev));
		sev.value = pt[i].sival;
		sev.signo = (int)pt[i].signo;
		sev.notify = (int)pt[i].notify;
		sev.tid = (int)pt[i].notify_tid;
		if (by_id) {
			id = (int)pt[i].id;
			chk(c, S3(NR_timer_create, pt[i].clock_id, &sev, &id), pt[i].id);
			if ((u64)id != pt[i].id)
				fail(c, EEXIST, pt[i].id);
			continue;
		}
		for (tries = 0;; tries++) {
			if (tries > 65536)
				fail(c, EEXIST, pt[i].id);
			chk(c, S3(NR_timer_create, pt[i].clock_id, &sev, &id), pt[i].id);
			if ((u64)id == pt[i].id)
				break;
			if ((u64)id > pt[i].id)
				fail(c, EEXIST, pt[i].id);
			chk(c, S1(NR_timer_delete, id), (u64)id);
		}
	}
	if (by_id)
		chk(c, S5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0), 0);
}

void arm_timers(struct ctx *c)
{
	struct plan_ptimer *pt = AT(c, c->t->timers_off);
	u64 i;

	set_step(c, STEP_TIMERS);
	for (i = 0; i < c->t->ntimers; i++) {
		u64 its[4] = { pt[i].isec, pt[i].insec, pt[i].vsec, pt[i].vnsec };
		if (!(its[2] | its[3]))
			continue; /* disarmed when dumped */
		chk(c, S4(NR_timer_settime, pt[i].id, 0, its, 0), pt[i].id);
	}
}

/* Scheduling of every thread (by tid) and the OOM score adjustment, while the task still has
 * the restorer's privileges (raising priority needs CAP_SYS_NICE, lowering oom_score_adj
 * CAP_SYS_RESOURCE). */
void restore_sched_oom(struct ctx *c)
{
	struct plan_thread *th = AT(c, c->t->threads_off);
	u64 i;

	set_step(c, STEP_SCHED);
	for (i = 0; i < c->t->nthreads; i++) {
		int prio = (int)th[i].sched_prio;
		if (!th[i].has_sched)
			continue;
		chk(c, S3(NR_setpriority, 0 /* PRIO_PROCESS */, th[i].tid, (int)th[i].sched_nice), th[i].tid);
		chk(c, S3(NR_sched_setscheduler, th[i].tid, th[i].sched_policy, &prio), th[i].tid);
	}
	if (c->t->has_oom_adj) {
		char buf[16], *p = buf + sizeof(buf);
		long v = (long)c->t->oom_adj, fd, n;
		int neg = v < 0;
		u64 u = neg ? (u64)-v : (u64)v;
		set_step(c, STEP_OOM);
		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (neg)
			*--p = '-';
		n = buf + sizeof(buf) - p;
		fd = chk(c, xopen("/proc/self/oom_score_adj", O_WRONLY), 0);
		chk(c, S3(NR_write, fd, p, n), (u64)v);
		S1(NR_close, fd);
	}
	/* the audit login uid, where it is not the one inherited (needs CAP_AUDIT_CONTROL once set) */
	if (c->t->has_loginuid) {
		char buf[16], *p = buf + sizeof(buf);
		u64 u = c->t->loginuid & 0xffffffffULL;
		long fd, n;
		set_step(c, STEP_MISC);
		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		n = buf + sizeof(buf) - p;
		fd = chk(c, xopen("/proc/self/loginuid", O_WRONLY), 3);
		chk(c, S3(NR_write, fd, p, n), 4);
		S1(NR_close, fd);
	}
}

/* The dumpable flag as recorded. Any change of the effective or fs ids sets it to the
   fs.suid_dumpable sysctl, so it comes back after each. prctl takes 0 or 1 only: a task the
   kernel made "root-dumpable" (2, after a change of ids with fs.suid_dumpable=2) keeps what
   the same change gave it here, or 0 (the safer of the two) if the sysctl differs. */
void restore_dumpable(struct ctx *c, u64 detail)
{
	u64 d = c->t->dumpable;
	if (d > 1 && S5(NR_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) == (long)d)
		return;
	chk(c, S5(NR_prctl, PR_SET_DUMPABLE, d > 1 ? 0 : d, 0, 0, 0), detail);
}

void restore_creds(struct ctx *c)
{
	struct plan_task *t = c->t;
	u64 *g = AT(c, t->groups_off);
	u32 groups[256];
	u64 i;

	set_step(c, STEP_CREDS);
	for (i = 0; i < t->ngroups && i < 256; i++)
		groups[i] = (u32)g[i];
	chk(c, S2(NR_setgroups, i, groups), 0);
	chk(c, S3(NR_setresgid, t->gid, t->egid, t->sgid), 1);
	S1(NR_setfsgid, t->fsgid);
	if (t->has_caps) {
		/* the bounding set shrinks first (needs CAP_SETPCAP); caps past the kernel's last are EINVAL */
		set_step(c, STEP_CAPS);
		for (i = 0; i < 64; i++)
			if (!(t->cap_bnd & (1ULL << i))) {
				long r = S5(NR_prctl, PR_CAPBSET_DROP, i, 0, 0, 0);
				if (r == -EINVAL)
					break;
				chk(c, r, 100 + i);
			}
		/* securebits as recorded, plus keep-caps so the permitted set survives the uid change
		 * below (needs CAP_SETPCAP, which the restorer still has) */
		chk(c, S5(NR_prctl, PR_SET_SECUREBITS, t->secbits | SECBIT_KEEP_CAPS, 0, 0, 0), 3);
		set_step(c, STEP_CREDS);
	}
	chk(c, S3(NR_setresuid, t->uid, t->euid, t->suid), 2);
	S1(NR_setfsuid, t->fsuid);
	if (t->has_caps) {
		u32 hdr[2] = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
		u32 data[6] = { (u32)t->cap_eff, (u32)t->cap_prm, (u32)t->cap_inh,
				(u32)(t->cap_eff >> 32), (u32)(t->cap_prm >> 32), (u32)(t->cap_inh >> 32) };
		set_step(c, STEP_CAPS);
		chk(c, S2(NR_capset, hdr, data), 4);
		for (i = 0; i < 64; i++)
			if (t->cap_amb & (1ULL << i))
				chk(c, S5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0), 200 + i);
		if (!(t->secbits & SECBIT_KEEP_CAPS))
			chk(c, S5(NR_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0), 5);
		if (t->no_new_privs)
			chk(c, S5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 6);
	}
	/* the parent-death signal and the dumpable flag last: a change of the effective or fs ids
	   above clears both (the flag to the fs.suid_dumpable sysctl's value, 0 by default: the
	   task's /proc files would be root's, its owner could no longer read them nor trace it) */
	set_step(c, STEP_MISC);
	/* (SIGKILL, the guard restorer_task set, gives way to the task's own, none included) */
	if (t->pdeathsig || guarded(c))
		chk(c, S5(NR_prctl, PR_SET_PDEATHSIG, t->pdeathsig, 0, 0, 0), 2);
	restore_dumpable(c, 3);
}
