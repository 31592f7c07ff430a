/* tests/vm/linux/lx-probe.c — a static Linux program (musl-gcc -static) for the system-call layer's
 * tests (tests/vm/test_linux.c): argv[1] names what to do, stdin is the job's input. Most modes
 * make hostile system calls by hand and print what came back, so the test can check that every
 * bad pointer, length and count was refused the way Linux would refuse it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define HOST_PAGE 0xffffffff80000000ull /* the host's system region (vm/x86.h SYS_GVA) */

static long raw(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                     "r"(r9) : "rcx", "r11", "memory");
    return ret;
}

static __thread int tls_counter = 5;

static char *slurp(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n, stdin)) > 0;) {
        n += r;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "echo";
    if (!strcmp(mode, "hostile-read")) { /* before stdio reads anything: input is left */
        char ok[4];
        printf("read-into-code %ld\n", raw(SYS_read, 0, (long)main, 1, 0, 0, 0));
        printf("read-into-host %ld\n", raw(SYS_read, 0, (long)HOST_PAGE, 1, 0, 0, 0));
        printf("read-past-end %ld\n", raw(SYS_read, 0, 0x3ffffffe, 4, 0, 0, 0));
        printf("readv-iov-host %ld\n", raw(SYS_readv, 0, (long)HOST_PAGE, 1, 0, 0, 0));
        printf("read-ok %ld\n", raw(SYS_read, 0, (long)ok, 2, 0, 0, 0));
        return 0;
    }
    if (!strcmp(mode, "fastpath")) { /* the answers the host's syscall entry gives itself */
        char buf[64];
        struct iovec v = {buf, sizeof buf};
        long df = 0;
        printf("ioctl %ld\n", raw(SYS_ioctl, 1, 0x5413, (long)buf, 0, 0, 0));
        long got = 0;
        for (long r; (r = raw(SYS_read, 0, (long)buf, sizeof buf, 0, 0, 0)) > 0;)
            got += r;
        printf("input %ld\n", got);
        printf("eof-read %ld %ld\n", raw(SYS_read, 0, (long)buf, 8, 0, 0, 0),
               raw(SYS_read, 0, (long)buf, 8, 0, 0, 0));
        printf("eof-readv %ld\n", raw(SYS_readv, 0, (long)&v, 1, 0, 0, 0));
        printf("eof-readv-huge %ld\n", raw(SYS_readv, 0, (long)&v, 2000, 0, 0, 0));
        printf("eof-read-neg %ld\n", raw(SYS_read, 0, (long)buf, -1, 0, 0, 0));
        printf("eof-read-fd1 %ld\n", raw(SYS_read, 1, (long)buf, 8, 0, 0, 0));
        printf("ioctl-fd3 %ld\n", raw(SYS_ioctl, 3, 0x5413, (long)buf, 0, 0, 0));
        /* with DF set the host answers, and gives DF back */
        long r;
        __asm__ volatile("std\n\tsyscall\n\tpushfq\n\tpopq %1\n\tcld"
                         : "=a"(r), "=r"(df) : "a"(16L), "D"(1L), "S"(0x5413L), "d"((long)buf)
                         : "rcx", "r11", "memory");
        printf("ioctl-df %ld df=%d\n", r, (int)((df >> 10) & 1));
        close(0);
        printf("closed-read %ld\n", raw(SYS_read, 0, (long)buf, 8, 0, 0, 0));
        fflush(stdout);
        close(1);
        char line[64];
        int n = snprintf(line, sizeof line, "closed-ioctl %ld\n",
                         raw(SYS_ioctl, 1, 0x5413, (long)buf, 0, 0, 0));
        raw(SYS_write, 2, (long)line, n, 0, 0, 0);
        return 0;
    }
    size_t len;
    char *in = slurp(&len);
    if (!in)
        return 3;
    if (!strcmp(mode, "echo")) { /* argv and input back; one log line */
        fprintf(stderr, "probe: %zu bytes, argc %d\n", len, argc);
        for (int i = 1; i < argc; i++)
            printf("argv[%d]=%s\n", i, argv[i]);
        fwrite(in, 1, len, stdout);
        return 0;
    }
    if (!strcmp(mode, "mutate") && argc > 2) { /* argv is the program's to change, per job */
        size_t n = strlen(argv[2]);
        printf("%zu %c%c\n", n, argv[2][0], argv[2][n / 2]);
        memset(argv[2], 'Z', n);
        return 0;
    }
    if (!strcmp(mode, "maps")) { /* 2000 mappings, holes punched, all still usable */
        static char *m[2000];
        long ok = 0;
        for (int i = 0; i < 2000; i++) {
            m[i] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m[i] != MAP_FAILED && m[i][0] == 0 && m[i][4095] == 0) {
                m[i][0] = 1;
                ok++;
            }
        }
        for (int i = 0; i < 2000; i += 2) /* every other page: 1000 ranges */
            if (m[i] != MAP_FAILED && munmap(m[i], 4096) != 0)
                ok -= 100000;
        for (int i = 0; i < 2000; i += 2) {
            m[i] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            ok += m[i] != MAP_FAILED && m[i][0] == 0; /* a reused page reads as zero */
        }
        char *big = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok += big != MAP_FAILED && munmap(big + 8192, 4096) == 0 && big[0] == 0;
        printf("maps ok=%ld\n", ok);
        return 0;
    }
    if (!strcmp(mode, "exit")) { /* exit with the status given as input */
        fprintf(stderr, "probe: giving up with status %d\nno newline at the end", atoi(in));
        return atoi(in);
    }
    if (!strcmp(mode, "abort")) {
        fprintf(stderr, "probe: about to abort\n");
        abort();
    }
    if (!strcmp(mode, "upper")) {
        for (size_t i = 0; i < len; i++)
            putchar(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
        return 0;
    }
    if (!strcmp(mode, "clock")) { /* what replay must feed back: the clock and random bytes */
        struct timespec ts;
        unsigned char r[8];
        clock_gettime(CLOCK_REALTIME, &ts);
        long got = raw(SYS_getrandom, (long)r, sizeof r, 0, 0, 0, 0);
        fprintf(stderr, "clock %lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
        printf("t=%lld.%09ld time=%lld random(%ld)=", (long long)ts.tv_sec, ts.tv_nsec,
               (long long)time(NULL), got);
        for (int i = 0; i < 8; i++)
            printf("%02x", r[i]);
        printf(" input=%zu\n", len);
        return 0;
    }
    if (!strcmp(mode, "libc")) { /* malloc, time, TLS, uname, ioctl, pid */
        struct timespec ts;
        struct utsname u;
        char *big = malloc(3 << 20); /* an mmap'd block */
        memset(big, 7, 3 << 20);
        big = realloc(big, 5 << 20); /* mremap refused: copied */
        tls_counter++;
        int tty = isatty(1), tty_errno = errno;
        printf("big=%d clock=%d tv=%d time=%d uname=%d:%s:%s tty=%d errno=%d pid=%d tls=%d\n",
               big && big[(3 << 20) - 1] == 7, clock_gettime(CLOCK_MONOTONIC, &ts) == 0,
               (int)(time(NULL) > 1700000000), (int)(ts.tv_sec >= 0), uname(&u), u.sysname,
               u.machine, tty, tty_errno, (int)getpid(), tls_counter);
        free(big);
        return 0;
    }
    if (!strcmp(mode, "hostile")) { /* every bad argument, with what came back */
        static struct iovec iov[4];
        char ok[] = "ok\n";
        iov[0] = (struct iovec){ok, 3};
        printf("writev-iovcnt-huge %ld\n", raw(SYS_writev, 1, (long)iov, 1 << 20, 0, 0, 0));
        printf("writev-iovcnt-neg %ld\n", raw(SYS_writev, 1, (long)iov, -1, 0, 0, 0));
        printf("writev-iovcnt-2p63 %ld\n", raw(SYS_writev, 1, (long)iov, (long)(1ull << 63), 0, 0, 0));
        iov[1] = (struct iovec){(void *)HOST_PAGE, 16};
        printf("writev-host-page %ld\n", raw(SYS_writev, 1, (long)iov, 2, 0, 0, 0));
        iov[1] = (struct iovec){(void *)0x3ffff000, 0x2000}; /* past the end of guest memory */
        printf("writev-past-end %ld\n", raw(SYS_writev, 1, (long)iov, 2, 0, 0, 0));
        iov[1] = (struct iovec){ok, (size_t)-1};
        printf("writev-len-huge %ld\n", raw(SYS_writev, 1, (long)iov, 2, 0, 0, 0));
        iov[1] = (struct iovec){ok, 1ull << 62};
        iov[2] = (struct iovec){ok, 1ull << 62};
        printf("writev-total-overflow %ld\n", raw(SYS_writev, 1, (long)iov, 3, 0, 0, 0));
        printf("writev-iov-in-host %ld\n", raw(SYS_writev, 1, (long)HOST_PAGE, 1, 0, 0, 0));
        printf("writev-iov-wraps %ld\n", raw(SYS_writev, 1, -8, 2, 0, 0, 0));
        printf("write-wraps %ld\n", raw(SYS_write, 1, -16, 64, 0, 0, 0));
        printf("write-host %ld\n", raw(SYS_write, 2, (long)HOST_PAGE + 0x5000, 64, 0, 0, 0));
        printf("read-bad-fd %ld\n", raw(SYS_read, 7, (long)ok, 1, 0, 0, 0));
        printf("write-stdin %ld\n", raw(SYS_write, 0, (long)ok, 1, 0, 0, 0));
        long cur = raw(SYS_brk, 0, 0, 0, 0, 0, 0);
        printf("brk-beyond %d\n", raw(SYS_brk, 0x7fffffff0000, 0, 0, 0, 0, 0) == cur);
        printf("brk-past-memory %d\n", raw(SYS_brk, 0x40000000, 0, 0, 0, 0, 0) == cur);
        printf("brk-below %d\n", raw(SYS_brk, 0x1000, 0, 0, 0, 0, 0) == cur);
        printf("mmap-2p64 %ld\n", raw(SYS_mmap, 0, -4096, 3, 0x22, -1, 0));
        printf("mmap-2p63 %ld\n", raw(SYS_mmap, 0, (long)(1ull << 63), 3, 0x22, -1, 0));
        printf("mmap-all-ones %ld\n", raw(SYS_mmap, 0, -1, 3, 0x22, -1, 0));
        printf("mmap-zero %ld\n", raw(SYS_mmap, 0, 0, 3, 0x22, -1, 0));
        printf("mmap-exec %ld\n", raw(SYS_mmap, 0, 4096, 7, 0x22, -1, 0));
        printf("mmap-file %ld\n", raw(SYS_mmap, 0, 4096, 3, 0x02, 0, 0));
        printf("mmap-fixed-host %ld\n", raw(SYS_mmap, (long)HOST_PAGE, 4096, 3, 0x32, -1, 0));
        printf("mmap-fixed-code %ld\n", raw(SYS_mmap, 0x401000, 4096, 3, 0x32, -1, 0));
        printf("munmap-wraps %ld\n", raw(SYS_munmap, 0x500000, -1, 0, 0, 0, 0));
        printf("munmap-code %ld\n", raw(SYS_munmap, 0x401000, 4096, 0, 0, 0, 0));
        printf("mprotect-host %ld\n", raw(SYS_mprotect, (long)HOST_PAGE, 4096, 1, 0, 0, 0));
        printf("mprotect-wraps %ld\n", raw(SYS_mprotect, 0x401000, -1, 1, 0, 0, 0));
        printf("clock-bad %ld\n", raw(SYS_clock_gettime, 99, (long)ok, 0, 0, 0, 0));
        printf("clock-host %ld\n", raw(SYS_clock_gettime, 0, (long)HOST_PAGE, 0, 0, 0, 0));
        printf("clock-code %ld\n", raw(SYS_clock_gettime, 0, (long)main, 0, 0, 0, 0));
        printf("uname-host %ld\n", raw(SYS_uname, (long)HOST_PAGE, 0, 0, 0, 0, 0));
        printf("arch-prctl-noncanonical %ld\n", raw(SYS_arch_prctl, 0x1001, -4096, 0, 0, 0, 0));
        printf("arch-prctl-bad %ld\n", raw(SYS_arch_prctl, 0x9999, 0, 0, 0, 0, 0));
        printf("sigaction-host %ld\n", raw(SYS_rt_sigaction, 2, 0, (long)HOST_PAGE, 8, 0, 0));
        printf("ioctl %ld\n", raw(SYS_ioctl, 1, 0x5413, (long)ok, 0, 0, 0));
        printf("open %ld\n", raw(SYS_open, (long)"/etc/passwd", 0, 0, 0, 0, 0));
        printf("kill-other %ld\n", raw(SYS_kill, 2, 9, 0, 0, 0, 0));
        fflush(stdout);
        return 0;
    }
    if (!strcmp(mode, "syscall")) /* the number given as input: unsupported ones end the job */
        return (int)raw((long)strtoull(in, NULL, 0), 0, 0, 0, 0, 0, 0);
    if (!strcmp(mode, "tramp")) {
        /* Jump to the host's system-call entry (an `out %eax, $0xa0` in the trampoline page)
         * pretending the call came from inside that page. */
        const unsigned char *p = (const unsigned char *)(HOST_PAGE + 0x5000);
        for (int i = 0; i < 4095; i++)
            if (p[i] == 0xe7 && p[i + 1] == 0xa0) {
                __asm__ volatile("movq %0, %%rcx\n\tmovl $39, %%eax\n\tjmp *%1"
                                 :: "r"(HOST_PAGE + 0x5000), "r"(p + i) : "rcx", "rax");
            }
        return 9;
    }
    if (!strcmp(mode, "bigout")) {
        for (int i = 0; i < 1 << 20; i++)
            fputs("0123456789abcdef", stdout);
        return 0;
    }
    if (!strcmp(mode, "null")) {
        volatile int *p = NULL;
        return *p;
    }
    if (!strcmp(mode, "spin"))
        for (;;)
            __asm__ volatile("");
    fprintf(stderr, "probe: unknown mode %s\n", mode);
    return 2;
}
