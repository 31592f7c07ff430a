/* engine/build.c — build a guest from its source directory with the SDK, once.
 *
 * The seed's "Nix build + execute: 5-10 s the first time, <2 ms cached". The cache key is a SHA-256
 * over the source tree (relative paths and contents of every regular file, sorted, dot-files
 * skipped), the SDK tree next to the build script (guests/sdk) and the build script itself: change
 * any of them and the guest is built again. The binary lands in CACHE_DIR/<key>/guest, written to
 * a temporary directory first and renamed into place, so concurrent builders (threads or processes)
 * never see half a file. Builds run `bash BUILD_SCRIPT SOURCE_DIR -o OUT` with stdout and stderr
 * captured: a failed build is a job error carrying the compiler's message.
 */
#include "engine_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUILD_TIMEOUT_MS (10 * 60 * 1000)
#define BUILD_LOG_MAX (64 * 1024)

static int skip_entry(const struct dirent *d) { return d->d_name[0] != '.'; }

/* Hashes the tree under `dir` (paths relative to `rel`). Returns 0, or -1 if unreadable. */
static int hash_tree(aspen_store_sha256_ctx *c, const char *dir, const char *rel, int depth)
{
    if (depth > 16)
        return 0;
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, skip_entry, alphasort);
    if (n < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], r[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", ents[i]->d_name);
        struct stat st;
        if (rc == 0 && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                aspen_store_sha256_update(c, "D", 1);
                aspen_store_sha256_update(c, r, strlen(r) + 1);
                rc = hash_tree(c, path, r, depth + 1);
            } else if (S_ISREG(st.st_mode)) {
                aspen_store_sha256_update(c, "F", 1);
                aspen_store_sha256_update(c, r, strlen(r) + 1);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    rc = -1;
                } else {
                    char buf[65536];
                    ssize_t k;
                    uint64_t len = (uint64_t)st.st_size;
                    aspen_store_sha256_update(c, &len, sizeof len);
                    while ((k = read(fd, buf, sizeof buf)) > 0)
                        aspen_store_sha256_update(c, buf, (size_t)k);
                    if (k < 0)
                        rc = -1;
                    close(fd);
                }
            }
        }
        free(ents[i]);
    }
    free(ents);
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
    int n = scandir(dir, &ents, skip_entry, alphasort);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        struct stat st;
        if (stat(path, &st) == 0) {
            int64_t meta[4] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                               (int64_t)st.st_mtim.tv_nsec, (int64_t)st.st_ino};
            aspen_store_sha256_update(c, ents[i]->d_name, strlen(ents[i]->d_name) + 1);
            aspen_store_sha256_update(c, meta, sizeof meta);
            if (S_ISDIR(st.st_mode))
                hash_tree_meta(c, path, depth + 1);
        }
        free(ents[i]);
    }
    free(ents);
}

static int hash_file(aspen_store_sha256_ctx *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0)
        aspen_store_sha256_update(c, buf, (size_t)k);
    close(fd);
    return k < 0 ? -1 : 0;
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

/* Runs the build script; *out gets its combined output (malloc'd). Returns the exit status, or -1
 * when it could not run or timed out. */
static int run_script(const char *script, const char *src, const char *out_path, char **out,
                      char *why, size_t whycap)
{
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
        dup2(pfd[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        setpgid(0, 0);
        execlp("bash", "bash", script, src, "-o", out_path, (char *)NULL);
        dprintf(2, "cannot run bash %s: %s\n", script, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool timed_out = false;
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int r = poll(&p, 1, 1000);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 > BUILD_TIMEOUT_MS) {
            kill(-pid, SIGKILL);
            timed_out = true;
            break;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char chunk[4096];
        ssize_t k = read(pfd[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (buf && len + (size_t)k + 1 > cap && len < BUILD_LOG_MAX) {
            while (len + (size_t)k + 1 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
            }
        }
        if (buf && len + (size_t)k + 1 <= cap) {
            memcpy(buf + len, chunk, (size_t)k);
            len += (size_t)k;
        }
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (buf)
        buf[len] = '\0';
    *out = buf;
    if (timed_out) {
        snprintf(why, whycap, "the build took longer than %d s and was stopped",
                 BUILD_TIMEOUT_MS / 1000);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last `max` bytes of a build log, where the compiler's error usually is. */
static const char *log_tail(const char *log, size_t max)
{
    size_t n = log ? strlen(log) : 0;
    if (!log)
        return "";
    if (n <= max)
        return log;
    const char *p = log + n - max;
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p;
}

int eng_build(aspen_engine *eng, const char *source_dir, char *path_out, size_t cap, bool *cached,
              char **log_out, aspen_engine_error *err)
{
    if (cached)
        *cached = false;
    if (log_out)
        *log_out = NULL;
    char src[PATH_MAX];
    struct stat st;
    if (!realpath(source_dir, src) || stat(src, &st) != 0 || !S_ISDIR(st.st_mode))
        return eng_err(err, ASPEN_ENGINE_EBUILD, "guest source directory %s not found",
                       source_dir);
    if (access(eng->build_script, R_OK) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD,
                       "the guest build script %s is missing: set ASPEN_BUILD_GUEST or the "
                       "engine's build_script to scripts/build-guest.sh of an Aspen tree",
                       eng->build_script);

    /* key = H(sources, SDK, script) */
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    if (hash_tree(&c, src, "", 0) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD, "cannot read the sources in %s: %s", src,
                       strerror(errno));
    char sdk[PATH_MAX];
    snprintf(sdk, sizeof sdk, "%s", eng->build_script);
    char *slash = strrchr(sdk, '/');
    if (slash) {
        snprintf(slash, sizeof sdk - (size_t)(slash - sdk), "/../guests/sdk");
        aspen_store_sha256_update(&c, "SDK", 4);
        hash_tree_meta(&c, sdk, 0); /* absent SDK: the script finds its own */
        snprintf(slash, sizeof sdk - (size_t)(slash - sdk), "/../vm/abi.h");
        struct stat ab;
        if (stat(sdk, &ab) == 0) {
            int64_t meta[3] = {(int64_t)ab.st_size, (int64_t)ab.st_mtim.tv_sec,
                               (int64_t)ab.st_mtim.tv_nsec};
            aspen_store_sha256_update(&c, meta, sizeof meta);
        }
    }
    aspen_store_sha256_update(&c, "SCRIPT", 7);
    hash_file(&c, eng->build_script);
    uint8_t digest[32];
    aspen_store_sha256_final(&c, digest);
    char key[65];
    for (int i = 0; i < 32; i++)
        snprintf(key + 2 * i, 3, "%02x", digest[i]);

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
    char tmp_dir[PATH_MAX], tmp_bin[PATH_MAX];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp-%d-%s", eng->cache_dir, (int)getpid(), key);
    rm_tree(tmp_dir);
    if (mkdir(tmp_dir, 0755) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create %s: %s", tmp_dir,
                       strerror(errno));
        goto unlock;
    }
    snprintf(tmp_bin, sizeof tmp_bin, "%s/guest", tmp_dir);
    char *log = NULL, why[256] = "";
    int status = run_script(eng->build_script, src, tmp_bin, &log, why, sizeof why);
    if (status != 0 || stat(tmp_bin, &st) != 0) {
        if (status == 0)
            snprintf(why, sizeof why, "the build script succeeded but wrote no %s", tmp_bin);
        else if (status > 0)
            snprintf(why, sizeof why, "the build failed (exit status %d)", status);
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest in %s: %s:\n%s", src, why,
                       log_tail(log, 800));
        rm_tree(tmp_dir);
        if (log_out)
            *log_out = log;
        else
            free(log);
        goto unlock;
    }
    char log_path[PATH_MAX]; /* the log stays beside the binary */
    snprintf(log_path, sizeof log_path, "%s/build.log", tmp_dir);
    FILE *f = fopen(log_path, "w");
    if (f) {
        fprintf(f, "%s", log ? log : "");
        fclose(f);
    }
    if (rename(tmp_dir, final_dir) != 0)
        rm_tree(tmp_dir); /* someone else finished first: theirs is the same build */
    atomic_fetch_add(&eng->builds, 1);
    snprintf(path_out, cap, "%s", final_bin);
    if (log_out)
        *log_out = log;
    else
        free(log);
unlock:
    pthread_mutex_unlock(&eng->build_mu);
    return code;
}
