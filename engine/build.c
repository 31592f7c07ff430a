/* engine/build.c — build a `--source` guest from its source directory with the SDK, once, inside
 * the build sandbox (sandbox.h): the sources are the submitter's, so neither they nor their
 * guest.flags may run a command or read a file of the host.
 *
 * The steps, each of which refuses with a sentence saying what and why:
 *   1. The source tree is walked without following anything (O_NOFOLLOW, no stat through links):
 *      regular files, directories, and symlinks whose target stays inside the tree; anything else
 *      (a link leaving the tree, a FIFO, a device) is refused, and so are trees over the caps on
 *      entries, depth, file size and total size. Dot-files are neither hashed nor copied.
 *   2. The cache key is a SHA-256 of the tree's paths and contents, the SDK tree (names, sizes,
 *      times), vm/include/abi.h, the allow-list, the toolchain and this recipe's version. A hit answers
 *      without copying or compiling (well under 2 ms for a small guest).
 *   3. On a miss the tree is copied (the same walk) into a private directory and hashed again: the
 *      key stored is the hash of exactly what was compiled, whatever changes in the source
 *      directory meanwhile.
 *   4. guest.flags (of the copy) is checked against guests/sdk/guest-flags.allow, the one
 *      allow-list scripts/build-guest.sh uses too; a refused flag is named with why, in a few
 *      words, and where the allow-list and its explanation are. The same checks of the tree
 *      (eng_source_refusal: C sources, not a Rust guest, not a plain libc program, guest.flags)
 *      run at submit too, so the submitter hears at once; here they run again on the copy.
 *   5. The SDK (trusted code, fixed flags) is compiled once per key into CACHE/sdk-<key>/, and the
 *      guest is compiled and linked, each run in the sandbox: /src (the copy, read-only), the SDK
 *      at /aspen/guests/sdk, vm/include/abi.h at /aspen/vm/include/abi.h, the toolchain's own files, a small /tmp
 *      and /out — and nothing else of the host. -nostdinc: only the SDK's and gcc's freestanding
 *      headers are on the include path.
 *   6. The binary lands in CACHE_DIR/<key>/guest with its build.log, written to a temporary
 *      directory and renamed into place, so concurrent builders never see half a file.
 * scripts/build-guest.sh remains the developers' builder for their own (trusted) sources; it is
 * not run here.
 */
#include "engine_internal.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Caps on a submitted source tree. */
#define SRC_MAX_ENTRIES 2000
#define SRC_MAX_DEPTH 16
#define SRC_MAX_FILE (8u << 20)
#define SRC_MAX_TOTAL (64u << 20)
#define FLAGS_MAX_BYTES 4096
#define FLAGS_MAX_COUNT 64
#define FLAG_MAX_LEN 128

/* Bumped whenever the flags or layout below change what a build produces. */
#define RECIPE "aspen-sandboxed-build-2"

/* ---- the source tree ---------------------------------------------------------------------------- */

struct walk {
    aspen_store_sha256_ctx *h;   /* NULL: copy only */
    aspen_store_sha256_ctx *src; /* also, the tree alone (the digest pinned at submit), or NULL */
    int entries;
    uint64_t total;
    char err[768];
};

/* Feeds both digests the walk keeps: the build's key and the tree's own. */
static void whash(struct walk *w, const void *p, size_t n)
{
    if (w->h)
        aspen_store_sha256_update(w->h, p, n);
    if (w->src)
        aspen_store_sha256_update(w->src, p, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does `target`, a symlink found at relative path `rel`, stay inside the tree? Lexically:
 * relative, and no ".." climbs above the tree's root. */
static bool link_inside(const char *rel, const char *target)
{
    if (target[0] == '/' || target[0] == '\0')
        return false;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        if (*p == '/')
            depth++; /* the link's directory is `depth` levels below the root */
    const char *p = target;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return true;
}

static int walk_fail(struct walk *w, const char *fmt, const char *rel, const char *extra)
{
    snprintf(w->err, sizeof w->err, fmt, rel, extra ? extra : "");
    return -1;
}

/* Walks the directory open at `dfd` (relative path `rel`), hashing into w->h and copying into
 * `out` (a directory fd, or -1). Closes dfd. */
static int walk_dir(struct walk *w, int dfd, const char *rel, int out, int depth)
{
    if (depth > SRC_MAX_DEPTH) {
        close(dfd);
        return walk_fail(w, "the source tree is deeper than %2$s directories (at %1$s)", rel,
                         "16");
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return walk_fail(w, "cannot read the directory %s%s", *rel ? rel : ".", "");
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and dot-files (.git, editor files): not part of a build */
        if (++w->entries > SRC_MAX_ENTRIES) {
            rc = walk_fail(w, "the source tree has more than %2$s files and directories%1$s", "",
                           "2000");
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = walk_fail(w, "out of memory reading %s%s", rel, "");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = walk_fail(w, "out of memory reading %s%s", rel, "");
            break;
        }
        n++;
    }
    if (rc == 0)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *name = names[i];
        char r[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)sizeof r) {
            rc = walk_fail(w, "a path in the source tree is too long: %s%s", rel, "");
            break;
        }
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = walk_fail(w, "cannot read %s: %s", r, strerror(errno));
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t k = readlinkat(dfd, name, target, sizeof target - 1);
            if (k < 0) {
                rc = walk_fail(w, "cannot read the symlink %s: %s", r, strerror(errno));
                break;
            }
            target[k] = '\0';
            if (!link_inside(r, target)) {
                rc = walk_fail(w,
                               "%s is a symlink to %s, outside the source directory: only "
                               "files inside it can be built (copy the file in instead)",
                               r, target);
                break;
            }
            if (w->h || w->src) {
                whash(w, "L", 1);
                whash(w, r, strlen(r) + 1);
                whash(w, target, strlen(target) + 1);
            }
            if (out >= 0 && symlinkat(target, out, name) != 0) {
                rc = walk_fail(w, "cannot copy the symlink %s: %s", r, strerror(errno));
                break;
            }
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = walk_fail(w, "cannot open the directory %s: %s", r, strerror(errno));
                break;
            }
            int osub = -1;
            if (out >= 0) {
                if (mkdirat(out, name, 0755) != 0 ||
                    (osub = openat(out, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
                        0) {
                    close(sub);
                    rc = walk_fail(w, "cannot copy the directory %s: %s", r, strerror(errno));
                    break;
                }
            }
            if (w->h || w->src) {
                whash(w, "D", 1);
                whash(w, r, strlen(r) + 1);
            }
            rc = walk_dir(w, sub, r, osub, depth + 1);
            if (osub >= 0)
                close(osub);
        } else if (S_ISREG(st.st_mode)) {
            /* O_NONBLOCK: a FIFO swapped in after the fstatat must not hang the worker. */
            int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            struct stat fst;
            if (fd < 0 || fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
                if (fd >= 0)
                    close(fd);
                rc = walk_fail(w, "cannot open %s: %s", r,
                               fd < 0 ? strerror(errno) : "no longer a regular file");
                break;
            }
            if ((uint64_t)fst.st_size > SRC_MAX_FILE) {
                close(fd);
                rc = walk_fail(w, "%s is larger than %s (the limit for one source file)", r,
                               "8 MiB");
                break;
            }
            w->total += (uint64_t)fst.st_size;
            if (w->total > SRC_MAX_TOTAL) {
                close(fd);
                rc = walk_fail(w, "the source tree is larger than %2$s in all (at %1$s)", r,
                               "64 MiB");
                break;
            }
            int ofd = -1;
            if (out >= 0 &&
                (ofd = openat(out, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                              0644)) < 0) {
                close(fd);
                rc = walk_fail(w, "cannot copy %s: %s", r, strerror(errno));
                break;
            }
            if (w->h || w->src) {
                uint64_t len = (uint64_t)fst.st_size;
                whash(w, "F", 1);
                whash(w, r, strlen(r) + 1);
                whash(w, &len, sizeof len);
            }
            char buf[65536];
            uint64_t got = 0;
            ssize_t k;
            while ((k = read(fd, buf, sizeof buf)) > 0) {
                got += (uint64_t)k;
                if (got > (uint64_t)fst.st_size) /* it grew while read: the size was hashed */
                    break;
                if (w->h || w->src)
                    whash(w, buf, (size_t)k);
                if (ofd >= 0 && write(ofd, buf, (size_t)k) != k) {
                    k = -1;
                    break;
                }
            }
            close(fd);
            if (ofd >= 0)
                close(ofd);
            if (k < 0 || got != (uint64_t)fst.st_size) {
                rc = walk_fail(w, "cannot read %s: %s", r,
                               k < 0 ? strerror(errno) : "it changed while being read");
                break;
            }
        } else {
            rc = walk_fail(w,
                           "%s is %s: a source directory may hold only regular files, "
                           "directories and symlinks inside it",
                           r,
                           S_ISFIFO(st.st_mode)   ? "a FIFO"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "a device");
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int walk_tree(struct walk *w, const char *src, const char *copy_to)
{
    int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return walk_fail(w, "cannot open the source directory %s: %s", src, strerror(errno));
    int out = -1;
    if (copy_to && (out = open(copy_to, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        close(dfd);
        return walk_fail(w, "cannot open %s: %s", copy_to, strerror(errno));
    }
    int rc = walk_dir(w, dfd, "", out, 0);
    if (out >= 0)
        close(out);
    return rc;
}

/* The SDK and the ABI header change rarely and are larger than a guest: they enter the key by
 * their names, sizes and modification times (stat only), which keeps a cached lookup well under
 * 2 ms while any edit to them still forces a rebuild. */
static void hash_tree_meta(aspen_store_sha256_ctx *c, const char *dir, int depth)
{
    if (depth > 16)
        return;
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        const char *nm = ents[i]->d_name;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        if (strcmp(nm, ".") && strcmp(nm, "..") && lstat(path, &st) == 0) {
            int64_t meta[4] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                               (int64_t)st.st_mtim.tv_nsec, (int64_t)st.st_ino};
            aspen_store_sha256_update(c, nm, strlen(nm) + 1);
            aspen_store_sha256_update(c, meta, sizeof meta);
            if (S_ISDIR(st.st_mode))
                hash_tree_meta(c, path, depth + 1);
        }
        free(ents[i]);
    }
    free(ents);
}

static void hash_meta(aspen_store_sha256_ctx *c, const char *path)
{
    struct stat st;
    int64_t meta[4] = {0};
    if (stat(path, &st) == 0) {
        meta[0] = (int64_t)st.st_size;
        meta[1] = (int64_t)st.st_mtim.tv_sec;
        meta[2] = (int64_t)st.st_mtim.tv_nsec;
        meta[3] = (int64_t)st.st_ino;
    }
    aspen_store_sha256_update(c, path, strlen(path) + 1);
    aspen_store_sha256_update(c, meta, sizeof meta);
}

static void hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int aspen_engine_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- guest.flags and the allow-list ------------------------------------------------------------ */

/* The allow-list's patterns; the text after a pattern is for the people reading the file. */
struct allow {
    regex_t *re;
    size_t n;
};

static void allow_free(struct allow *a)
{
    for (size_t i = 0; i < a->n; i++)
        regfree(&a->re[i]);
    free(a->re);
    memset(a, 0, sizeof *a);
}

static int allow_load(const char *path, struct allow *a, char *why, size_t cap)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, cap, "the compiler-flag allow-list %s cannot be read: %s", path,
                 strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        p[strcspn(p, " \t")] = '\0';
        char pat[2100];
        snprintf(pat, sizeof pat, "^(%s)$", p);
        regex_t *nr = realloc(a->re, (a->n + 1) * sizeof *nr);
        if (nr)
            a->re = nr;
        if (!nr || regcomp(&a->re[a->n], pat, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(why, cap, "%s:%d: not a valid pattern: %s", path, lineno, p);
            fclose(f);
            allow_free(a);
            return -1;
        }
        a->n++;
    }
    fclose(f);
    return 0;
}

/* Why a flag was refused, in a few words, by its kind. scripts/build-guest.sh has the same table
 * (flag_reason): the two builders refuse with the same message. */
static const char *flag_reason(const char *flag)
{
    static const struct {
        const char *prefix, *why;
    } kinds[] = {
        {"-march=", "the guest CPU contract stops at -march=x86-64-v3"},
        {"-m", "machine options may break the guest ABI or CPU contract"},
        {"-I", "it names a host file, directory or program"},
        {"-L", "it names a host file, directory or program"},
        {"-l", "it names a host file, directory or program"},
        {"-B", "it names a host file, directory or program"},
        {"-i", "it names a host file, directory or program"},
        {"@", "it names a host file, directory or program"},
        {"--sysroot", "it names a host file, directory or program"},
        {"-specs", "it names a host file, directory or program"},
        {"-fplugin", "it names a host file, directory or program"},
        {"-wrapper", "it names a host file, directory or program"},
        {"-Wl,", "it passes options to the assembler, linker or preprocessor"},
        {"-Wa,", "it passes options to the assembler, linker or preprocessor"},
        {"-Wp,", "it passes options to the assembler, linker or preprocessor"},
        {"-X", "it passes options to the assembler, linker or preprocessor"},
        {"-fsanitize", "it needs run-time support guests do not have"},
        {"-fstack-protector", "it needs run-time support guests do not have"},
        {"-fpic", "it needs run-time support guests do not have"},
        {"-fPIC", "it needs run-time support guests do not have"},
        {"-fpie", "it needs run-time support guests do not have"},
        {"-fPIE", "it needs run-time support guests do not have"},
        {"-flto", "it needs run-time support guests do not have"},
        {"-pg", "it needs run-time support guests do not have"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strncmp(flag, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
            return kinds[i].why;
    return "it is not on the allow-list";
}

/* Where a refused submitter is sent: the list itself and the section that explains it. */
#define FLAGS_SEE                                                                                  \
    "(allowed: guests/sdk/guest-flags.allow; see docs/OPERATING.md, \"What a submitter can and "   \
    "cannot do\")"

void aspen_build_flags_free(char **flags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(flags[i]);
    free(flags);
}

int aspen_build_flags_check(const char *allow_path, const char *text, char ***flags_out,
                            size_t *n_out, char *why, size_t cap)
{
    *flags_out = NULL;
    *n_out = 0;
    if (strlen(text) > FLAGS_MAX_BYTES) {
        snprintf(why, cap, "guest.flags is larger than %d bytes", FLAGS_MAX_BYTES);
        return -1;
    }
    /* Words, one line at a time; a line whose first word starts with '#' is a comment. */
    char *copy = strdup(text);
    if (!copy) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    char *words[FLAGS_MAX_COUNT * 2 + 1];
    size_t nw = 0;
    int rc = 0;
    char *save_line = NULL;
    for (char *line = strtok_r(copy, "\n", &save_line); line && rc == 0;
         line = strtok_r(NULL, "\n", &save_line)) {
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f')
            p++;
        if (*p == '#')
            continue;
        char *save = NULL;
        for (char *w = strtok_r(p, " \t\r\v\f", &save); w; w = strtok_r(NULL, " \t\r\v\f", &save)) {
            if (nw == sizeof words / sizeof words[0]) {
                snprintf(why, cap, "guest.flags has more than %d flags", FLAGS_MAX_COUNT);
                rc = -1;
                break;
            }
            words[nw++] = w;
        }
    }
    char **flags = NULL;
    size_t nf = 0;
    struct allow a = {0};
    if (rc == 0 && nw > 0 && allow_load(allow_path, &a, why, cap) != 0)
        rc = -1;
    if (rc == 0 && nw > 0 && !(flags = calloc(nw, sizeof *flags))) {
        snprintf(why, cap, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        char flag[FLAG_MAX_LEN * 2 + 2];
        const char *w = words[i];
        /* "-D NAME" / "-U NAME" as two words: one flag */
        if ((!strcmp(w, "-D") || !strcmp(w, "-U")) && i + 1 < nw) {
            snprintf(flag, sizeof flag, "%s%s", w, words[i + 1]);
            i++;
        } else {
            snprintf(flag, sizeof flag, "%s", w);
        }
        bool printable = true;
        for (const char *q = flag; *q; q++)
            if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
                printable = false;
        bool ok = printable && strlen(flag) <= FLAG_MAX_LEN;
        bool matched = false;
        for (size_t k = 0; ok && !matched && k < a.n; k++)
            matched = regexec(&a.re[k], flag, 0, NULL, 0) == 0;
        if (!matched) {
            if (printable)
                snprintf(why, cap, "guest.flags: the compiler flag '%.64s' is not allowed: %s " FLAGS_SEE,
                         flag, flag_reason(flag));
            else
                snprintf(why, cap,
                         "guest.flags: a flag with a control or non-ASCII character is not "
                         "allowed " FLAGS_SEE);
            rc = -1;
            break;
        }
        if (!(flags[nf] = strdup(flag))) {
            snprintf(why, cap, "out of memory");
            rc = -1;
            break;
        }
        nf++;
    }
    allow_free(&a);
    free(copy);
    if (rc != 0) {
        aspen_build_flags_free(flags, nf);
        return -1;
    }
    *flags_out = flags;
    *n_out = nf;
    return 0;
}

/* ---- the toolchain ------------------------------------------------------------------------------ */

/* What the sandbox needs of the host's gcc, found once per process (the toolchain is trusted and
 * is asked outside any sandbox). */
struct toolchain {
    bool ready;
    char gcc[PATH_MAX], ar[PATH_MAX], include[PATH_MAX];
    aspen_sandbox_binds binds;
    uint8_t id[32]; /* the programs' paths, sizes and times: part of every key */
    char why[512];
};
static struct toolchain g_tc;
static pthread_mutex_t g_tc_mu = PTHREAD_MUTEX_INITIALIZER;

/* Runs argv (a trusted program) and returns its first line of output in out. */
static int run_line(const char *const *argv, char *out, size_t cap)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t k = read(pfd[0], out + len, cap - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || (len += (size_t)k) >= cap - 1)
            break;
    }
    out[len] = '\0';
    out[strcspn(out, "\n")] = '\0';
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && out[0] ? 0 : -1;
}

/* A program on PATH (or /usr/bin, /bin), as an absolute path. */
static int find_program(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/bin", path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (d[0] != '/')
            continue;
        snprintf(out, cap, "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static int tc_add(const char *prog)
{
    return aspen_sandbox_add_program(&g_tc.binds, prog, g_tc.why, sizeof g_tc.why);
}

static int toolchain_find(void)
{
    if (find_program("gcc", g_tc.gcc, sizeof g_tc.gcc) != 0) {
        snprintf(g_tc.why, sizeof g_tc.why,
                 "the C compiler gcc was not found: install it with 'apt-get install gcc'");
        return -1;
    }
    if (find_program("ar", g_tc.ar, sizeof g_tc.ar) != 0) {
        snprintf(g_tc.why, sizeof g_tc.why,
                 "'ar' was not found: install it with 'apt-get install binutils'");
        return -1;
    }
    char cc1[PATH_MAX], collect2[PATH_MAX], libgcc[PATH_MAX], as[PATH_MAX], ld[PATH_MAX],
        tmp[PATH_MAX];
    const char *q_cc1[] = {g_tc.gcc, "-print-prog-name=cc1", NULL};
    const char *q_c2[] = {g_tc.gcc, "-print-prog-name=collect2", NULL};
    const char *q_lib[] = {g_tc.gcc, "-print-libgcc-file-name", NULL};
    const char *q_inc[] = {g_tc.gcc, "-print-file-name=include", NULL};
    const char *q_as[] = {g_tc.gcc, "-print-prog-name=as", NULL};
    const char *q_ld[] = {g_tc.gcc, "-print-prog-name=ld", NULL};
    if (run_line(q_cc1, cc1, sizeof cc1) || run_line(q_c2, collect2, sizeof collect2) ||
        run_line(q_lib, libgcc, sizeof libgcc) || run_line(q_inc, g_tc.include, sizeof g_tc.include) ||
        run_line(q_as, as, sizeof as) || run_line(q_ld, ld, sizeof ld) || cc1[0] != '/' ||
        collect2[0] != '/' || libgcc[0] != '/' || g_tc.include[0] != '/') {
        snprintf(g_tc.why, sizeof g_tc.why,
                 "%s does not tell where its parts are (cc1, collect2, libgcc, include): is it a "
                 "complete gcc? (apt-get install gcc)",
                 g_tc.gcc);
        return -1;
    }
    if (as[0] != '/') {
        snprintf(tmp, sizeof tmp, "%s", as);
        if (find_program(tmp, as, sizeof as) != 0) {
            snprintf(g_tc.why, sizeof g_tc.why, "the assembler 'as' was not found (binutils)");
            return -1;
        }
    }
    if (ld[0] != '/') {
        snprintf(tmp, sizeof tmp, "%s", ld);
        if (find_program(tmp, ld, sizeof ld) != 0) {
            snprintf(g_tc.why, sizeof g_tc.why, "the linker 'ld' was not found (binutils)");
            return -1;
        }
    }
    const char *progs[] = {g_tc.gcc, cc1, collect2, as, ld, g_tc.ar};
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        if (tc_add(progs[i]) != 0)
            return -1;
        hash_meta(&c, progs[i]);
    }
    /* The include directory is gcc's freestanding headers (stddef.h, stdint.h, ...); libgcc.a
     * has the compiler's helper routines. */
    if (aspen_sandbox_bind_add(&g_tc.binds, g_tc.include, g_tc.include, false) ||
        aspen_sandbox_bind_add(&g_tc.binds, libgcc, libgcc, false)) {
        snprintf(g_tc.why, sizeof g_tc.why, "out of memory");
        return -1;
    }
    hash_meta(&c, libgcc);
    aspen_store_sha256_final(&c, g_tc.id);
    return 0;
}

static int toolchain(char *why, size_t cap)
{
    pthread_mutex_lock(&g_tc_mu);
    if (!g_tc.ready) {
        aspen_sandbox_binds_free(&g_tc.binds);
        g_tc.why[0] = '\0';
        if (toolchain_find() == 0)
            g_tc.ready = true;
        else
            aspen_sandbox_binds_free(&g_tc.binds);
    }
    int rc = g_tc.ready ? 0 : -1;
    if (rc)
        snprintf(why, cap, "%s", g_tc.why);
    pthread_mutex_unlock(&g_tc_mu);
    return rc;
}

/* ---- running the compiler confined -------------------------------------------------------------- */

#define IN_SDK "/aspen/guests/sdk"
#define IN_ABI "/aspen/vm/include/abi.h"

/* The flags every sandboxed compile uses (the same as scripts/build-guest.sh's defaults, with
 * the driver kept from plugins and colour). An implicit function declaration is an error, not
 * gcc 12's warning: in freestanding code it is always a bug (an undeclared malloc or strlen is
 * assumed to return int, and a pointer it returns loses its upper half). */
static const char *const BASE_CFLAGS[] = {
    "-std=gnu17", "-ffreestanding", "-nostdlib", "-nostdinc", "-march=x86-64", "-mtune=generic",
    "-Os", "-fno-pie", "-fno-pic", "-fno-plt", "-fno-common", "-fno-stack-protector",
    "-fcf-protection=none", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
    "-fno-math-errno", "-fno-tree-loop-distribute-patterns", "-ffunction-sections",
    "-fdata-sections", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
    "-Werror=implicit-int", "-pipe", "-fmax-errors=20",
    "-fdiagnostics-color=never", "-fno-lto", "-fno-use-linker-plugin", NULL};

static const char *const LDFLAGS[] = {
    "-static", "-no-pie", "-nostdlib", "-Wl,--gc-sections", "-Wl,--build-id=none",
    "-Wl,-z,noexecstack", "-Wl,-z,max-page-size=4096", "-Wl,-z,common-page-size=4096",
    "-Wl,-T," IN_SDK "/aspen.ld", "-Wl,-u,_start", "-Wl,-u,execute", "-s", NULL};

struct argv {
    char **v;
    size_t n, cap;
    bool oom;
};

static void av_add(struct argv *a, const char *s)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->oom = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) {
        a->oom = true;
        return;
    }
    a->v[++a->n] = NULL;
}

static void av_free(struct argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

static void av_cflags(struct argv *a)
{
    av_add(a, g_tc.gcc);
    for (size_t i = 0; BASE_CFLAGS[i]; i++)
        av_add(a, BASE_CFLAGS[i]);
    av_add(a, "-isystem");
    av_add(a, g_tc.include);
    av_add(a, "-I");
    av_add(a, IN_SDK "/include");
}

/* Appends `out` (a build's combined output) to *log. */
static void log_append(char **log, const char *text)
{
    if (!text || !*text)
        return;
    size_t a = *log ? strlen(*log) : 0, b = strlen(text);
    if (a + b > 64 * 1024)
        b = a >= 64 * 1024 ? 0 : 64 * 1024 - a;
    char *n = realloc(*log, a + b + 1);
    if (!n)
        return;
    memcpy(n + a, text, b);
    n[a + b] = '\0';
    *log = n;
}

/* One sandboxed run: 0 when the program exited 0, else -1 with a sentence in why. */
static int sandboxed(const char *scratch, const aspen_sandbox_binds *binds, struct argv *a,
                     const char *cwd, char **log, char *why, size_t cap)
{
    static const char *const envp[] = {"PATH=/usr/bin:/bin", "TMPDIR=/tmp", "LC_ALL=C",
                                       "LANG=C", "HOME=/tmp", NULL};
    if (a->oom) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    aspen_sandbox_spec spec = {.argv = (const char *const *)a->v,
                               .envp = envp,
                               .cwd = cwd,
                               .binds = binds,
                               .scratch_dir = scratch,
                               .limits = aspen_sandbox_build_limits};
    aspen_sandbox_result res;
    int rc = aspen_sandbox_run(&spec, &res);
    log_append(log, res.output);
    if (res.output_total > spec.limits.output_keep)
        log_append(log, "\n[aspen] build output cut here\n");
    if (rc != 0 || (res.end == ASPEN_SB_EXITED && res.code == 0)) {
        if (rc != 0)
            snprintf(why, cap, "%s", res.why);
        free(res.output);
        return rc != 0 ? -1 : 0;
    }
    const char *o = res.output ? res.output : "";
    if (res.end == ASPEN_SB_EXITED && strstr(o, "CPU time limit exceeded"))
        snprintf(why, cap, "the build was stopped: it used more than %llu s of CPU time (the "
                           "build's CPU limit)",
                 (unsigned long long)spec.limits.cpu_seconds);
    else if (res.end == ASPEN_SB_EXITED && (strstr(o, "out of memory allocating") ||
                                            strstr(o, "Cannot allocate memory")))
        snprintf(why, cap, "the build ran out of memory (the build's limit is %llu MiB)",
                 (unsigned long long)(spec.limits.memory_bytes >> 20));
    else if (res.end == ASPEN_SB_EXITED)
        snprintf(why, cap, "the build failed (exit status %d)", res.code);
    else
        snprintf(why, cap, "the build was %s", res.why);
    free(res.output);
    return -1;
}

static int list_sources(const char *dir, const char *prefix, struct argv *a, int *count)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        size_t l = strlen(nm);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, nm);
        struct stat st;
        if (nm[0] != '.' && l > 2 && nm[l - 2] == '.' && (nm[l - 1] == 'c' || nm[l - 1] == 'S') &&
            lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(p, sizeof p, "%s/%s", prefix, nm);
            av_add(a, p);
            (*count)++;
        }
        free(ents[i]);
    }
    free(ents);
    return 0;
}

/* CACHE/sdk-<key>/libaspen-sdk.a, compiled in the sandbox when missing. */
static int ensure_sdk(aspen_engine *eng, const char *sdk, const char *abi, char *lib_dir,
                      size_t lib_cap, char **log, char *why, size_t cap)
{
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    aspen_store_sha256_update(&c, RECIPE, sizeof RECIPE);
    aspen_store_sha256_update(&c, g_tc.id, sizeof g_tc.id);
    hash_tree_meta(&c, sdk, 0);
    hash_meta(&c, abi);
    uint8_t d[32];
    char key[65];
    aspen_store_sha256_final(&c, d);
    hex(d, key);
    snprintf(lib_dir, lib_cap, "%s/sdk-%.32s", eng->cache_dir, key);
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s/libaspen-sdk.a", lib_dir);
    struct stat st;
    if (stat(lib, &st) == 0 && S_ISREG(st.st_mode))
        return 0;

    char tmp[PATH_MAX], out[PATH_MAX], root[PATH_MAX], srcdir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp-sdk-%d-%.32s", eng->cache_dir, (int)getpid(), key);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(root, sizeof root, "%s/root", tmp);
    snprintf(srcdir, sizeof srcdir, "%s/src", sdk);
    rm_tree(tmp);
    /* 0700: /out belongs to the sandbox's uid, which other processes on the host may share
     * (nobody); they must not reach it through the path while a build runs. */
    if (mkdir(tmp, 0700) != 0 || mkdir(out, 0700) != 0 || mkdir(root, 0700) != 0) {
        snprintf(why, cap, "cannot create %s: %s", tmp, strerror(errno));
        rm_tree(tmp);
        return -1;
    }
    if (geteuid() == 0 && chown(out, ASPEN_SANDBOX_UID, ASPEN_SANDBOX_GID) != 0) {
        snprintf(why, cap, "cannot hand %s to the build user: %s", out, strerror(errno));
        rm_tree(tmp);
        return -1;
    }
    aspen_sandbox_binds b = {0};
    int rc = -1;
    struct argv a = {0}, ar = {0};
    for (size_t i = 0; i < g_tc.binds.n; i++)
        if (aspen_sandbox_bind_add(&b, g_tc.binds.v[i].host, g_tc.binds.v[i].inside, false))
            goto oom;
    if (aspen_sandbox_bind_add(&b, sdk, IN_SDK, false) ||
        aspen_sandbox_bind_add(&b, abi, IN_ABI, false) ||
        aspen_sandbox_bind_add(&b, out, "/out", true))
        goto oom;
    av_cflags(&a);
    av_add(&a, "-Werror");
    av_add(&a, "-c");
    int n = 0;
    if (list_sources(srcdir, IN_SDK "/src", &a, &n) != 0 || n == 0) {
        snprintf(why, cap, "the SDK at %s has no sources in src/", sdk);
        goto done;
    }
    if (sandboxed(root, &b, &a, "/out", log, why, cap) != 0) {
        char w2[600];
        snprintf(w2, sizeof w2, "compiling the SDK: %s", why);
        snprintf(why, cap, "%s", w2);
        goto done;
    }
    av_add(&ar, g_tc.ar);
    av_add(&ar, "rcs");
    av_add(&ar, "/out/libaspen-sdk.a");
    for (size_t i = 1; i < a.n; i++) {
        const char *s = a.v[i];
        if (strncmp(s, IN_SDK "/src/", sizeof IN_SDK "/src/" - 1) != 0)
            continue;
        char o[PATH_MAX];
        snprintf(o, sizeof o, "/out/%s", s + sizeof IN_SDK "/src/" - 1);
        o[strlen(o) - 1] = 'o'; /* x.c / x.S -> x.o */
        av_add(&ar, o);
    }
    if (sandboxed(root, &b, &ar, "/out", log, why, cap) != 0)
        goto done;
    char built[PATH_MAX], dst_tmp[PATH_MAX];
    snprintf(built, sizeof built, "%s/libaspen-sdk.a", out);
    snprintf(dst_tmp, sizeof dst_tmp, "%s/lib", tmp);
    snprintf(lib, sizeof lib, "%s/libaspen-sdk.a", dst_tmp);
    if (mkdir(dst_tmp, 0755) != 0 || rename(built, lib) != 0) {
        snprintf(why, cap, "the SDK build wrote no library: %s", strerror(errno));
        goto done;
    }
    if (rename(dst_tmp, lib_dir) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
        snprintf(why, cap, "cannot store the SDK library in %s: %s", lib_dir, strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(why, cap, "out of memory");
done:
    av_free(&a);
    av_free(&ar);
    aspen_sandbox_binds_free(&b);
    rm_tree(tmp);
    return rc;
}

/* What of a build log goes into the job's error (which is bounded: aspen_engine_error.msg): the
 * whole log when it is short, else its first lines — where the compiler names the first error, the
 * one that matters (a fatal "file not found" is gcc's first line, the rest follows from it) —, a
 * marker, and its last lines (the summary, "compilation terminated"). Cut at line ends; the whole
 * log is in the job's log lines (aspen logs). */
#define LOG_EXCERPT_HEAD 420
#define LOG_EXCERPT_TAIL 240
static const char *log_excerpt(const char *log, char *buf, size_t cap)
{
    if (!log)
        return "";
    size_t n = strlen(log);
    while (n && (log[n - 1] == '\n' || log[n - 1] == '\r'))
        n--;
    if (n <= LOG_EXCERPT_HEAD + LOG_EXCERPT_TAIL + 40) {
        snprintf(buf, cap, "%.*s", (int)n, log);
        return buf;
    }
    size_t head = LOG_EXCERPT_HEAD;
    while (head > 0 && log[head] != '\n')
        head--;
    if (head == 0)
        head = LOG_EXCERPT_HEAD; /* one long first line: cut inside it */
    size_t tail = n - LOG_EXCERPT_TAIL;
    while (tail < n && log[tail - 1] != '\n')
        tail++;
    if (tail >= n)
        tail = n - LOG_EXCERPT_TAIL;
    size_t skipped = 0;
    for (size_t i = head; i < tail; i++)
        skipped += log[i] == '\n';
    snprintf(buf, cap, "%.*s\n[... %zu line%s left out: aspen logs has the whole build log ...]\n%.*s",
             (int)head, log, skipped, skipped == 1 ? "" : "s", (int)(n - tail), log + tail);
    return buf;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    *len = n;
    close(fd);
    return 0;
}

void eng_rm_tree(const char *dir) { rm_tree(dir); }

/* The SDK paths of this engine's tree (beside its build script). */
static void sdk_paths(aspen_engine *eng, char *sdk, char *abi, char *allow, size_t cap)
{
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", eng->build_script);
    char *slash = strrchr(root, '/');
    if (slash)
        snprintf(slash, sizeof root - (size_t)(slash - root), "/..");
    else
        snprintf(root, sizeof root, "..");
    snprintf(sdk, cap, "%s/guests/sdk", root);
    snprintf(abi, cap, "%s/vm/include/abi.h", root);
    snprintf(allow, cap, "%s/guests/sdk/guest-flags.allow", root);
}

int eng_build_env_digest(aspen_engine *eng, uint8_t out[32], aspen_engine_error *err)
{
    char sdk[PATH_MAX], abi[PATH_MAX], allow[PATH_MAX], why[1024] = "";
    sdk_paths(eng, sdk, abi, allow, sizeof sdk);
    struct stat st;
    if (stat(sdk, &st) != 0 || !S_ISDIR(st.st_mode) || access(abi, R_OK) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD,
                       "the guest SDK (guests/sdk and vm/include/abi.h beside %s) is missing: set "
                       "ASPEN_BUILD_GUEST or the engine's build_script to scripts/build-guest.sh "
                       "of an Aspen tree",
                       eng->build_script);
    if (toolchain(why, sizeof why) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD, "building a guest: %s", why);
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    aspen_store_sha256_update(&c, RECIPE, sizeof RECIPE);
    aspen_store_sha256_update(&c, g_tc.id, sizeof g_tc.id);
    hash_tree_meta(&c, sdk, 0);
    hash_meta(&c, abi);
    hash_meta(&c, allow);
    aspen_store_sha256_final(&c, out);
    return 0;
}

/* ---- what a --source job is pinned to at submit ---------------------------------------------------
 * A job runs what its source directory held when it was submitted, not what it holds when a worker
 * gets to it (files added meanwhile, a guest.flags removed): the submit stores the digest of the
 * tree (the same walk the build hashes: paths, link targets, file contents; dot-files left out) in
 * the job's source ("DIR#sha256=HEX"), and the build refuses a tree that no longer has it. With
 * PostgreSQL the worker may be another host: it needs the same directory with the same content
 * (a shared file system), and says so when it does not have it. A copy is not stored in the
 * database: a tree may be 64 MiB, and the cache key already identifies what was built. */
#define PIN_TAG "#sha256="
#define PIN_LEN (sizeof PIN_TAG - 1 + 64)

bool eng_source_pin_split(const char *source, char *dir, size_t cap, char hex[65])
{
    size_t n = source ? strlen(source) : 0;
    if (n <= PIN_LEN || memcmp(source + n - PIN_LEN, PIN_TAG, sizeof PIN_TAG - 1) != 0)
        return false;
    const char *h = source + n - 64;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return false;
    if (n - PIN_LEN >= cap)
        return false;
    memcpy(dir, source, n - PIN_LEN);
    dir[n - PIN_LEN] = '\0';
    memcpy(hex, h, 64);
    hex[64] = '\0';
    return true;
}

/* Which sources the top of the tree holds: C/assembly, a Cargo.toml. */
static void source_kinds(const char *dir, bool *c, bool *cargo)
{
    *c = *cargo = false;
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 2 && (strcmp(e->d_name + n - 2, ".c") == 0 || strcmp(e->d_name + n - 2, ".S") == 0))
            *c = true;
        else if (strcmp(e->d_name, "Cargo.toml") == 0)
            *cargo = true;
    }
    closedir(d);
}

/* Why a Rust guest is not built from --source, in one place (submit and build say it). */
#define RUST_SOURCE_REFUSED                                                                        \
    "%s holds a Rust guest (a Cargo.toml, no *.c or *.S): --source builds C guests only, because "  \
    "a cargo build runs the submitter's build scripts and macros as programs, which the build "     \
    "sandbox (compile only: no program of the submitter runs) does not allow. Build it yourself "   \
    "with scripts/build-guest.sh %s and submit the binary: aspen submit "                           \
    "target/guest-binaries/PACKAGE"

/* The rule scripts/build-guest.sh picks its musl mode by, over the same files (the top level's
 * *.c and *.S): no line includes aspen.h and some line has main( — a plain C-library program,
 * which --source cannot build (the sandbox compiles against the SDK, the guests' only libc). The
 * files are read a line at a time, as grep reads them; the tree's caps bound them. */
static bool plain_libc_program(const char *dir)
{
    regex_t inc, mainre;
    if (regcomp(&inc, "#[[:space:]]*include[[:space:]]*[<\"]aspen\\.h[>\"]",
                REG_EXTENDED | REG_NOSUB))
        return false;
    if (regcomp(&mainre, "(^|[^A-Za-z0-9_])main[[:space:]]*\\(", REG_EXTENDED | REG_NOSUB)) {
        regfree(&inc);
        return false;
    }
    bool has_main = false, has_sdk = false;
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        size_t l = strlen(nm);
        char p[PATH_MAX];
        int fd = -1;
        if (!has_sdk && l > 2 && nm[l - 2] == '.' && (nm[l - 1] == 'c' || nm[l - 1] == 'S') &&
            snprintf(p, sizeof p, "%s/%s", dir, nm) < (int)sizeof p &&
            (fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0) {
            struct stat st;
            /* over the cap: the walk refuses the tree anyway */
            FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= SRC_MAX_FILE
                          ? fdopen(fd, "r")
                          : NULL;
            if (f) {
                char *line = NULL;
                size_t cap = 0;
                while (!has_sdk && getline(&line, &cap, f) > 0) {
                    has_sdk = regexec(&inc, line, 0, NULL, 0) == 0;
                    has_main = has_main || regexec(&mainre, line, 0, NULL, 0) == 0;
                }
                free(line);
                fclose(f);
            } else {
                close(fd);
            }
        }
        free(ents[i]);
    }
    free(ents);
    regfree(&inc);
    regfree(&mainre);
    return has_main && !has_sdk;
}

/* The subdirectories of dir (rel below it, at most 4 levels down, dot-directories and links
 * left out, a bounded number looked at) that hold C sources: for "give --source …:SUBDIR". */
static void source_subdirs(const char *dir, const char *rel, int depth, int *budget, char *out,
                           size_t cap, int *found)
{
    char here[PATH_MAX];
    if (snprintf(here, sizeof here, "%s%s%s", dir, rel[0] ? "/" : "", rel) >= (int)sizeof here)
        return;
    struct dirent **ents = NULL; /* sorted: the first named is the same every time */
    int n = scandir(here, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const struct dirent *e = ents[i];
        if (e->d_name[0] == '.' || --*budget <= 0)
            continue;
        char sub[PATH_MAX], path[PATH_MAX];
        struct stat st;
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
                (int)sizeof sub ||
            snprintf(path, sizeof path, "%s/%s", dir, sub) >= (int)sizeof path ||
            lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        bool c, cargo;
        source_kinds(path, &c, &cargo);
        if (c) {
            size_t used = strlen(out);
            if (*found < 3)
                snprintf(out + used, cap - used, "%s%s", *found ? ", " : "", sub);
            ++*found;
        }
        if (depth < 3)
            source_subdirs(dir, sub, depth + 1, budget, out, cap, found);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
}

/* guest.flags of the tree at dir against the allow-list: the one check at submit and, on the
 * build's private copy, at build. 0 with the flags in *flags (flags NULL: only checked). */
static int source_flags(const char *allow, const char *dir, const char *what, int code,
                        char ***flags, size_t *nflags, aspen_engine_error *err)
{
    char ftext[FLAGS_MAX_BYTES + 2], fpath[PATH_MAX], why[1024];
    size_t flen = 0;
    char **own = NULL;
    size_t nown = 0;
    snprintf(fpath, sizeof fpath, "%s/guest.flags", dir);
    int fr = read_small(fpath, ftext, sizeof ftext, &flen);
    if (fr < 0)
        return eng_err(err, code, "%s: guest.flags is not a readable regular file (a link, FIFO or "
                       "device there is refused)", what);
    if (fr == 0 && aspen_build_flags_check(allow, ftext, flags ? flags : &own,
                                           flags ? nflags : &nown, why, sizeof why) != 0)
        return eng_err(err, code, "%s: %s", what, why);
    aspen_build_flags_free(own, nown);
    return 0;
}

int eng_source_refusal(aspen_engine *eng, const char *dir, const char *what, const char *again,
                       const char *checkout, int code, char ***flags, size_t *nflags,
                       aspen_engine_error *err)
{
    bool c, cargo;
    source_kinds(dir, &c, &cargo);
    if (!c && cargo)
        return eng_err(err, code, RUST_SOURCE_REFUSED, what, checkout);
    if (!c) {
        char subs[600] = "";
        int found = 0, budget = 4000;
        source_subdirs(dir, "", 0, &budget, subs, sizeof subs, &found);
        if (found == 0)
            return eng_err(err, code,
                           "no C sources (*.c or *.S) in %s: --source wants the directory that "
                           "holds the guest's sources",
                           what);
        const char *first_end = strchr(subs, ',');
        int first = first_end ? (int)(first_end - subs) : (int)strlen(subs);
        return eng_err(err, code,
                       "no C sources (*.c or *.S) in %s itself (--source builds one directory, "
                       "not its subdirectories), but %s%s hold%s some: give --source %s%.*s%s",
                       what, subs, found > 3 ? " …" : "", found == 1 ? "s" : "", again, first,
                       subs, found > 1 ? " (or another of them)" : "");
    }
    if (plain_libc_program(dir))
        return eng_err(err, code,
                       "%s holds a plain C program (main(), no #include <aspen.h>): --source "
                       "builds SDK guests only (a job handler, ASPEN_JOB_HANDLER, built against "
                       "the guest SDK, which is a guest's only libc). Build it yourself with "
                       "scripts/build-guest.sh %s (musl-gcc -static: a static Linux program) and "
                       "submit the binary: aspen submit target/guest-binaries/NAME",
                       what, checkout);
    char sdk[PATH_MAX], abi[PATH_MAX], allow[PATH_MAX];
    sdk_paths(eng, sdk, abi, allow, sizeof sdk);
    return source_flags(allow, dir, what, code, flags, nflags, err);
}

int eng_source_pin(aspen_engine *eng, const char *dir, char **pinned, aspen_engine_error *err)
{
    *pinned = NULL;
    char again[PATH_MAX + 2];
    snprintf(again, sizeof again, "%s/", dir);
    int rc = eng_source_refusal(eng, dir, dir, again, dir, ASPEN_ENGINE_EBINARY, NULL, NULL,
                                err);
    if (rc)
        return rc;
    aspen_store_sha256_ctx h;
    aspen_store_sha256_init(&h);
    struct walk w = {.src = &h};
    if (walk_tree(&w, dir, NULL) != 0)
        return eng_err(err, ASPEN_ENGINE_EBINARY, "guest source directory %s: %s", dir, w.err);
    uint8_t d[32];
    char hex_[65];
    aspen_store_sha256_final(&h, d);
    hex(d, hex_);
    size_t n = strlen(dir) + PIN_LEN + 1;
    if (!(*pinned = malloc(n)))
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory");
    snprintf(*pinned, n, "%s" PIN_TAG "%s", dir, hex_);
    return 0;
}

/* The tree no longer hashes to what was pinned at submit. */
static int source_changed(aspen_engine_error *err, const char *src, const char *pinned,
                          const uint8_t now[32])
{
    char hx[65];
    hex(now, hx);
    return eng_err(err, ASPEN_ENGINE_EBUILD,
                   "building the guest in %s: the source changed since it was submitted (its files "
                   "hashed to sha256 %.12s… then, %.12s… now): a job runs what was there at submit. "
                   "Submit it again to build the new sources, or put the old ones back",
                   src, pinned, hx);
}

int eng_build(aspen_engine *eng, const char *source_dir, char *path_out, size_t cap, bool *cached,
              char **log_out, aspen_engine_error *err)
{
    if (cached)
        *cached = false;
    if (log_out)
        *log_out = NULL;
    if (eng_git_is_source(source_dir)) /* REPO#COMMIT[:SUBDIR], resolved at submit (gitsrc.c) */
        return eng_git_build(eng, source_dir, path_out, cap, cached, log_out, err);
    char src[PATH_MAX], pin_dir[PATH_MAX], pin[65] = "";
    if (eng_source_pin_split(source_dir, pin_dir, sizeof pin_dir, pin))
        source_dir = pin_dir;
    struct stat st;
    if (!realpath(source_dir, src) || stat(src, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0)
            snprintf(host, sizeof host, "?");
        return eng_err(err, ASPEN_ENGINE_EBUILD,
                       "guest source directory %s not found on %s, where this worker runs: a "
                       "--source job is built by the worker that runs it, so with workers on other "
                       "hosts (PostgreSQL) the directory must be on each of them (a shared file "
                       "system), or build the guest and submit the binary",
                       source_dir, host);
    }
    bool has_c, has_cargo;
    source_kinds(src, &has_c, &has_cargo);
    if (!has_c && has_cargo) /* queued before submit refused these */
        return eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest: " RUST_SOURCE_REFUSED, src,
                       src);

    /* The SDK is found beside the build script, as the script finds it. */
    char sdk[PATH_MAX], abi[PATH_MAX], allow[PATH_MAX];
    sdk_paths(eng, sdk, abi, allow, sizeof sdk);
    if (stat(sdk, &st) != 0 || !S_ISDIR(st.st_mode) || access(abi, R_OK) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD,
                       "the guest SDK (guests/sdk and vm/include/abi.h beside %s) is missing: set "
                       "ASPEN_BUILD_GUEST or the engine's build_script to scripts/build-guest.sh "
                       "of an Aspen tree",
                       eng->build_script);
    char why[1024] = "";
    if (toolchain(why, sizeof why) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s", src, why);

    /* key = H(recipe, toolchain, SDK, ABI header, sources) */
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    aspen_store_sha256_update(&c, RECIPE, sizeof RECIPE);
    aspen_store_sha256_update(&c, g_tc.id, sizeof g_tc.id);
    hash_tree_meta(&c, sdk, 0);
    hash_meta(&c, abi);
    aspen_store_sha256_ctx base = c; /* before the sources: the copy is hashed from here too */
    aspen_store_sha256_ctx tree;
    aspen_store_sha256_init(&tree);
    struct walk w = {.h = &c, .src = pin[0] ? &tree : NULL};
    if (walk_tree(&w, src, NULL) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s", src, w.err);
    uint8_t digest[32];
    if (pin[0]) {
        char hx[65];
        aspen_store_sha256_final(&tree, digest);
        hex(digest, hx);
        if (strcmp(hx, pin) != 0)
            return source_changed(err, src, pin, digest);
    }
    aspen_store_sha256_final(&c, digest);
    char key[65];
    hex(digest, key);

    char final_dir[PATH_MAX], final_bin[PATH_MAX];
    snprintf(final_dir, sizeof final_dir, "%s/%s", eng->cache_dir, key);
    snprintf(final_bin, sizeof final_bin, "%s/guest", final_dir);
    if (stat(final_bin, &st) == 0 && S_ISREG(st.st_mode)) {
        if (cached)
            *cached = true;
        atomic_fetch_add(&eng->build_hits, 1);
        snprintf(path_out, cap, "%s", final_bin);
        return 0;
    }

    /* One build at a time in this process; another process may build the same key: the rename
     * below makes the first one win and the other reuse it. */
    pthread_mutex_lock(&eng->build_mu);
    int code = 0;
    char *log = NULL;
    char tmp_dir[PATH_MAX] = "";
    struct argv a = {0};
    aspen_sandbox_binds b = {0};
    char **flags = NULL;
    size_t nflags = 0;
    if (stat(final_bin, &st) == 0 && S_ISREG(st.st_mode)) {
        if (cached)
            *cached = true;
        atomic_fetch_add(&eng->build_hits, 1);
        snprintf(path_out, cap, "%s", final_bin);
        goto unlock;
    }
    if (aspen_engine_mkdirs(eng->cache_dir) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create the build cache %s: %s",
                       eng->cache_dir, strerror(errno));
        goto unlock;
    }
    char copy[PATH_MAX], out[PATH_MAX], sbroot[PATH_MAX], lib_dir[PATH_MAX];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp-%d-%s", eng->cache_dir, (int)getpid(), key);
    snprintf(copy, sizeof copy, "%s/src", tmp_dir);
    snprintf(out, sizeof out, "%s/out", tmp_dir);
    snprintf(sbroot, sizeof sbroot, "%s/root", tmp_dir);
    rm_tree(tmp_dir);
    if (mkdir(tmp_dir, 0700) != 0 || mkdir(copy, 0755) != 0 || mkdir(out, 0700) != 0 ||
        mkdir(sbroot, 0700) != 0 ||
        (geteuid() == 0 && chown(out, ASPEN_SANDBOX_UID, ASPEN_SANDBOX_GID) != 0)) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create %s: %s", tmp_dir,
                       strerror(errno));
        goto unlock;
    }
    /* The private copy, hashed again: what is compiled is what the key says. */
    aspen_store_sha256_ctx c2 = base;
    aspen_store_sha256_init(&tree);
    struct walk w2 = {.h = &c2, .src = pin[0] ? &tree : NULL};
    if (walk_tree(&w2, src, copy) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s", src, w2.err);
        goto unlock;
    }
    if (pin[0]) { /* it may have changed since the check above: what is compiled is the copy */
        char hx[65];
        aspen_store_sha256_final(&tree, digest);
        hex(digest, hx);
        if (strcmp(hx, pin) != 0) {
            code = source_changed(err, src, pin, digest);
            goto unlock;
        }
    }
    aspen_store_sha256_final(&c2, digest);
    hex(digest, key);
    snprintf(final_dir, sizeof final_dir, "%s/%s", eng->cache_dir, key);
    snprintf(final_bin, sizeof final_bin, "%s/guest", final_dir);

    /* What submit refused is refused again on the copy (it may be a job queued before these
     * checks, or a tree of a commit): the same code, naming the source, not the copy. */
    char excerpt[800], again[PATH_MAX + 2];
    snprintf(again, sizeof again, "%s/", src);
    if ((code = eng_source_refusal(eng, copy, src, again, src, ASPEN_ENGINE_EBUILD, &flags,
                                   &nflags, err)) != 0) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "building the guest: %s", m);
        goto unlock;
    }

    if (ensure_sdk(eng, sdk, abi, lib_dir, sizeof lib_dir, &log, why, sizeof why) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s:\n%s", src, why,
                       log_excerpt(log, excerpt, sizeof excerpt));
        goto unlock;
    }

    av_cflags(&a);
    for (size_t i = 0; i < nflags; i++)
        av_add(&a, flags[i]);
    av_add(&a, "-I");
    av_add(&a, "/src");
    int nsrc = 0;
    list_sources(copy, "/src", &a, &nsrc);
    if (nsrc == 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD,
                       "building the guest in %s: no C sources (*.c or *.S, regular files, not "
                       "links) in %s",
                       src, src);
        goto unlock;
    }
    av_add(&a, "/sdklib/libaspen-sdk.a");
    av_add(&a, "-lgcc");
    for (size_t i = 0; LDFLAGS[i]; i++)
        av_add(&a, LDFLAGS[i]);
    av_add(&a, "-o");
    av_add(&a, "/out/guest");
    bool bind_oom = false;
    for (size_t i = 0; i < g_tc.binds.n; i++)
        bind_oom |= aspen_sandbox_bind_add(&b, g_tc.binds.v[i].host, g_tc.binds.v[i].inside,
                                           false) != 0;
    bind_oom |= aspen_sandbox_bind_add(&b, sdk, IN_SDK, false) != 0;
    bind_oom |= aspen_sandbox_bind_add(&b, abi, IN_ABI, false) != 0;
    bind_oom |= aspen_sandbox_bind_add(&b, lib_dir, "/sdklib", false) != 0;
    bind_oom |= aspen_sandbox_bind_add(&b, copy, "/src", false) != 0;
    bind_oom |= aspen_sandbox_bind_add(&b, out, "/out", true) != 0;
    if (bind_oom) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: out of memory", src);
        goto unlock;
    }
    if (sandboxed(sbroot, &b, &a, "/src", &log, why, sizeof why) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s:\n%s", src, why,
                       log_excerpt(log, excerpt, sizeof excerpt));
        goto unlock;
    }
    char built[PATH_MAX], tmp_bin[PATH_MAX];
    snprintf(built, sizeof built, "%s/guest", out);
    snprintf(tmp_bin, sizeof tmp_bin, "%s/guest", tmp_dir);
    if (lstat(built, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > ASPEN_STORE_MAX_BINARY || rename(built, tmp_bin) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD,
                       "building the guest in %s: the compiler succeeded but wrote no guest "
                       "binary (or one over %u bytes)",
                       src, ASPEN_STORE_MAX_BINARY);
        goto unlock;
    }
    chmod(tmp_bin, 0644);
    rm_tree(copy);
    rm_tree(out);
    rmdir(sbroot);
    char log_path[PATH_MAX]; /* the log stays beside the binary */
    snprintf(log_path, sizeof log_path, "%s/build.log", tmp_dir);
    FILE *f = fopen(log_path, "we");
    if (f) {
        fprintf(f, "%s", log ? log : "");
        fclose(f);
    }
    chmod(tmp_dir, 0755); /* only the binary and its log are left in it */
    if (rename(tmp_dir, final_dir) != 0)
        rm_tree(tmp_dir); /* someone else finished first: theirs is the same build */
    tmp_dir[0] = '\0';
    atomic_fetch_add(&eng->builds, 1);
    snprintf(path_out, cap, "%s", final_bin);
unlock:
    if (tmp_dir[0])
        rm_tree(tmp_dir);
    av_free(&a);
    aspen_sandbox_binds_free(&b);
    aspen_build_flags_free(flags, nflags);
    if (log_out)
        *log_out = log;
    else
        free(log);
    pthread_mutex_unlock(&eng->build_mu);
    return code;
}
