/* engine/sandbox.h — run one program (the compiler of a `--source` build) where the host is not
 * visible: its own mount, PID, network, IPC, UTS and cgroup namespaces, a read-only tmpfs root
 * holding only the bind mounts it is given, an unprivileged uid with no capabilities and
 * no_new_privs, a seccomp filter, rlimits, a wall-clock kill, and its output captured and capped. Anything that cannot be set up fails the
 * run (ASPEN_SB_SETUP) — nothing is ever run unconfined. See docs/OPERATING.md, "What a submitter
 * can and cannot do".
 */
#ifndef ASPEN_SANDBOX_H
#define ASPEN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aspen_sandbox_limits {
    uint64_t cpu_seconds;   /* RLIMIT_CPU of each process */
    uint64_t memory_bytes;  /* RLIMIT_AS of each process */
    uint64_t file_bytes;    /* RLIMIT_FSIZE: the largest file it may write */
    uint64_t processes;     /* RLIMIT_NPROC of the sandbox's uid */
    uint64_t open_files;    /* RLIMIT_NOFILE */
    uint64_t wall_ms;       /* the whole run, then everything in it is killed */
    uint64_t tmp_bytes;     /* size of the writable /tmp (a tmpfs) */
    size_t output_keep;     /* bytes of stdout+stderr kept for the caller */
    size_t output_max;      /* more output than this: the run is killed */
} aspen_sandbox_limits;

/* The limits a `--source` build runs with. Tests lower them; nothing else should. */
extern aspen_sandbox_limits aspen_sandbox_build_limits;

/* Binds are mounted in order; a bind's mount point is created in the tmpfs root (parents
 * included), so no bind may lie inside an earlier read-only one. */
typedef struct aspen_sandbox_bind {
    char *host;   /* an existing file or directory on the host (malloc'd) */
    char *inside; /* absolute path inside the sandbox (malloc'd) */
    bool writable; /* otherwise read-only (and always nosuid, nodev) */
} aspen_sandbox_bind;

/* A growable list of binds; every string in it is owned by it. */
typedef struct aspen_sandbox_binds {
    aspen_sandbox_bind *v;
    size_t n, cap;
} aspen_sandbox_binds;

typedef struct aspen_sandbox_spec {
    const char *const *argv;  /* argv[0] is an absolute path inside the sandbox */
    const char *const *envp;  /* the program's whole environment */
    const char *cwd;          /* inside the sandbox */
    const aspen_sandbox_binds *binds;
    const char *scratch_dir;  /* an empty host directory the sandbox root is mounted on */
    aspen_sandbox_limits limits;
} aspen_sandbox_spec;

typedef enum aspen_sandbox_end {
    ASPEN_SB_EXITED,   /* code = exit status */
    ASPEN_SB_SIGNALED, /* code = signal number */
    ASPEN_SB_TIMEOUT,  /* killed at limits.wall_ms */
    ASPEN_SB_OUTPUT,   /* killed: printed more than limits.output_max */
    ASPEN_SB_SETUP,    /* the sandbox could not be built: nothing ran; why says what failed */
} aspen_sandbox_end;

typedef struct aspen_sandbox_result {
    aspen_sandbox_end end;
    int code;
    char *output;        /* malloc'd, NUL-terminated, at most limits.output_keep bytes */
    size_t output_total; /* everything it printed, kept or not */
    double ms;           /* wall time of the run */
    char why[512];       /* for ASPEN_SB_SETUP, or a sentence for any end other than EXITED 0 */
} aspen_sandbox_result;

/* The uid and gid the sandboxed program runs as when the engine runs as root. */
#define ASPEN_SANDBOX_UID 65534u
#define ASPEN_SANDBOX_GID 65534u

/* Runs spec->argv confined. Returns 0 when the program ran (see res->end and res->code), -1 when
 * the sandbox could not be set up (res->end = ASPEN_SB_SETUP and res->why say why). Free
 * res->output. Safe to call from any thread of a multi-threaded process. */
int aspen_sandbox_run(const aspen_sandbox_spec *spec, aspen_sandbox_result *res);

/* Appends a bind (copies both strings); a second bind at the same inside path is ignored.
 * Returns 0, or -1 when out of memory. */
int aspen_sandbox_bind_add(aspen_sandbox_binds *b, const char *host, const char *inside,
                           bool writable);

/* Adds read-only binds for the program at host path `prog` (at the same path inside), its ELF
 * interpreter and every shared library the dynamic loader resolves for it. Returns 0, or -1 with
 * a sentence in why. */
int aspen_sandbox_add_program(aspen_sandbox_binds *b, const char *prog, char *why, size_t whycap);

void aspen_sandbox_binds_free(aspen_sandbox_binds *b);

/* ---- what a submitter's guest.flags may hold (engine/build.c) ---------------------------------- */

/* Splits `text` (a guest.flags file: words, '#' comment lines) into flags and checks each against
 * the allow-list file at allow_path (guests/sdk/guest-flags.allow). Returns 0 with the flags in
 * *flags (free with aspen_build_flags_free), or -1 with a sentence naming the refused flag and the
 * allowed set in why. */
int aspen_build_flags_check(const char *allow_path, const char *text, char ***flags, size_t *n,
                            char *why, size_t whycap);
void aspen_build_flags_free(char **flags, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ASPEN_SANDBOX_H */
