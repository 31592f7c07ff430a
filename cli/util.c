/* cli/util.c — helpers shared by the `aspen` subcommands: finding guest binaries, reading files
 * (bounded, whatever they are), payloads (--payload JSON | @FILE | -) checked with the engine's own
 * wording, options with "did you mean", durations for people, timing. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    char near[256];
    aspen_engine_nearest_guest(dir, guest, near, sizeof near);
    if (near[0]) {
        snprintf(msg, msgcap, "no guest named %s in %s: did you mean %s? (or build it with "
                 "scripts/build-guest.sh %s, or give a path)", guest, dir, near, guest);
        return -1;
    }
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

/* ---- "did you mean" ------------------------------------------------------------------------------ */

const char *cli_nearest(const char *word, const char *const *names, size_t n)
{
    return aspen_store_nearest(word, strlen(word), names, n);
}

/* ---- options ------------------------------------------------------------------------------------- */

bool cli_create = false;

/* getopt_long takes any unique prefix of a long option (--pay for --payload): a typo can then
 * mean another option tomorrow, when an option with the same start is added, and scripts break
 * silently. So before getopt_long sees argv, every long option in it is checked for an exact name:
 * a prefix is refused with the name it abbreviates. The values of options that take one are
 * skipped (--filter --x is a value), and so is everything after "--". 0, or -1 after the error. */
static int exact_long_names(int argc, char **argv, const char *shortopts,
                            const struct option *longopts, const char *cmd)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (a[0] != '-' || a[1] == '\0')
            continue;
        if (a[1] != '-') {
            /* short options, perhaps bundled: one that takes a value ends the word, and takes
             * the next word when it is the last letter */
            for (const char *c = a + 1; *c; c++) {
                const char *o = strchr(shortopts, *c);
                if (o && o[1] == ':') {
                    if (!c[1])
                        i++;
                    break;
                }
            }
            continue;
        }
        size_t n = strcspn(a + 2, "=");
        const struct option *hit = NULL;
        for (const struct option *o = longopts; o->name; o++)
            if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0)
                hit = o;
        if (hit) {
            if (hit->has_arg == required_argument && a[2 + n] != '=')
                i++;
            continue;
        }
        const struct option *pre = NULL;
        size_t n_pre = 0;
        for (const struct option *o = longopts; o->name; o++)
            if (n > 0 && strncmp(o->name, a + 2, n) == 0) {
                pre = o;
                n_pre++;
            }
        if (pre) {
            cli_error("unknown option '%.*s' for aspen %s: options are taken by their whole "
                      "name; did you mean '--%s'%s?",
                      (int)(n + 2), a, cmd, pre->name, n_pre > 1 ? " (or another of its start)" : "");
            return -1;
        }
        /* not a prefix either: getopt_long's own error below gives the "did you mean" */
    }
    return 0;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               const char *cmd)
{
    /* once per parse: each caller sets optind = 1 before its loop */
    if (optind <= 1 && exact_long_names(argc, argv, shortopts, longopts, cmd) != 0)
        return '?';
    char so[128];
    snprintf(so, sizeof so, ":%s", shortopts);
    opterr = 0; /* our messages, with "did you mean" */
    int li = -1;
    int c = getopt_long(argc, argv, so, longopts, &li);
    if (c != '?' && c != ':') {
        /* "--source --db X": getopt takes the next word as the value whatever it is, and the
         * option after it is lost (X then reads as the command's argument). A value given as a
         * separate word that is one of this command's own options is that mistake: say so. A
         * value attached (--source=--db) or any other text starting with "--" (--filter --x,
         * when --x is no option here) is taken as it is. */
        if (optarg && optind >= 2 && optarg == argv[optind - 1] && optarg[0] == '-' &&
            optarg[1] == '-' && optarg[2]) {
            size_t vn = strcspn(optarg + 2, "=");
            for (const struct option *o = longopts; o->name; o++)
                if (strlen(o->name) == vn && strncmp(o->name, optarg + 2, vn) == 0) {
                    char name[128];
                    if (li >= 0)
                        snprintf(name, sizeof name, "--%s", longopts[li].name);
                    else
                        snprintf(name, sizeof name, "-%c", c);
                    cli_error("%s needs a value (got the option --%s): give %s its value "
                              "first (aspen %s --help lists the options)",
                              name, o->name, name, cmd);
                    return '?';
                }
        }
        return c;
    }
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    char name[128];
    if (optopt && !(arg[0] == '-' && arg[1] == '-'))
        snprintf(name, sizeof name, "-%c", optopt);
    else
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    if (c == ':') {
        cli_error("%s needs a value (aspen %s --help lists the options)", name, cmd);
        return '?';
    }
    const char *names[64];
    char storage[64][40];
    size_t n = 0;
    for (const struct option *o = longopts; o->name && n < 64; o++, n++) {
        snprintf(storage[n], sizeof storage[n], "--%s", o->name);
        names[n] = storage[n];
    }
    const char *near = name[0] == '-' && name[1] == '-' ? cli_nearest(name, names, n) : NULL;
    /* "-5" where an id or a count goes: getopt takes it for an option, say what it is */
    if (arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9' && arg[strspn(arg + 1, "0123456789") + 1] == '\0')
        cli_error("'%s' is not an option of aspen %s, nor a job id or a count: those are whole "
                  "numbers from 1",
                  arg, cmd);
    else if (near)
        cli_error("unknown option '%s' for aspen %s: did you mean '%s'?", name, cmd, near);
    else
        cli_error("unknown option '%s' for aspen %s (aspen %s --help lists the options)", name,
                  cmd, cmd);
    return '?';
}

/* ---- payloads ------------------------------------------------------------------------------------ */

char *cli_read_bounded(const char *path, size_t max, size_t *len, char *msg, size_t cap)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "standard input" : path;
    if (is_stdin && isatty(STDIN_FILENO))
        fprintf(stderr, "aspen: reading standard input (end it with Ctrl-D)\n");
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, cap, "cannot open %s: %s", name, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(msg, cap, "%s is a directory, not a file", name);
        if (!is_stdin)
            close(fd);
        return NULL;
    }
    /* read at most max + 1 bytes, whatever the file is (a FIFO, /dev/zero, a growing file) */
    size_t n = 0, sz = 65536;
    char *buf = malloc(sz + 1);
    for (;;) {
        if (!buf) {
            snprintf(msg, cap, "out of memory reading %s", name);
            break;
        }
        if (n == sz) {
            size_t nsz = sz * 2 > max + 1 ? max + 1 : sz * 2;
            if (nsz <= sz) {
                snprintf(msg, cap,
                         "%s is larger than the %zu-byte limit (it was read up to the limit and "
                         "no further)",
                         name, max);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, nsz + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            sz = nsz;
        }
        ssize_t r = read(fd, buf + n, sz - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(msg, cap, "cannot read %s: %s", name, strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            snprintf(msg, cap,
                     "%s is larger than the %zu-byte limit (it was read up to the limit and no "
                     "further)",
                     name, max);
            free(buf);
            buf = NULL;
            break;
        }
    }
    if (!is_stdin)
        close(fd);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cli_check_payload(const char *text, size_t len, const char *from, char *msg, size_t cap)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        snprintf(msg, cap,
                 "invalid JSON payload%s%s: a NUL byte at position %zu (a payload is JSON text; "
                 "is this a binary file?)",
                 from ? " from " : "", from ? from : "", (size_t)(nul - text));
        return -1;
    }
    aspen_engine_error err = {0};
    if (aspen_engine_check_payload(text, &err) != 0) {
        /* the engine's wording, so `run` and `submit` say the same thing */
        const char *m = err.msg;
        if (from && strncmp(m, "invalid JSON payload", 20) == 0)
            snprintf(msg, cap, "invalid JSON payload from %s%s", from, m + 20);
        else if (from)
            snprintf(msg, cap, "%s (payload from %s)", m, from);
        else
            snprintf(msg, cap, "%s", m);
        return -1;
    }
    return 0;
}

char *cli_load_payload(const char *arg, size_t *len, char *from, size_t fromcap, char *msg,
                       size_t cap)
{
    const char *path = NULL;
    if (strcmp(arg, "-") == 0)
        path = "-";
    else if (arg[0] == '@')
        path = arg + 1;
    if (path && !*path) {
        snprintf(msg, cap, "--payload @ needs a file name: --payload @FILE, or - for stdin");
        return NULL;
    }
    char *text;
    if (path) {
        text = cli_read_bounded(path, ASPEN_ENGINE_MAX_PAYLOAD, len, msg, cap);
        snprintf(from, fromcap, "%s", strcmp(path, "-") == 0 ? "standard input" : path);
    } else {
        *len = strlen(arg);
        text = strdup(arg);
        from[0] = '\0';
        if (!text)
            snprintf(msg, cap, "out of memory");
    }
    if (!text)
        return NULL;
    if (cli_check_payload(text, *len, from[0] ? from : NULL, msg, cap) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- numbers for people -------------------------------------------------------------------------- */

void cli_format_count(int64_t n, char *out, size_t cap)
{
    char digits[24];
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)u);
    char buf[32];
    size_t k = 0;
    if (n < 0)
        buf[k++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    snprintf(out, cap, "%s", buf);
}

bool cli_confirm(const char *question, const char *verb)
{
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "\nno answer: standard input %s; add --yes to %s without asking\n",
                isatty(STDIN_FILENO) ? "ended" : "is not a terminal and gave no line", verb);
        return false;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

void cli_format_duration_us(int64_t us, char *out, size_t cap)
{
    if (us < 0) {
        snprintf(out, cap, "-");
    } else if (us < 1000) {
        snprintf(out, cap, "%lld us", (long long)us);
    } else if (us < 1000000) {
        if (us % 1000 == 0)
            snprintf(out, cap, "%lld ms", (long long)(us / 1000));
        else
            snprintf(out, cap, "%.*f ms", us < 10000 ? 2 : us < 100000 ? 1 : 0, (double)us / 1e3);
    } else if (us < 60000000) {
        if (us % 1000000 == 0)
            snprintf(out, cap, "%lld s", (long long)(us / 1000000));
        else
            snprintf(out, cap, "%.*f s", us < 10000000 ? 2 : 1, (double)us / 1e6);
    } else {
        int64_t s = us / 1000000;
        if (s < 3600)
            snprintf(out, cap, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
        else
            snprintf(out, cap, "%lld h %lld min", (long long)(s / 3600),
                     (long long)(s % 3600 / 60));
    }
}

int cli_parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        cli_error("%s wants a whole number from %lld to %lld, not '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_period(const char *opt, const char *s, int64_t *ms)
{
    size_t digits = strspn(s, "0123456789");
    if (digits && !s[digits] && strspn(s, "0") != digits) {
        /* `retention set succeeded 1` meant a second and deleted nearly everything: a bare
         * number is milliseconds to --timeout and --delay (the seed's timeout_ms), so for the
         * longer periods Aspen asks rather than guesses */
        cli_error("%s '%s' has no unit: write %ss, %sm, %sh or %sd (a bare number is "
                  "milliseconds to --timeout and --delay, so periods take a unit)",
                  opt, s, s, s, s, s);
        return -1;
    }
    aspen_store_error se = {0};
    if (aspen_store_duration_parse(s, ms, &se) != 0) {
        cli_error("%s: %s", opt, se.msg);
        return -1;
    }
    return 0;
}

int cli_parse_ms(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    /* the store's parser, the one the console's submit form uses too */
    int64_t ms;
    aspen_store_error se = {0};
    if (aspen_store_ms_parse(s, lo, hi, &ms, &se) != 0) {
        cli_error("%s wants %s", opt, se.msg);
        return -1;
    }
    *out = ms;
    return 0;
}
