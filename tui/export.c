/* tui/export.c — the console's `:export FILE`: every job a filter matches written to a new file,
 * one JSON object a line, with the field names of `aspen jobs --json` (payload, result and tags as
 * JSON when they are JSON, else as text; text that is not UTF-8 is kept with U+FFFD for each bad
 * byte). Rows are read 500 at a time by id, so an export of millions never holds them all. No
 * curses: it runs on the thread pool, counting as it goes for the console's progress line.
 */
#include "view.h"

#include "aspen_text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *text_json(const char *s, size_t len)
{
    if (!s)
        return json_null();
    json_t *v = NULL;
    if (aspen_text_utf8_valid(s, len)) {
        v = json_stringn(s, len);
    } else {
        size_t n = 0;
        char *fixed = aspen_text_utf8_repair(s, len, &n);
        if (fixed)
            v = json_stringn(fixed, n);
        free(fixed);
    }
    return v ? v : json_null();
}

static json_t *json_or_text(const char *s, size_t len)
{
    if (!s)
        return json_null();
    json_error_t je;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &je);
    return v ? v : text_json(s, len);
}

static json_t *str_json(const char *s) { return s ? text_json(s, strlen(s)) : json_null(); }

static json_t *job_json(const aspen_store_job *j)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "type", str_json(j->type ? j->type : ""));
    json_object_set_new(o, "state", json_string(aspen_store_state_name(j->state)));
    json_object_set_new(o, "binary", str_json(j->binary_name));
    json_object_set_new(o, "binary_sha256", str_json(j->binary_sha256));
    json_object_set_new(o, "source_dir", str_json(j->source_dir));
    json_object_set_new(o, "payload", json_or_text(j->payload, j->payload ? strlen(j->payload) : 0));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
    json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
    json_object_set_new(o, "tags", j->tags ? json_or_text(j->tags, strlen(j->tags)) : json_array());
    json_object_set_new(o, "run_at_ms", json_integer(j->run_at_ms));
    json_object_set_new(o, "created_at_ms", json_integer(j->created_at_ms));
    json_object_set_new(o, "started_at_ms", json_integer(j->started_at_ms));
    json_object_set_new(o, "finished_at_ms", json_integer(j->finished_at_ms));
    json_object_set_new(o, "result", json_or_text(j->result, j->result ? j->result_size : 0));
    json_object_set_new(o, "error", str_json(j->error));
    json_object_set_new(o, "rerun_of", j->rerun_of ? json_integer(j->rerun_of) : json_null());
    return o;
}

int tui_export_jsonl(aspen_engine *eng, const char *filter_text, const char *path,
                     _Atomic int64_t *written, const _Atomic bool *stop, char *where,
                     size_t where_cap, char *msg, size_t cap)
{
    atomic_store(written, 0);
    if (where_cap)
        snprintf(where, where_cap, "%s", path);
    aspen_store_filter f;
    char buf[2048];
    if (tui_filter_parse(filter_text, &f, buf, sizeof buf, msg, cap) != 0)
        return -1;
    /* a new file only: an export never overwrites what is there */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(msg, cap, "cannot create %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (export writes a new file: pick another name)" : "");
        return -1;
    }
    FILE *out = fdopen(fd, "w");
    if (!out) {
        snprintf(msg, cap, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* by id from the last one written: pages by offset over a list that changes (new jobs on
     * top) wrote some jobs twice and missed others, and an offset of 100,000 scans 100,000 rows
     * per page; newest first unless the filter asks for the oldest */
    f.sort = ASPEN_STORE_SORT_ID;
    f.sort_desc = f.order != ASPEN_STORE_ORDER_OLDEST;
    f.limit = 500;
    f.offset = 0;
    f.after_id = 0;
    f.after_inclusive = false;
    int rc = 0;
    for (;;) {
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        aspen_engine_error err = {0};
        if (aspen_engine_list(eng, &f, &jobs, &n, &err) != 0) {
            snprintf(msg, cap, "%s", err.msg);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *o = job_json(&jobs[i]);
            if (!o || json_dumpf(o, out, JSON_COMPACT | JSON_ENSURE_ASCII) != 0 ||
                fputc('\n', out) == EOF) {
                snprintf(msg, cap, "writing %s failed: %s", path, o ? strerror(errno) : "out of memory");
                rc = -1;
            } else {
                atomic_fetch_add(written, 1);
            }
            json_decref(o);
        }
        if (n)
            f.after_id = jobs[n - 1].id;
        aspen_store_jobs_free(jobs, n);
        if (rc || n < (size_t)f.limit)
            break;
        if (atomic_load(stop)) { /* the console quits: it does not wait for millions of rows */
            snprintf(msg, cap, "stopped as the console quit: %s holds the first %lld only", path,
                     (long long)atomic_load(written));
            rc = -1;
            break;
        }
    }
    if (fclose(out) != 0 && rc == 0) {
        snprintf(msg, cap, "writing %s failed: %s", path, strerror(errno));
        rc = -1;
    }
    char abs[PATH_MAX];
    if (where_cap && realpath(path, abs))
        snprintf(where, where_cap, "%s", abs);
    return rc;
}
