/* fuzz/fuzz_filter.c — libFuzzer target: the store's filter language (aspen_store_filter_parse,
 * store/filter.c), the text a user types into the console's `/` prompt and `aspen jobs --filter`.
 *
 * Each input is parsed into buffers of three sizes (tight ones reach the "filter too long"
 * paths); every string the parser returns must lie inside the caller's buffer and be terminated
 * there, and a failure must be EINVAL with a message. A filter that parses is then run against a
 * small in-memory store (aspen_store_count and aspen_store_list), which turns it into SQL with
 * JSON paths: that must give rows or EINVAL with a message (a bad payload path is the user's
 * error), never another error and never a crash.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aspen_store.h"

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_filter: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static aspen_store *g_store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    aspen_store_error err = {0};
    if (aspen_store_open(":memory:", NULL, &g_store, &err) != 0) {
        fprintf(stderr, "fuzz_filter: cannot open an in-memory store: %s\n", err.msg);
        exit(2);
    }
    static const char *payloads[] = {"{\"user\":\"alice\",\"n\":5}",
                                     "{\"user\":{\"name\":\"Alice B\"},\"items\":[{\"name\":\"x\"}]}",
                                     "{\"flag\":true,\"v\":\"5\"}", "[1,2,3]", "{}"};
    static const char *types[] = {"vm_execute", "echo", "checksum"};
    static const char *tags[] = {"[]", "[\"urgent\"]", "[\"a\",\"requires_isolation\"]"};
    for (int i = 0; i < 15; i++) {
        aspen_store_job_spec spec = {.type = types[i % 3], .payload = payloads[i % 5],
                                     .tags = tags[i % 3], .binary_name = "echo-worker",
                                     .binary = "bin", .binary_size = 3, .priority = i % 4};
        int64_t id;
        if (aspen_store_submit(g_store, &spec, aspen_store_now_ms(), &id, &err) != 0) {
            fprintf(stderr, "fuzz_filter: cannot submit a job: %s\n", err.msg);
            exit(2);
        }
    }
    return 0;
}

static void check_str(const char *what, const char *s, const char *buf, size_t bufsize)
{
    if (!s)
        return;
    if (s < buf || s >= buf + bufsize)
        finding("%s points outside the caller's buffer", what);
    if (!memchr(s, '\0', (size_t)(buf + bufsize - s)))
        finding("%s is not terminated inside the caller's buffer", what);
}

static void check_err(const char *what, int rc, const aspen_store_error *err)
{
    if (rc != ASPEN_STORE_EINVAL)
        finding("%s failed with %d, not EINVAL: %s", what, rc, err->msg);
    if (err->code != rc || !err->msg[0] || !memchr(err->msg, '\0', sizeof err->msg))
        finding("%s failed (%d) without a message", what, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static const size_t sizes[] = {1024, 24, 3};
    int first_rc = 0;
    aspen_store_filter first;
    char *first_buf = NULL;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t bs = sizes[k];
        char *buf = malloc(bs); /* exact size: ASan catches a write one past it */
        if (!buf)
            break;
        aspen_store_filter f;
        aspen_store_error err = {0};
        int rc = aspen_store_filter_parse(text, &f, buf, bs, &err);
        if (rc == 0) {
            check_str("type", f.type, buf, bs);
            check_str("binary", f.binary_name, buf, bs);
            check_str("tag", f.tag, buf, bs);
            if (f.n_fields > ASPEN_STORE_FILTER_MAX_FIELDS)
                finding("%zu payload fields", f.n_fields);
            for (size_t i = 0; i < f.n_fields; i++) {
                check_str("payload path", f.fields[i].path, buf, bs);
                check_str("payload value", f.fields[i].value, buf, bs);
                if (!f.fields[i].path || !f.fields[i].value)
                    finding("payload field %zu without path or value", i);
            }
            if (f.states >> ASPEN_STORE_STATE_COUNT)
                finding("state bits 0x%x beyond the states", f.states);
            if (f.id < 0 || f.rerun_of < 0)
                finding("negative id %lld / rerun-of %lld", (long long)f.id,
                        (long long)f.rerun_of);
        } else {
            check_err("parse", rc, &err);
        }
        if (k == 0) {
            first_rc = rc;
            first = f;
            first_buf = buf;
        } else {
            /* A smaller buffer can only add "too long"; it never accepts what a larger refused. */
            if (rc == 0 && first_rc != 0)
                finding("a %zu-byte buffer accepts what a 1024-byte one refused", bs);
            free(buf);
        }
    }
    if (first_buf && first_rc == 0) {
        aspen_store_error err = {0};
        int64_t count = -1;
        int rc = aspen_store_count(g_store, &first, &count, &err);
        if (rc != 0)
            check_err("count", rc, &err);
        else if (count < 0 || count > 15)
            finding("count %lld of a 15-job store", (long long)count);
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        first.limit = 20;
        rc = aspen_store_list(g_store, &first, &jobs, &n, &err);
        if (rc != 0)
            check_err("list", rc, &err);
        else if (count >= 0 && (int64_t)n > count)
            finding("list gave %zu jobs, count said %lld", n, (long long)count);
        aspen_store_jobs_free(jobs, n);
    }
    free(first_buf);
    free(text);
    return 0;
}
