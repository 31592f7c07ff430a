/* cli/util.c — helpers shared by the `aspen` subcommands: finding guest binaries, reading files,
 * checking JSON, timing. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef ASPEN_SOURCE_DIR
#define ASPEN_SOURCE_DIR "."
#endif

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *cli_guest_dir(void)
{
    static char dir[PATH_MAX + 64];
    const char *env = getenv("ASPEN_GUEST_DIR");
    if (env && *env && is_dir(env))
        return env;
    if (is_dir("target/guest-binaries"))
        return "target/guest-binaries";
    /* next to the executable: build/aspen -> ../target/guest-binaries */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s/../target/guest-binaries", exe);
            if (is_dir(dir))
                return dir;
        }
    }
    snprintf(dir, sizeof dir, "%.*s/target/guest-binaries", PATH_MAX, ASPEN_SOURCE_DIR);
    return is_dir(dir) ? dir : NULL;
}

static int dir_given(const char *guest, char *msg, size_t msgcap)
{
    snprintf(msg, msgcap,
             "%s is a directory, not a guest binary: build it with scripts/build-guest.sh %s "
             "and run the binary it prints, or submit it as it is with aspen submit --source %s",
             guest, guest, guest);
    return -1;
}

int cli_resolve_guest(const char *guest, char *out, size_t cap, char *msg, size_t msgcap)
{
    /* a source directory given where a binary goes: say what to do with it (a bare name is
     * looked up in the guest directory first, so ./echo-worker/ beside it does not shadow it) */
    if (strchr(guest, '/') && is_dir(guest))
        return dir_given(guest, msg, msgcap);
    if (strchr(guest, '/') || is_file(guest)) {
        if (!is_file(guest)) {
            snprintf(msg, msgcap, "guest binary %s not found", guest);
            return -1;
        }
        snprintf(out, cap, "%s", guest);
        return 0;
    }
    const char *dir = cli_guest_dir();
    if (dir) {
        snprintf(out, cap, "%s/%s", dir, guest);
        if (is_file(out))
            return 0;
    }
    if (is_dir(guest))
        return dir_given(guest, msg, msgcap);
    snprintf(msg, msgcap,
             "no guest named %s in %s: build it with scripts/build-guest.sh %s, or give a path",
             guest, dir ? dir : "target/guest-binaries (which does not exist yet)", guest);
    return -1;
}

uint8_t *cli_read_file(const char *path, size_t max, size_t *len, char *msg, size_t msgcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msgcap, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max)
                break;
            uint8_t *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > max) {
        snprintf(msg, msgcap, !buf ? "out of memory reading %s"
                              : bad ? "cannot read %s"
                                    : "%s is too large",
                 path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cli_check_json(const char *text, size_t len, char *msg, size_t msgcap)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        snprintf(msg, msgcap, "line %d column %d (byte %d): %s", e.line, e.column, e.position,
                 e.text);
        return -1;
    }
    json_decref(j);
    return 0;
}

double cli_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void cli_sort(double *v, size_t n) { qsort(v, n, sizeof *v, dcmp); }

double cli_pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}
