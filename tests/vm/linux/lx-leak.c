/* tests/vm/linux/lx-leak.c — a hostile static Linux program for isolation between jobs on one
 * warm VM (tests/vm/test_linux.c): input "plant" changes everything a job of a Linux program can
 * change — globals, TLS, the program break, anonymous mappings, the FS and GS base, XMM registers,
 * MXCSR, its standard streams — and input "check" prints all of it. A check after a plant must
 * print exactly what a check on a fresh VM prints. "fault", "socket" and "spin" change some of it
 * and end the job by a fault, an unsupported system call and a timeout. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int counter;
static __thread long tls_mark;
static char *last_map;

int main(void)
{
    char in[16] = {0};
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    if (strstr(in, "plant")) { /* also as a JSON string, through the engine */
        counter = 0x1234;
        tls_mark = 0x5151;
        char *b = (char *)syscall(SYS_brk, 0); /* musl's sbrk only reads the break */
        if ((char *)syscall(SYS_brk, b + (1 << 20)) != b + (1 << 20))
            return 4;
        memset(b, 0xab, 1 << 20);
        last_map = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memset(last_map, 0xcd, 64 << 10);
        printf("planted\n");
        fflush(stdout);
        close(2);
        unsigned int mx = 0x7f80; /* round toward zero, all masked */
        uint64_t m = 0x1eaf1eaf1eaf1eafull, gs = 0x5555000;
        __asm__ volatile("ldmxcsr %0\n\tmovq %1, %%xmm8\n\tmovq %1, %%xmm0" :: "m"(mx), "r"(m));
        syscall(SYS_arch_prctl, 0x1001, gs); /* ARCH_SET_GS */
        /* the thread pointer last: libc cannot run after this, so exit by hand */
        __asm__ volatile("wrfsbase %0\n\tmovl $231, %%eax\n\txorl %%edi, %%edi\n\tsyscall"
                         :: "r"(0x7777000ull) : "rax", "rdi", "rcx", "r11", "memory");
        return 1;
    }
    if (strstr(in, "fault")) { /* after a plant-like change, end the job by faulting... */
        tls_mark = 0x7171;
        syscall(SYS_arch_prctl, 0x1001, 0x6666000ull);
        return *(volatile int *)0;
    }
    if (strstr(in, "socket")) { /* ... by an unsupported call ... */
        counter = 99;
        return (int)syscall(41, 2, 1, 0);
    }
    if (strstr(in, "spin")) { /* ... or by running past the deadline */
        tls_mark = 0x7272;
        for (;;)
            __asm__ volatile("");
    }
    unsigned int mx;
    uint64_t x8, gs, fs;
    __asm__ volatile("stmxcsr %0\n\tmovq %%xmm8, %1\n\trdgsbase %2\n\trdfsbase %3"
                     : "=m"(mx), "=r"(x8), "=r"(gs), "=r"(fs));
    char *m = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int zero = 1;
    for (int i = 0; i < 64 << 10; i++)
        zero &= m[i] == 0;
    char *b = sbrk(0);
    fprintf(stderr, "stderr works\n");
    printf("counter=%d tls=%ld brk=%p map=%p zero=%d last_map=%p mxcsr=%#x xmm8=%#llx gs=%#llx "
           "fs_is_tp=%d\n",
           counter, tls_mark, (void *)b, (void *)m, zero, (void *)last_map, mx,
           (unsigned long long)x8, (unsigned long long)gs, fs == (uint64_t)(uintptr_t)__builtin_thread_pointer());
    return 0;
}
