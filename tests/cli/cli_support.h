/* tests/cli/cli_support.h — what the CLI test programs share: run a shell command line as a user
 * would and keep everything it printed (bytes, not lines: output may hold NULs and non-UTF-8) with
 * its exit status; run / run_plain (fmt, ...), expect_out and check_cmd, the one copy of the
 * wrappers the tests call; a program's scratch directory (cli_scratch_dir, cli_remove_tree).
 * Include after cmocka.h. */
#ifndef ASPEN_CLI_SUPPORT_H
#define ASPEN_CLI_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct out {
    char *buf;
    size_t len;
    int status; /* exit status, or -1 */
} out;

static inline out run_shell(const char *cmd)
{
    out o = {0};
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 0;
    for (;;) {
        if (o.len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            o.buf = realloc(o.buf, cap);
            assert_non_null(o.buf);
        }
        size_t n = fread(o.buf + o.len, 1, 4096, p);
        if (n == 0)
            break;
        o.len += n;
    }
    o.buf[o.len] = '\0';
    int st = pclose(p);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

static inline bool has(const out *o, const char *needle)
{
    return memmem(o->buf, o->len, needle, strlen(needle)) != NULL;
}

/* A shell command line from a format, as it is: stdout only unless the command redirects stderr
 * (for output that must be parsed, JSON on stdout). */
static inline out run_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline out run_plain(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    return run_shell(cmd);
}

/* A shell command line from a format; stdout and stderr together unless the command redirects
 * them (the command runs in a subshell, so `2>/dev/null` inside it still works). */
static inline out run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline out run(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    cmd[0] = '(';
    int n = vsnprintf(cmd + 1, sizeof cmd - 16, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 16);
    strcat(cmd, ") 2>&1");
    return run_shell(cmd);
}

/* The exit status is `status` and the output holds needle (NULL: anything). */
static inline void expect_out(const out *o, int status, const char *needle)
{
    if (o->status != status || (needle && !has(o, needle)))
        fail_msg("want exit %d and \"%s\", got exit %d:\n%s", status, needle ? needle : "",
                 o->status, o->buf);
}

/* Runs and checks in one go, freeing the output. */
static inline void check_cmd(int status, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void check_cmd(int status, const char *needle, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    out o = run("%s", cmd);
    expect_out(&o, status, needle);
    free(o.buf);
}

/* A program's scratch directory /tmp/aspen-cli-NAME-XXXXXX, made with mkdtemp into dir; 0 or -1. */
static inline int cli_scratch_dir(char *dir, size_t size, const char *name)
{
    snprintf(dir, size, "/tmp/aspen-cli-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything under it (rm -rf, as a person would); 0 or -1. */
static inline int cli_remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The tests' private PostgreSQL server's admin conninfo (ctest fixture "pg" writes it to
 * $ASPEN_PG_DIR/conninfo), into info. Fails the test when not run through ctest. */
static inline void cli_pg_server(char *info, size_t size)
{
    const char *pgdir = getenv("ASPEN_PG_DIR");
    if (!pgdir)
        fail_msg("ASPEN_PG_DIR is not set: run through ctest (fixture pg)");
    char path[400];
    snprintf(path, sizeof path, "%s/conninfo", pgdir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(info, (int)size, f))
        fail_msg("no %s: run through ctest (fixture pg)", path);
    fclose(f);
    info[strcspn(info, "\n")] = 0;
}

#endif
