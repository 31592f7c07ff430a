/* retention.c — how long finished jobs are kept, per final state (issue 10's retention, issue 9's
 * retention settings): the settings in the database (so every engine, host and console sees the
 * same), their defaults (River's: succeeded and cancelled 24 h, failed — River's "discarded" —
 * 7 days), and the public wrappers of the backends' batched deletes (prune, delete_jobs) with the
 * checks that need no database. The engine's pruner (engine/retention.c) calls prune in small
 * batches; `aspen purge` and the console's bulk delete call them too. */
#include "store_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const setting_keys[ASPEN_STORE_STATE_COUNT] = {
    [ASPEN_STORE_SUCCEEDED] = "retention.succeeded",
    [ASPEN_STORE_FAILED] = "retention.failed",
    [ASPEN_STORE_CANCELLED] = "retention.cancelled",
};

int64_t aspen_store_retention_default_ms(aspen_store_state state)
{
    switch (state) {
    case ASPEN_STORE_SUCCEEDED: return 24LL * 3600 * 1000;
    case ASPEN_STORE_CANCELLED: return 24LL * 3600 * 1000;
    case ASPEN_STORE_FAILED: return 7LL * 24 * 3600 * 1000;
    default: return 0;
    }
}

static int not_final(aspen_store_state state, aspen_store_error *err)
{
    return store_err(err, ASPEN_STORE_EINVAL,
                     "retention is for finished jobs: %s is not a final state (give succeeded, "
                     "failed or cancelled)",
                     aspen_store_state_name(state));
}

int aspen_store_retention_get(aspen_store *s, aspen_store_retention *out, aspen_store_error *err)
{
    if (!out)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_retention_get: out is NULL");
    memset(out, 0, sizeof *out);
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        if (!setting_keys[st])
            continue;
        char *v = NULL;
        int code = aspen_store_setting_get(s, setting_keys[st], &v, err);
        if (code)
            return code;
        out->keep_ms[st] = aspen_store_retention_default_ms((aspen_store_state)st);
        out->is_default[st] = true;
        if (v) {
            /* Written by aspen_store_retention_set: "off" or a number of ms. Anything else (a
             * person's hand in the settings table) is read as the default, never as "delete". */
            char *end = NULL;
            errno = 0;
            long long ms = strtoll(v, &end, 10);
            if (strcmp(v, "off") == 0) {
                out->keep_ms[st] = 0;
                out->is_default[st] = false;
            } else if (end != v && !*end && !errno && ms > 0) {
                out->keep_ms[st] = ms;
                out->is_default[st] = false;
            }
            free(v);
        }
    }
    return 0;
}

int aspen_store_retention_set(aspen_store *s, aspen_store_state state, int64_t keep_ms,
                              aspen_store_error *err)
{
    if ((int)state < 0 || state >= ASPEN_STORE_STATE_COUNT || !setting_keys[state])
        return not_final(state, err);
    if (keep_ms < 0)
        return aspen_store_setting_set(s, setting_keys[state], NULL, err);
    char v[32];
    if (keep_ms == 0)
        snprintf(v, sizeof v, "off");
    else
        snprintf(v, sizeof v, "%lld", (long long)keep_ms);
    return aspen_store_setting_set(s, setting_keys[state], v, err);
}

int aspen_store_prune_timed(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                            size_t max, int64_t budget_us, aspen_store_prune_result *out,
                            aspen_store_error *err)
{
    if (out)
        *out = (aspen_store_prune_result){0};
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_prune: no store handle (NULL)");
    if (!aspen_store_state_is_final(state))
        return not_final(state, err);
    if (budget_us < 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "prune time bound %lld us is negative (0 for none, or a positive bound)",
                         (long long)budget_us);
    if (max == 0)
        return 0;
    if (max > ASPEN_STORE_PRUNE_MAX)
        max = ASPEN_STORE_PRUNE_MAX;
    aspen_store_prune_result r = {0};
    int code = s->ops->prune(s, state, finished_before_ms, max, budget_us, &r, err);
    if (!code && out)
        *out = r;
    return code;
}

void aspen_store_prune_yield_set(aspen_store *s, bool (*fn)(void *ctx), void *ctx)
{
    if (!s)
        return;
    s->prune_yield = fn;
    s->prune_yield_ctx = ctx;
}

int aspen_store_prune_count(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                            int64_t *count, aspen_store_error *err)
{
    if (!count)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_prune_count: count is NULL");
    *count = 0;
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_prune_count: no store handle (NULL)");
    if (!aspen_store_state_is_final(state))
        return not_final(state, err);
    if (finished_before_ms == INT64_MAX) { /* every job of the state: the kept counts, O(1) */
        int64_t counts[ASPEN_STORE_STATE_COUNT];
        int code = s->ops->counts(s, counts, err);
        if (!code)
            *count = counts[state];
        return code;
    }
    return s->ops->prune_count(s, state, finished_before_ms, count, err);
}

int aspen_store_prune(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                      size_t max, int64_t *deleted, aspen_store_error *err)
{
    aspen_store_prune_result r;
    int code = aspen_store_prune_timed(s, state, finished_before_ms, max, 0, &r, err);
    if (deleted)
        *deleted = code ? 0 : r.deleted;
    return code;
}

int aspen_store_delete_jobs(aspen_store *s, const int64_t *ids, size_t n, int64_t *deleted,
                            aspen_store_error *err)
{
    if (deleted)
        *deleted = 0;
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "aspen_store_delete_jobs: no store handle (NULL)");
    if (!ids && n)
        return store_err(err, ASPEN_STORE_EINVAL, "no job ids given (ids is NULL)");
    if (n == 0)
        return 0;
    if (n > ASPEN_STORE_PRUNE_MAX)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%zu jobs in one delete: at most %d a transaction (delete in batches)", n,
                         ASPEN_STORE_PRUNE_MAX);
    int64_t k = 0;
    int code = s->ops->delete_jobs(s, ids, n, &k, err);
    if (!code && deleted)
        *deleted = k;
    return code;
}
