/* Blob entry (offset 0) and the two pieces that must be assembly. */
	.section .text.entry, "ax"
	.globl _start
_start:
	jmp 2f
	/* offset 2: a bare syscall instruction the launcher uses (under ptrace) to run munmap of
	   this very region once every thread has left it */
	.globl blob_syscall_insn
	.hidden blob_syscall_insn
blob_syscall_insn:
	syscall
	hlt
2:
	/* rdi = plan, rsi = task index, rdx/rcx = the launcher's rseq area and length (0 if none);
	   the launcher already switched to the blob stack */
	and $-16, %rsp
	call restorer_root
1:	mov $231, %eax		/* exit_group: never reached, restorer_task does not return */
	mov $127, %edi
	syscall
	jmp 1b

	.text
	/* long blob_clone_thread(struct clone_args *args, size_t size, void (*fn)(void *), void *arg) */
	.globl blob_clone_thread
	.hidden blob_clone_thread
blob_clone_thread:
	push %r12
	push %r13
	mov %rdx, %r12
	mov %rcx, %r13
	mov $435, %eax
	syscall
	test %rax, %rax
	jnz 2f
	/* new thread: rsp is the top of its own stack */
	and $-16, %rsp
	mov %r13, %rdi
	call *%r12
3:	mov $60, %eax
	mov $126, %edi
	syscall
	jmp 3b
2:	pop %r13
	pop %r12
	ret

	/* void blob_sigreturn(void *uc): rsp := uc (rt_sigframe + 8), then rt_sigreturn */
	.globl blob_sigreturn
	.hidden blob_sigreturn
blob_sigreturn:
	mov %rdi, %rsp
	mov $15, %eax
	syscall
	hlt
