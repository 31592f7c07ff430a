/* tests/engine/sandbox_probe.c — a hostile stand-in for a compiler, run inside the build sandbox
 * by test_build.c: it reports who it is and what it can reach, or misbehaves on purpose (fork
 * bomb, spin, allocate, write a huge file, flood its output, sleep) so the tests can check that
 * each limit stops it. Built without sanitizers: it runs where /proc does not exist.
 *
 *   sandbox_probe id | read PATH | write PATH | ls DIR | touch PATH | forkbomb | spin | alloc |
 *                 bigfile PATH | flood | sleep | syscalls
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *m = argv[1];
    if (!strcmp(m, "id")) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {0};
        syscall(SYS_capget, &h, d);
        char host[64] = "";
        gethostname(host, sizeof host);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(22)};
        a.sin_addr.s_addr = htonl(0x7f000001);
        int c = s >= 0 ? connect(s, (struct sockaddr *)&a, sizeof a) : -1;
        int e = errno;
        printf("uid=%u euid=%u gid=%u capeff=%x,%x capprm=%x,%x pid=%d host=%s connect=%s\n",
               getuid(), geteuid(), getgid(), d[0].effective, d[1].effective, d[0].permitted,
               d[1].permitted, (int)getpid(), host, c == 0 ? "ok" : strerror(e));
        return 0;
    }
    if (!strcmp(m, "syscalls")) {
        /* what the seccomp filter refuses: each should say "Operation not permitted" */
        int r = socket(AF_UNIX, SOCK_STREAM, 0);
        printf("socket: %s\n", r >= 0 ? "ok" : strerror(errno));
        r = unshare(CLONE_NEWUSER);
        printf("unshare: %s\n", r == 0 ? "ok" : strerror(errno));
        long p = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        printf("ptrace: %s\n", p == 0 ? "ok" : strerror(errno));
        long b = syscall(SYS_bpf, 0, NULL, 0);
        printf("bpf: %s\n", b >= 0 ? "ok" : strerror(errno));
        long u = syscall(SYS_io_uring_setup, 1, NULL);
        printf("io_uring_setup: %s\n", u >= 0 ? "ok" : strerror(errno));
        return 0;
    }
    if (!strcmp(m, "read") && argc > 2) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
            printf("read %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        char buf[4096];
        ssize_t k;
        while ((k = read(fd, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)k, stdout);
        return 0;
    }
    if ((!strcmp(m, "write") || !strcmp(m, "touch")) && argc > 2) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            printf("write %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        (void)!write(fd, "x", 1);
        close(fd);
        printf("wrote %s\n", argv[2]);
        return 0;
    }
    if (!strcmp(m, "ls") && argc > 2) {
        DIR *d = opendir(argv[2]);
        if (!d) {
            printf("ls %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                printf("%s\n", e->d_name);
        closedir(d);
        return 0;
    }
    if (!strcmp(m, "forkbomb")) {
        int ok = 0, fail = 0;
        for (int i = 0; i < 100000; i++) {
            pid_t p = fork();
            if (p == 0) {
                for (;;) {
                    if (fork() < 0)
                        pause();
                }
            }
            if (p > 0)
                ok++;
            else
                fail++;
            if (fail == 1) {
                printf("fork failed after %d children: %s\n", ok, strerror(errno));
                fflush(stdout);
            }
            if (fail > 100)
                break;
        }
        for (;;)
            pause();
    }
    if (!strcmp(m, "spin")) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    }
    if (!strcmp(m, "alloc")) {
        size_t total = 0;
        for (;;) {
            char *p = malloc(64u << 20);
            if (!p) {
                printf("malloc failed after %zu MiB\n", total >> 20);
                return 3;
            }
            memset(p, 1, 64u << 20);
            total += 64u << 20;
        }
    }
    if (!strcmp(m, "bigfile") && argc > 2) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            printf("bigfile %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        signal(SIGXFSZ, SIG_IGN); /* see the error instead of dying of the signal */
        static char buf[1 << 20];
        size_t total = 0;
        for (;;) {
            ssize_t k = write(fd, buf, sizeof buf);
            if (k < 0) {
                printf("write failed after %zu MiB: %s\n", total >> 20, strerror(errno));
                return 4;
            }
            total += (size_t)k;
        }
    }
    if (!strcmp(m, "flood")) {
        static char line[4096];
        memset(line, 'A', sizeof line - 1);
        line[sizeof line - 2] = '\n';
        for (;;)
            (void)!write(1, line, sizeof line - 1);
    }
    if (!strcmp(m, "sleep")) {
        for (;;)
            pause();
    }
    return 2;
}
