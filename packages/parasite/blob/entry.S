/* Entry of the parasite blob (trap mode). The dumper sets rdi = command, rsi = argument
 * area, rsp = top of the parasite stack, rip = blob start, then continues the thread.
 * The command's result stays in rax; int3 hands control back to the dumper. */
	.text
	.section .text.entry, "ax"
	.globl parasite_entry
	.hidden parasite_entry
parasite_entry:
	andq	$-16, %rsp
	call	parasite_main
	int3
	/* where the trap leaves the ip: the SIGTRAP handler (parasite.c) knows its own trap by it */
	.globl parasite_trap_ip
	.hidden parasite_trap_ip
parasite_trap_ip:
	/* never resumed past the trap */
1:	jmp	1b

	/* The return of the blob's SIGTRAP handler: rt_sigreturn loads the registers and mask the
	 * handler wrote into its signal frame (x86-64 needs an SA_RESTORER of one's own). */
	.globl parasite_sigreturn
	.hidden parasite_sigreturn
parasite_sigreturn:
	movq	$15, %rax
	syscall
2:	jmp	2b
	.section .note.GNU-stack,"",@progbits
