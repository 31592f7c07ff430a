/* helpers.h — shared by the store tests: a fresh temporary directory per test, opening a store in
 * it, a fixed clock, and small shorthands for submitting and claiming. Header-only (static
 * functions) so each test program stays one file plus this. */
#ifndef ASPEN_TEST_STORE_HELPERS_H
#define ASPEN_TEST_STORE_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aspen_store.h"

#define T0 1700000000000LL /* the tests' "now": a fixed unix ms */

struct fixture {
    char dir[256];
    char path[300];
    aspen_store *s;
    int64_t engine;
};

static inline void fx_path(struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static inline aspen_store *open_or_fail(const char *path, const aspen_store_options *o)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    int rc = aspen_store_open(path, o, &s, &e);
    if (rc != 0)
        fail_msg("open %s: %d %s", path, rc, e.msg);
    return s;
}

static inline int fx_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/aspen-store-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/aspen.db", f->dir);
    f->s = open_or_fail(f->path, NULL);
    aspen_store_error e = {0};
    if (aspen_store_engine_register(f->s, getpid(), "test", 5000, T0, &f->engine, &e) != 0)
        fail_msg("register: %s", e.msg);
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Submits one job of `type` with priority and run_at; returns its id. */
static inline int64_t submit_job(aspen_store *s, const char *type, int priority, int64_t run_at,
                                 int max_attempts, int64_t now)
{
    aspen_store_job_spec spec = {.type = type,
                                 .priority = priority,
                                 .run_at_ms = run_at,
                                 .max_attempts = max_attempts,
                                 .payload = "{\"n\":1}"};
    int64_t id = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_submit(s, &spec, now, &id, &e);
    if (rc != 0)
        fail_msg("submit: %d %s", rc, e.msg);
    return id;
}

/* Reserves up to max jobs (they stay queued); returns how many, ids in claim order into ids (may
 * be NULL). */
static inline size_t reserve_ids(aspen_store *s, int64_t engine, size_t max, int64_t now,
                                 int64_t *ids)
{
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_claim(s, engine, max, now, &jobs, &n, NULL, &e);
    if (rc != 0)
        fail_msg("claim: %d %s", rc, e.msg);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].state != ASPEN_STORE_QUEUED)
            fail_msg("claim returned job %lld %s, not queued", (long long)jobs[i].id,
                     aspen_store_state_name(jobs[i].state));
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = jobs[i].id;
    aspen_store_jobs_free(jobs, n);
    return n;
}

/* Reserves up to max jobs and starts them at `now` (running, attempt charged), as an engine does
 * when its workers begin them; returns how many, ids in claim order into ids (may be NULL). */
static inline size_t claim_ids(aspen_store *s, int64_t engine, size_t max, int64_t now,
                               int64_t *ids)
{
    int64_t got[512];
    if (max > 512)
        max = 512;
    size_t n = reserve_ids(s, engine, max, now, got);
    aspen_store_start marks[512];
    int status[512];
    for (size_t i = 0; i < n; i++)
        marks[i] = (aspen_store_start){got[i], now};
    aspen_store_error e = {0};
    int rc = aspen_store_start_jobs(s, engine, marks, n, now, status, &e);
    if (rc != 0)
        fail_msg("start: %d %s", rc, e.msg);
    for (size_t i = 0; i < n; i++)
        if (status[i] != 0)
            fail_msg("start of job %lld refused: %d %s", (long long)got[i], status[i], e.msg);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = got[i];
    return n;
}

static inline aspen_store_state state_of(aspen_store *s, int64_t id)
{
    aspen_store_job j;
    aspen_store_error e = {0};
    if (aspen_store_get(s, id, &j, &e) != 0)
        fail_msg("get %lld: %s", (long long)id, e.msg);
    aspen_store_state st = j.state;
    aspen_store_job_clear(&j);
    return st;
}

/* Completes one job with an outcome; returns the per-item status. */
static inline int complete_one(aspen_store *s, int64_t engine, int64_t id, aspen_store_outcome o,
                               int64_t retry_at, int64_t now)
{
    aspen_store_completion c = {.job_id = id, .outcome = o, .retry_at_ms = retry_at};
    int status = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_complete(s, engine, &c, 1, now, &status, NULL, &e);
    if (rc != 0)
        fail_msg("complete: %d %s", rc, e.msg);
    return status;
}

#endif
