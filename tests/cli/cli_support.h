/* tests/cli/cli_support.h — what the CLI test programs share: run a shell command line as a user
 * would and keep everything it printed (bytes, not lines: output may hold NULs and non-UTF-8) with
 * its exit status. Include after cmocka.h. */
#ifndef ASPEN_CLI_SUPPORT_H
#define ASPEN_CLI_SUPPORT_H

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

#endif
