/* rseqcs STATEFILE: the main thread runs, over and over, an rseq critical section of glibc's
 * registration (struct rseq at __rseq_offset from the thread pointer) that spins for about a
 * millisecond and reads struct rseq's rseq_cs just before its end. A dump almost always stops it
 * inside the section (nothing else runs in the loop). The section is short so that it completes
 * between two preemptions on a loaded machine: each preemption restarts it (at 100+ ms one never
 * completed under load and no verdict came). Restarted (the kernel moves it to the abort handler) or finished with rseq_cs still
 * set is right; finished with rseq_cs cleared means the section ran on unguarded (the kernel
 * cleared it on a return to user space outside the section and it was never moved to its abort
 * handler: what zdtm's rseq01 checks). On SIGUSR1: "check ok runs=N aborts=N" when no section
 * ended so and sections still complete, else "check bad cleared=N runs=N". */
#include "workload.h"
#include <stdint.h>
#include <sys/rseq.h>

static volatile uint64_t seen;

/* 0: completed with rseq_cs set, 1: aborted, 2: completed with rseq_cs cleared */
static int section(volatile uint64_t *csf) {
	__asm__ __volatile__ goto(
		".pushsection .data.wl_rseq, \"aw\"\n\t"
		".balign 32\n\t"
		"wl_rseq_cs:\n\t"
		".long 0, 0\n\t"                  /* version, flags: restart on preempt, signal, migrate */
		".quad 31f, (32f - 31f), 33f\n\t" /* start_ip, post_commit_offset, abort_ip */
		".popsection\n\t"
		"leaq wl_rseq_cs(%%rip), %%rax\n\t"
		"movq %%rax, %[csf]\n\t"
		"31:\n\t"
		"movl $30000, %%ecx\n\t"
		"34:\n\t"
		"pause\n\t"
		"decl %%ecx\n\t"
		"jnz 34b\n\t"
		"movq %[csf], %%rdx\n\t"
		"movq %%rdx, %[seen]\n\t"
		"32:\n\t"
		".pushsection .text.wl_rseq_abort, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long 0x53053053\n\t" /* glibc's RSEQ_SIG on x86: the 4 bytes before abort_ip */
		"33:\n\t"
		"jmp %l[aborted]\n\t"
		".popsection\n\t"
		:
		: [csf] "m"(*csf), [seen] "m"(seen)
		: "memory", "cc", "rax", "rcx", "rdx"
		: aborted);
	return seen == 0 ? 2 : 0;
aborted:
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	if (__rseq_size == 0) {
		wl_say("error rseq not registered by glibc");
		return 1;
	}
	struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	long runs = 0, aborts = 0, cleared = 0, since = 0;
	for (;;) {
		seen = 0;
		int r = section((volatile uint64_t *)&rs->rseq_cs);
		if (r == 1) aborts++;
		else if (r == 2) cleared++;
		else { runs++; since++; }
		if (wl_want_check && since > 2) {
			wl_want_check = 0;
			since = 0;
			if (cleared) wl_say("check bad cleared=%ld runs=%ld", cleared, runs);
			else wl_say("check ok runs=%ld aborts=%ld", runs, aborts);
		}
	}
}
