/* vecregs STATEFILE: vector registers holding patterns across a dump and a restore. The main
 * loop (assembly, calling nothing) compares, over and over, ymm8 and ymm15 (their upper halves
 * are XSAVE's AVX component) and xmm12 with patterns in memory and, on a CPU with AVX-512,
 * zmm8 and zmm15 (the upper 256 bits: ZMM_Hi256), zmm16, zmm23 and zmm31 (Hi16_ZMM) and the
 * mask registers k1, k4 and k7; a difference sets `bad`. SIGUSR1 (whose handler's frame keeps
 * every register) makes the loop return to say "check ok level=avx|avx512 bad=0" (or bad=N),
 * then load the patterns again and go on. Scratch: ymm0/zmm0 and k0. */
#include "workload.h"
#include <stdint.h>

static uint64_t pat[32][8] __attribute__((aligned(64)));
static uint64_t kpat[8];
static volatile int bad;

__attribute__((target("avx"), noinline)) static void avx_loop(void) {
	__asm__ volatile(
		"vmovdqu 8*64(%0), %%ymm8\n\tvmovdqu 15*64(%0), %%ymm15\n\tvmovdqu 12*64(%0), %%xmm12\n"
		"1:\n\tcmpl $0, (%1)\n\tjne 9f\n"
		"\tvpxor 8*64(%0), %%ymm8, %%ymm0\n\tvptest %%ymm0, %%ymm0\n\tjnz 8f\n"
		"\tvpxor 15*64(%0), %%ymm15, %%ymm0\n\tvptest %%ymm0, %%ymm0\n\tjnz 8f\n"
		"\tvpxor 12*64(%0), %%xmm12, %%xmm0\n\tvptest %%xmm0, %%xmm0\n\tjnz 8f\n"
		"\tpause\n\tjmp 1b\n"
		"8:\n\tincl (%2)\n\tjmp 1b\n"
		"9:\n"
		:: "r"(pat), "r"(&wl_want_check), "r"(&bad) : "memory", "cc", "xmm0", "xmm8", "xmm12", "xmm15");
}

__attribute__((target("avx512f"), noinline)) static void avx512_loop(void) {
	__asm__ volatile(
		"vmovdqu64 8*64(%0), %%zmm8\n\tvmovdqu64 15*64(%0), %%zmm15\n\tvmovdqu64 16*64(%0), %%zmm16\n"
		"\tvmovdqu64 23*64(%0), %%zmm23\n\tvmovdqu64 31*64(%0), %%zmm31\n"
		"\tkmovw 1*8(%3), %%k1\n\tkmovw 4*8(%3), %%k4\n\tkmovw 7*8(%3), %%k7\n"
		"1:\n\tcmpl $0, (%1)\n\tjne 9f\n"
		"\tvpcmpq $4, 8*64(%0), %%zmm8, %%k0\n\tkortestw %%k0, %%k0\n\tjnz 8f\n"
		"\tvpcmpq $4, 15*64(%0), %%zmm15, %%k0\n\tkortestw %%k0, %%k0\n\tjnz 8f\n"
		"\tvpcmpq $4, 16*64(%0), %%zmm16, %%k0\n\tkortestw %%k0, %%k0\n\tjnz 8f\n"
		"\tvpcmpq $4, 23*64(%0), %%zmm23, %%k0\n\tkortestw %%k0, %%k0\n\tjnz 8f\n"
		"\tvpcmpq $4, 31*64(%0), %%zmm31, %%k0\n\tkortestw %%k0, %%k0\n\tjnz 8f\n"
		"\tkmovw %%k1, %%eax\n\tcmpw 1*8(%3), %%ax\n\tjne 8f\n"
		"\tkmovw %%k4, %%eax\n\tcmpw 4*8(%3), %%ax\n\tjne 8f\n"
		"\tkmovw %%k7, %%eax\n\tcmpw 7*8(%3), %%ax\n\tjne 8f\n"
		"\tpause\n\tjmp 1b\n"
		"8:\n\tincl (%2)\n\tjmp 1b\n"
		"9:\n"
		:: "r"(pat), "r"(&wl_want_check), "r"(&bad), "r"(kpat)
		: "memory", "cc", "rax", "xmm0", "xmm8", "xmm15", "xmm16", "xmm23", "xmm31", "k0", "k1", "k4", "k7");
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	wl_detach(argv[1]);
	for (int r = 0; r < 32; r++)
		for (int i = 0; i < 8; i++) pat[r][i] = 0x0123456789abcdefULL * (uint64_t)(r + 1) ^ ((uint64_t)i << 56 | (uint64_t)r << 48);
	for (int k = 0; k < 8; k++) kpat[k] = 0x1111u * (unsigned)k ^ 0x8421u;
	__builtin_cpu_init();
	int wide = __builtin_cpu_supports("avx512f");
	if (!wide && !__builtin_cpu_supports("avx")) {
		wl_say("error no AVX");
		return 1;
	}
	wl_handle_usr1();
	wl_say("ready pid=%d", (int)getpid());
	for (;;) {
		if (wide) avx512_loop();
		else avx_loop();
		wl_want_check = 0;
		wl_say("check %s level=%s bad=%d", bad ? "bad" : "ok", wide ? "avx512" : "avx", bad);
	}
}
