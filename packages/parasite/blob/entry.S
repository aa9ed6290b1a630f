/* Entry of the parasite blob (trap mode). The dumper sets rdi = command, rsi = argument
 * area, rsp = top of the parasite stack, rip = blob start, then continues the thread.
 * The command's result stays in rax; int3 hands control back to the dumper. */
	.text
	.section .text.entry, "ax"
	.globl parasite_entry
parasite_entry:
	andq	$-16, %rsp
	call	parasite_main
	int3
	/* never resumed past the trap */
1:	jmp	1b
	.section .note.GNU-stack,"",@progbits
