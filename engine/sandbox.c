/* engine/sandbox.c — run one program where the host is not visible (see sandbox.h).
 *
 * Three processes, because a PID namespace only applies to the children of whoever entered it:
 *   parent (an engine thread)  reads the output, enforces the wall clock and the output cap;
 *   supervisor                 unshares the namespaces (user first when not root), then forks
 *                              and waits;
 *   init (PID 1 of the new ns) builds the root: a private tmpfs with the binds, pivot_root into it,
 *                              the old root detached, the root made read-only; forks the program
 *                              and reaps until it ends, then reports its wait status. When init
 *                              exits the kernel kills whatever is left in the namespace, so
 *                              nothing a build started outlives it;
 *   program                    drops every capability and its uid, sets no_new_privs, the
 *                              rlimits and a seccomp filter, and execs.
 * Killing the supervisor kills init (PR_SET_PDEATHSIG), which kills the namespace.
 *
 * After fork only system calls and string functions are used (the engine is multi-threaded, so
 * nothing that may take a lock: no malloc, no stdio). Every step that fails is reported through a
 * close-on-exec pipe as "E<sentence>" and the run ends as ASPEN_SB_SETUP: a sandbox that cannot be
 * built never runs the program. Init writes "X<wait status>" on the same pipe when the program
 * ends.
 */
#include "sandbox.h"

#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

aspen_sandbox_limits aspen_sandbox_build_limits = {
    .cpu_seconds = 120,
    .memory_bytes = 2ull << 30,
    .file_bytes = 64ull << 20,
    .processes = 64,
    .open_files = 256,
    .wall_ms = 180000,
    .tmp_bytes = 256ull << 20,
    .output_keep = 64 * 1024,
    .output_max = 1024 * 1024,
};

/* ---- bind lists ------------------------------------------------------------------------------- */

int aspen_sandbox_bind_add(aspen_sandbox_binds *b, const char *host, const char *inside,
                           bool writable)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->v[i].inside, inside) == 0)
            return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        aspen_sandbox_bind *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->cap = cap;
    }
    char *h = strdup(host), *in = strdup(inside);
    if (!h || !in) {
        free(h);
        free(in);
        return -1;
    }
    b->v[b->n++] = (aspen_sandbox_bind){h, in, writable};
    return 0;
}

void aspen_sandbox_binds_free(aspen_sandbox_binds *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].host);
        free(b->v[i].inside);
    }
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

/* The PT_INTERP of an ELF file, or "" for a static one. */
static int elf_interp(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    Elf64_Ehdr eh;
    int rc = -1;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum > 64)
        goto done;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
            goto done;
        if (ph.p_type == PT_INTERP) {
            if (ph.p_filesz == 0 || ph.p_filesz >= cap)
                goto done;
            if (pread(fd, out, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
                goto done;
            out[ph.p_filesz - 1] = '\0';
            break;
        }
    }
    rc = 0;
done:
    close(fd);
    return rc;
}

int aspen_sandbox_add_program(aspen_sandbox_binds *b, const char *prog, char *why, size_t whycap)
{
    char interp[PATH_MAX];
    if (elf_interp(prog, interp, sizeof interp) != 0) {
        snprintf(why, whycap, "cannot read the program %s (not an x86-64 ELF file?): %s", prog,
                 strerror(errno ? errno : ENOEXEC));
        return -1;
    }
    if (aspen_sandbox_bind_add(b, prog, prog, false) != 0)
        goto oom;
    if (!interp[0])
        return 0;
    if (aspen_sandbox_bind_add(b, interp, interp, false) != 0)
        goto oom;
    /* The host's own dynamic loader says which libraries it would load (the toolchain is trusted:
     * this runs before, and outside, any build). */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(why, whycap, "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        snprintf(why, whycap, "cannot fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 2);
        }
        execl(interp, interp, "--list", prog, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[16384];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, whycap, "the dynamic loader %s could not list the libraries of %s", interp,
                 prog);
        return -1;
    }
    /* Lines: "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "\t/lib64/ld-... (0x...)" */
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *p = strstr(line, "=> ");
        p = p ? p + 3 : line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '/')
            continue;
        char *end = strchr(p, ' ');
        if (end)
            *end = '\0';
        if (aspen_sandbox_bind_add(b, p, p, false) != 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(why, whycap, "out of memory");
    return -1;
}

/* ---- the child side: system calls only --------------------------------------------------------- */

struct sb_child {
    const aspen_sandbox_spec *spec;
    char **mnt;        /* root + inside, per bind */
    bool *isdir;       /* per bind: a directory (else a file) */
    unsigned long *locked; /* per bind: mount flags of the host mount that must be kept */
    char root[PATH_MAX];
    char tmpdir[PATH_MAX + 8];
    char root_opts[96], tmp_opts[96];
    char uid_map[64], gid_map[64];
    bool as_root;
    uid_t uid;
    gid_t gid;
    int cap_last;
    int errfd;
};

static const char *err_text(int e)
{
    const char *s = strerrordesc_np(e);
    return s ? s : "unknown error";
}

/* "E<what>: <errno text>" on the error pipe, then exit: nothing has run. */
static _Noreturn void die(const struct sb_child *c, const char *what, const char *detail)
{
    int e = errno;
    char msg[PATH_MAX + 256];
    msg[0] = 'E';
    msg[1] = '\0';
    strncat(msg, what, sizeof msg - 2);
    if (detail) {
        strncat(msg, " ", sizeof msg - strlen(msg) - 1);
        strncat(msg, detail, sizeof msg - strlen(msg) - 1);
    }
    strncat(msg, ": ", sizeof msg - strlen(msg) - 1);
    strncat(msg, err_text(e), sizeof msg - strlen(msg) - 1);
    (void)!write(c->errfd, msg, strlen(msg) + 1); /* with its NUL: init's record may follow */
    _exit(125);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* mkdir -p of every parent of `path` (which lies in the tmpfs root). */
static int mkparents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static void build_root(const struct sb_child *c)
{
    const aspen_sandbox_spec *s = c->spec;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die(c, "making the mounts private", NULL);
    if (mount("tmpfs", c->root, "tmpfs", MS_NOSUID | MS_NODEV, c->root_opts) != 0)
        die(c, "mounting the sandbox's root tmpfs on", c->root);
    /* /tmp first: a bind below /tmp (a program kept there) lands on it rather than under it. */
    if (mkdir(c->tmpdir, 01777) != 0 && errno != EEXIST)
        die(c, "creating", "/tmp");
    if (mount("tmpfs", c->tmpdir, "tmpfs", MS_NOSUID | MS_NODEV, c->tmp_opts) != 0)
        die(c, "mounting the sandbox's /tmp", NULL);
    for (size_t i = 0; i < s->binds->n; i++) {
        const aspen_sandbox_bind *b = &s->binds->v[i];
        char *m = c->mnt[i];
        if (mkparents(m) != 0)
            die(c, "creating the mount point for", b->inside);
        if (c->isdir[i]) {
            if (mkdir(m, 0755) != 0 && errno != EEXIST)
                die(c, "creating the mount point for", b->inside);
        } else {
            int fd = open(m, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0)
                die(c, "creating the mount point for", b->inside);
            close(fd);
        }
        if (mount(b->host, m, NULL, MS_BIND | (c->isdir[i] ? MS_REC : 0), NULL) != 0)
            die(c, "bind-mounting", b->host);
        unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | c->locked[i];
        if (!b->writable)
            fl |= MS_RDONLY;
        if (mount(NULL, m, NULL, fl, NULL) != 0)
            die(c, "making the bind mount read-only:", b->inside);
    }
    if (chdir(c->root) != 0)
        die(c, "entering", c->root);
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        die(c, "pivot_root into", c->root);
    if (umount2(".", MNT_DETACH) != 0) /* the host's root, stacked under ours: gone */
        die(c, "detaching the host's root", NULL);
    if (chdir("/") != 0)
        die(c, "entering the sandbox's root", NULL);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, c->root_opts) != 0)
        die(c, "making the sandbox's root read-only", NULL);
    if (sethostname("aspen-build", 11) != 0)
        die(c, "setting the host name", NULL);
}

/* A seccomp filter, last before exec: system calls a compiler never makes and that widen the
 * kernel surface (sockets, namespaces and mounts, ptrace and other processes' memory, keys, BPF,
 * perf, io_uring, userfaultfd, modules) fail with EPERM; other architectures' and x32 calls kill
 * the process. Defence in depth: the namespaces and the uid are the boundary. */
static void install_seccomp(const struct sb_child *c)
{
    static const int denied[] = {
        SYS_socket, SYS_socketpair, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
        SYS_sendto, SYS_sendmsg, SYS_sendmmsg, SYS_recvfrom, SYS_recvmsg, SYS_recvmmsg,
        SYS_unshare, SYS_setns, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot,
        SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
        SYS_mount_setattr, SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
        SYS_pidfd_getfd, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_bpf, SYS_perf_event_open,
        SYS_userfaultfd, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
        SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load,
        SYS_kexec_file_load, SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl,
        SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_fanotify_init, SYS_personality,
        SYS_setdomainname, SYS_sethostname, SYS_settimeofday, SYS_clock_settime, SYS_adjtimex,
        SYS_iopl, SYS_ioperm, SYS_lookup_dcookie, SYS_vhangup, SYS_syslog,
    };
    enum { N = sizeof denied / sizeof denied[0] };
    struct sock_filter f[N + 8];
    unsigned k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    /* each denied call: if nr == X jump to the EPERM return at the end */
    for (unsigned i = 0; i < N; i++)
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i],
                                              (unsigned char)(N - i), 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & 0xffff));
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        die(c, "installing the seccomp filter", NULL);
}

static void set_limit(const struct sb_child *c, int res, uint64_t v, const char *name)
{
    /* CPU: SIGXCPU at the limit (gcc reports "CPU time limit exceeded"), SIGKILL a second later. */
    struct rlimit rl = {(rlim_t)v, (rlim_t)(res == RLIMIT_CPU ? v + 1 : v)};
    if (setrlimit(res, &rl) != 0)
        die(c, "setting", name);
}

static _Noreturn void run_program(const struct sb_child *c)
{
    const aspen_sandbox_spec *s = c->spec;
    /* Capabilities first: the bounding set can only be emptied while CAP_SETPCAP is held. */
    for (int cap = 0; cap <= c->cap_last; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            die(c, "dropping a capability from the bounding set", NULL);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        die(c, "clearing the ambient capabilities", NULL);
    if (c->as_root) {
        if (setgroups(0, NULL) != 0)
            die(c, "dropping the supplementary groups", NULL);
        if (setresgid(c->gid, c->gid, c->gid) != 0)
            die(c, "setting the sandbox's gid", NULL);
        if (setresuid(c->uid, c->uid, c->uid) != 0)
            die(c, "setting the sandbox's uid", NULL);
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) != 0)
        die(c, "dropping every capability", NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die(c, "setting no_new_privs", NULL);
    /* Verify rather than trust: fail closed if anything is still held. */
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0 || data[0].effective || data[0].permitted ||
        data[1].effective || data[1].permitted || (c->as_root && (getuid() == 0 || geteuid() == 0))) {
        errno = EPERM;
        die(c, "the sandbox still holds privileges after dropping them", NULL);
    }
    set_limit(c, RLIMIT_CPU, s->limits.cpu_seconds, "RLIMIT_CPU");
    set_limit(c, RLIMIT_AS, s->limits.memory_bytes, "RLIMIT_AS");
    set_limit(c, RLIMIT_FSIZE, s->limits.file_bytes, "RLIMIT_FSIZE");
    set_limit(c, RLIMIT_NPROC, s->limits.processes, "RLIMIT_NPROC");
    set_limit(c, RLIMIT_NOFILE, s->limits.open_files, "RLIMIT_NOFILE");
    set_limit(c, RLIMIT_CORE, 0, "RLIMIT_CORE");
    set_limit(c, RLIMIT_MEMLOCK, 0, "RLIMIT_MEMLOCK");
    if (chdir(s->cwd ? s->cwd : "/") != 0)
        die(c, "entering the working directory", s->cwd);
    install_seccomp(c);
    execve(s->argv[0], (char *const *)s->argv, (char *const *)s->envp);
    die(c, "running", s->argv[0]);
}

static _Noreturn void run_init(const struct sb_child *c)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    build_root(c);
    pid_t pid = fork();
    if (pid < 0)
        die(c, "forking the program", NULL);
    if (pid == 0)
        run_program(c);
    /* Init keeps only the error pipe: the output pipe must close when the program's side does. */
    close(0);
    close(1);
    close(2);
    int st = 0;
    for (;;) {
        int s2 = 0;
        pid_t r = waitpid(-1, &s2, 0);
        if (r == pid) {
            st = s2;
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
    }
    char rec[1 + sizeof st];
    rec[0] = 'X';
    memcpy(rec + 1, &st, sizeof st);
    (void)!write(c->errfd, rec, sizeof rec);
    _exit(0);
}

static _Noreturn void run_supervisor(struct sb_child *c, int outfd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    int dn = open("/dev/null", O_RDONLY);
    if (dn < 0 || dup2(dn, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0 ||
        dup3(c->errfd, 3, O_CLOEXEC) < 0)
        _exit(125);
    c->errfd = 3;
    /* Nothing of the engine's (its database, /dev/kvm, VM fds) reaches the build. */
    if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
        die(c, "closing the engine's file descriptors", NULL);

    if (!c->as_root) {
        /* A worker that dropped root itself is not dumpable, and then its /proc/self/uid_map
         * belongs to root: make this child (same uid as the worker) dumpable to write it. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        if (unshare(CLONE_NEWUSER) != 0)
            die(c, "creating a user namespace (unshare CLONE_NEWUSER)", NULL);
        if (write_file("/proc/self/setgroups", "deny") != 0 ||
            write_file("/proc/self/uid_map", c->uid_map) != 0 ||
            write_file("/proc/self/gid_map", c->gid_map) != 0)
            die(c, "mapping the user namespace's uid and gid", NULL);
    }
    static const struct {
        int flag;
        const char *name;
    } ns[] = {{CLONE_NEWNS, "a mount namespace (CLONE_NEWNS)"},
              {CLONE_NEWNET, "a network namespace (CLONE_NEWNET)"},
              {CLONE_NEWIPC, "an IPC namespace (CLONE_NEWIPC)"},
              {CLONE_NEWUTS, "a UTS namespace (CLONE_NEWUTS)"},
              {CLONE_NEWCGROUP, "a cgroup namespace (CLONE_NEWCGROUP)"},
              {CLONE_NEWPID, "a PID namespace (CLONE_NEWPID)"}};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        if (unshare(ns[i].flag) != 0)
            die(c, "creating", ns[i].name);
    pid_t pid = fork();
    if (pid < 0)
        die(c, "forking the sandbox's init", NULL);
    if (pid == 0)
        run_init(c);
    close(0);
    close(1);
    close(2);
    close(3);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(0);
}

/* ---- the parent side ---------------------------------------------------------------------------- */

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cap_last_cap(void)
{
    int v = 40;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = 40;
        fclose(f);
    }
    return v < 0 || v > 63 ? 63 : v;
}

/* Mount flags of the host mount a bind comes from that an unprivileged remount must keep. */
static unsigned long locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long fl = 0;
    if (statvfs(path, &sv) == 0) {
        if (sv.f_flag & ST_NOEXEC)
            fl |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
            fl |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
            fl |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
            fl |= MS_RELATIME;
        if (sv.f_flag & ST_RDONLY)
            fl |= MS_RDONLY;
    }
    return fl;
}

static int setup_fail(aspen_sandbox_result *res, const char *fmt, const char *a, int e)
{
    res->end = ASPEN_SB_SETUP;
    snprintf(res->why, sizeof res->why, fmt, a, strerror(e));
    return -1;
}

int aspen_sandbox_run(const aspen_sandbox_spec *spec, aspen_sandbox_result *res)
{
    memset(res, 0, sizeof *res);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const aspen_sandbox_limits *L = &spec->limits;
    struct sb_child c = {.spec = spec, .cap_last = cap_last_cap()};
    c.as_root = geteuid() == 0;
    c.uid = c.as_root ? ASPEN_SANDBOX_UID : getuid();
    c.gid = c.as_root ? ASPEN_SANDBOX_GID : getgid();
    snprintf(c.uid_map, sizeof c.uid_map, "%u %u 1\n", (unsigned)c.uid, (unsigned)c.uid);
    snprintf(c.gid_map, sizeof c.gid_map, "%u %u 1\n", (unsigned)c.gid, (unsigned)c.gid);
    if (!realpath(spec->scratch_dir, c.root))
        return setup_fail(res, "the sandbox's scratch directory %s: %s", spec->scratch_dir, errno);
    snprintf(c.tmpdir, sizeof c.tmpdir, "%s/tmp", c.root);
    snprintf(c.root_opts, sizeof c.root_opts, "size=%u,nr_inodes=%u,mode=0755", 1u << 20, 4096u);
    snprintf(c.tmp_opts, sizeof c.tmp_opts, "size=%llu,nr_inodes=%u,mode=1777",
             (unsigned long long)L->tmp_bytes, 4096u);
    size_t n = spec->binds ? spec->binds->n : 0;
    c.mnt = calloc(n + 1, sizeof *c.mnt);
    c.isdir = calloc(n + 1, sizeof *c.isdir);
    c.locked = calloc(n + 1, sizeof *c.locked);
    int rc = -1;
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, pidfd = -1;
    char *buf = NULL;
    if (!c.mnt || !c.isdir || !c.locked) {
        setup_fail(res, "%sout of memory (%s)", "", ENOMEM);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const aspen_sandbox_bind *b = &spec->binds->v[i];
        struct stat st;
        if (b->inside[0] != '/' || strstr(b->inside, "..")) {
            setup_fail(res, "a bind's path inside the sandbox must be absolute: %s (%s)",
                       b->inside, EINVAL);
            goto done;
        }
        if (stat(b->host, &st) != 0) {
            setup_fail(res, "%s, needed inside the build sandbox: %s", b->host, errno);
            goto done;
        }
        c.isdir[i] = S_ISDIR(st.st_mode);
        c.locked[i] = locked_flags(b->host) & ~(unsigned long)(b->writable ? 0 : MS_RDONLY);
        if (!(c.mnt[i] = malloc(strlen(c.root) + strlen(b->inside) + 1))) {
            setup_fail(res, "%sout of memory (%s)", "", ENOMEM);
            goto done;
        }
        strcpy(c.mnt[i], c.root);
        strcat(c.mnt[i], b->inside);
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        setup_fail(res, "%scannot create a pipe: %s", "", errno);
        goto done;
    }
    /* Above 3, so the child's dup2 onto 0-3 never overwrites one of them (a process with a
     * closed stdin gets a pipe at fd 0). */
    int *fds[] = {&out[0], &out[1], &errp[0], &errp[1]};
    for (size_t i = 0; i < 4; i++) {
        if (*fds[i] > 3)
            continue;
        int nfd = fcntl(*fds[i], F_DUPFD_CLOEXEC, 10);
        if (nfd < 0) {
            setup_fail(res, "%scannot move a pipe: %s", "", errno);
            goto done;
        }
        close(*fds[i]);
        *fds[i] = nfd;
    }
    c.errfd = errp[1];
    pid_t pid = fork();
    if (pid < 0) {
        setup_fail(res, "%scannot fork: %s", "", errno);
        goto done;
    }
    if (pid == 0)
        run_supervisor(&c, out[1]);
    close(out[1]);
    close(errp[1]);
    out[1] = errp[1] = -1;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    size_t keep = L->output_keep, len = 0;
    buf = malloc(keep + 1);
    bool eof = false, exited = false, killed = false, reaped = false;
    aspen_sandbox_end kill_end = ASPEN_SB_EXITED;
    while (!eof || !exited) {
        double left = (double)L->wall_ms - ms_since(&t0);
        if (left <= 0 && !killed) {
            kill(pid, SIGKILL);
            killed = true;
            kill_end = ASPEN_SB_TIMEOUT;
        }
        struct pollfd p[2] = {{eof ? -1 : out[0], POLLIN, 0}, {exited ? -1 : pidfd, POLLIN, 0}};
        int timeout = killed ? 100 : (left > 100 ? 100 : (int)left + 1);
        if (pidfd < 0 && !exited) { /* no pidfd (old kernel): poll the child */
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid)
                exited = reaped = true;
            timeout = 10;
        }
        int r = poll(p, 2, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (p[1].revents & POLLIN))
            exited = true;
        if (r > 0 && p[0].revents) {
            char chunk[8192];
            ssize_t k = read(out[0], chunk, sizeof chunk);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                eof = true;
                continue;
            }
            res->output_total += (size_t)k;
            if (buf && len < keep) {
                size_t take = (size_t)k < keep - len ? (size_t)k : keep - len;
                memcpy(buf + len, chunk, take);
                len += take;
            }
            if (res->output_total > L->output_max && !killed) {
                kill(pid, SIGKILL);
                killed = true;
                kill_end = ASPEN_SB_OUTPUT;
            }
        }
        if (killed && exited && !eof && ms_since(&t0) > (double)L->wall_ms + 5000)
            break; /* something outside the namespace holds the pipe: stop reading */
    }
    if (!reaped) {
        if (!exited && !killed)
            kill(pid, SIGKILL); /* poll failed: never leave it running */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    if (buf)
        buf[len] = '\0';
    res->output = buf;
    buf = NULL;
    res->ms = ms_since(&t0);

    /* What init or a failed setup step said. */
    char msg[1024];
    size_t mlen = 0;
    for (;;) {
        ssize_t k = read(errp[0], msg + mlen, sizeof msg - 1 - mlen);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        mlen += (size_t)k;
        if (mlen == sizeof msg - 1)
            break;
    }
    msg[mlen] = '\0';
    if (mlen > 0 && msg[0] == 'E') {
        res->end = ASPEN_SB_SETUP;
        snprintf(res->why, sizeof res->why,
                 "the build sandbox could not be set up (%s); nothing was run. Builds from "
                 "source need Linux namespaces (root, or unprivileged user namespaces)",
                 msg + 1);
        goto done;
    }
    rc = 0;
    if (killed) {
        res->end = kill_end;
        if (kill_end == ASPEN_SB_TIMEOUT)
            snprintf(res->why, sizeof res->why,
                     "stopped after %llu ms (the build's wall-clock limit)",
                     (unsigned long long)L->wall_ms);
        else
            snprintf(res->why, sizeof res->why,
                     "stopped: it printed more than %zu bytes (the build's output limit)",
                     L->output_max);
    } else if (mlen == 1 + sizeof(int) && msg[0] == 'X') {
        int st;
        memcpy(&st, msg + 1, sizeof st);
        if (WIFEXITED(st)) {
            res->end = ASPEN_SB_EXITED;
            res->code = WEXITSTATUS(st);
            if (res->code)
                snprintf(res->why, sizeof res->why, "exit status %d", res->code);
        } else {
            res->end = ASPEN_SB_SIGNALED;
            res->code = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            snprintf(res->why, sizeof res->why, "killed by signal %d (%s)%s", res->code,
                     strsignal(res->code),
                     res->code == SIGXCPU || res->code == SIGKILL
                         ? ": a limit (CPU time or memory) was reached"
                         : "");
        }
    } else {
        res->end = ASPEN_SB_SIGNALED;
        res->code = SIGKILL;
        snprintf(res->why, sizeof res->why, "the sandbox ended without a status (killed)");
    }
done:
    if (out[0] >= 0)
        close(out[0]);
    if (out[1] >= 0)
        close(out[1]);
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (pidfd >= 0)
        close(pidfd);
    free(buf);
    if (c.mnt)
        for (size_t i = 0; i < n; i++)
            free(c.mnt[i]);
    free(c.mnt);
    free(c.isdir);
    free(c.locked);
    return rc;
}
