/* api.c — the store's public functions (include/aspen_store.h), the same for every backend:
 * aspen_store_open picks the backend from the database name; every other call checks what needs
 * no database (see store_backend.h) and goes through the handle's ops table. The few public calls
 * that are compositions of others (submit one job, start or complete without the other half of a
 * group commit, the paused flag as a setting) are written here once. */
#include "store_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int no_store(aspen_store_error *err, const char *what)
{
    return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_%s: no store handle (NULL)", what);
}

/* ---- open ------------------------------------------------------------------------------------ */

int aspen_store_open(const char *name, const aspen_store_options *opts, aspen_store **out,
                     aspen_store_error *err)
{
    if (!out)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_open: out is NULL");
    *out = NULL;
    if (err)
        err->code = 0, err->msg[0] = '\0';
    aspen_store_options o = opts ? *opts : (aspen_store_options){0};
    if (store_backend_of(name, NULL) == STORE_BACKEND_POSTGRES)
        return store_pg_open(name, &o, out, err);
    return store_sqlite_open(name, &o, out, err);
}

const char *aspen_store_path(const aspen_store *s) { return s ? s->name : NULL; }

bool aspen_store_name_is_postgres(const char *name)
{
    return store_backend_of(name, NULL) == STORE_BACKEND_POSTGRES;
}

void aspen_store_name_shown(const char *name, char *out, size_t size)
{
    if (aspen_store_name_is_postgres(name))
        store_redact_conninfo(name, out, size);
    else if (size)
        snprintf(out, size, "%s", name ? name : "");
}

int aspen_store_log_cap(const aspen_store *s) { return s ? s->log_cap : 0; }

/* ---- compositions ------------------------------------------------------------------------------ */

int aspen_store_submit(aspen_store *s, const aspen_store_job_spec *spec, int64_t now_ms,
                       int64_t *id_out, aspen_store_error *err)
{
    if (!spec)
        return store_err(err, ASPEN_STORE_EINVAL, "no job given (spec is NULL)");
    return aspen_store_submit_batch(s, spec, 1, now_ms, id_out, err);
}

int aspen_store_start_jobs(aspen_store *s, int64_t engine_id, const aspen_store_start *starts,
                           size_t n, int64_t now_ms, int *status, aspen_store_error *err)
{
    return aspen_store_commit(s, engine_id, starts, n, status, NULL, 0, now_ms, NULL, NULL, err);
}

int aspen_store_complete(aspen_store *s, int64_t engine_id, const aspen_store_completion *c,
                         size_t n, int64_t now_ms, int *status, aspen_store_state *final_states,
                         aspen_store_error *err)
{
    return aspen_store_commit(s, engine_id, NULL, 0, NULL, c, n, now_ms, status, final_states, err);
}

int aspen_store_set_paused(aspen_store *s, bool paused, aspen_store_error *err)
{
    return aspen_store_setting_set(s, "queue.paused", paused ? "1" : "0", err);
}

int aspen_store_paused(aspen_store *s, bool *paused, aspen_store_error *err)
{
    char *v = NULL;
    int code = aspen_store_setting_get(s, "queue.paused", &v, err);
    *paused = !code && v && strcmp(v, "0") != 0;
    free(v);
    return code;
}

/* ---- through the ops table ------------------------------------------------------------------- */

void aspen_store_close(aspen_store *s)
{
    if (s) {
        char *cmd = s->cmd_args; /* the backend frees the handle itself */
        s->ops->close(s);
        free(cmd);
    }
}

int aspen_store_set_cmd_args(aspen_store *s, const char *args, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "set_cmd_args");
    size_t len = args ? strlen(args) : 0;
    if (len > ASPEN_STORE_CMD_ARGS_MAX)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "cmd_args is %zu bytes, more than the %d a handle keeps", len,
                         ASPEN_STORE_CMD_ARGS_MAX);
    char *copy = NULL;
    if (len && !(copy = strdup(args)))
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory keeping cmd_args");
    free(s->cmd_args);
    s->cmd_args = copy;
    return 0;
}

int aspen_store_check(aspen_store *s, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "check");
    return s->ops->check(s, err);
}

int aspen_store_recount(aspen_store *s, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "recount");
    return s->ops->recount(s, err);
}

int aspen_store_setting_set(aspen_store *s, const char *key, const char *value,
                            aspen_store_error *err)
{
    if (!s)
        return no_store(err, "setting_set");
    if (!key || !*key)
        return store_err(err, ASPEN_STORE_EINVAL, "setting key must not be empty");
    return s->ops->setting_set(s, key, value, err);
}

int aspen_store_setting_get(aspen_store *s, const char *key, char **value, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "setting_get");
    return s->ops->setting_get(s, key, value, err);
}

int aspen_store_checkpoint(aspen_store *s, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "checkpoint");
    return s->ops->checkpoint(s, err);
}

int aspen_store_data_version(aspen_store *s, uint64_t *version, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "data_version");
    return s->ops->data_version(s, version, err);
}

int aspen_store_put_binary(aspen_store *s, const void *bytes, size_t size, const char *name,
                           int64_t now_ms, char sha256_out[65], aspen_store_error *err)
{
    if (!s)
        return no_store(err, "put_binary");
    if (!bytes && size)
        return store_err(err, ASPEN_STORE_EINVAL, "binary bytes are NULL");
    int code = store_check_binary_size(size, err);
    if (code)
        return code;
    return s->ops->put_binary(s, bytes, size, name, now_ms, sha256_out, err);
}

int aspen_store_get_binary(aspen_store *s, const char *sha256, aspen_store_binary *out,
                           aspen_store_error *err)
{
    if (!s)
        return no_store(err, "get_binary");
    memset(out, 0, sizeof *out);
    if (!store_is_sha256_hex(sha256))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "'%.80s' is not a SHA-256 (64 lowercase hex digits)",
                         sha256 ? sha256 : "");
    return s->ops->get_binary(s, sha256, out, err);
}

/* Both submits: the specs checked, the unique keys of those with a rule derived here (once, for
 * every backend), then the backend's batch. */
static int submit(aspen_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                  int64_t *ids_out, aspen_store_submitted *out, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "submit_batch");
    if (!specs && n)
        return store_err(err, ASPEN_STORE_EINVAL, "no jobs given (specs is NULL)");
    char **keys = NULL;
    int code = 0;
    for (size_t i = 0; i < n && !code; i++) {
        char where[48] = "";
        if (n > 1)
            snprintf(where, sizeof where, "job %zu of the batch: ", i + 1);
        code = store_check_spec(&specs[i], where, err);
        if (!code && specs[i].queue && *specs[i].queue)
            code = aspen_store_queue_name_check(specs[i].queue, err);
        if (code || !specs[i].unique)
            continue;
        if (!keys && !(keys = calloc(n, sizeof *keys)))
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory for unique keys");
        else if (!(keys[i] = malloc(ASPEN_STORE_UNIQUE_KEY_MAX + 1)))
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory for unique keys");
        else if ((code = aspen_store_unique_key(&specs[i], keys[i], ASPEN_STORE_UNIQUE_KEY_MAX + 1,
                                                err)) != 0 &&
                 err && *where) {
            char msg[sizeof err->msg + sizeof where];
            snprintf(msg, sizeof msg, "%s%s", where, err->msg);
            msg[sizeof err->msg - 1] = '\0'; /* cut to fit, as every message is */
            memcpy(err->msg, msg, sizeof err->msg);
        }
    }
    if (!code)
        code = s->ops->submit_batch(s, specs, n, now_ms, (const char *const *)keys, ids_out, out,
                                    err);
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    return code;
}

int aspen_store_submit_batch(aspen_store *s, const aspen_store_job_spec *specs, size_t n,
                             int64_t now_ms, int64_t *ids_out, aspen_store_error *err)
{
    return submit(s, specs, n, now_ms, ids_out, NULL, err);
}

int aspen_store_submit_ex(aspen_store *s, const aspen_store_job_spec *specs, size_t n,
                          int64_t now_ms, aspen_store_submitted *out, aspen_store_error *err)
{
    return submit(s, specs, n, now_ms, NULL, out, err);
}

int aspen_store_job_unique_key(aspen_store *s, int64_t id, char **key, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "job_unique_key");
    if (!key)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_job_unique_key: key is NULL");
    *key = NULL;
    aspen_store_job_rule r = {0};
    int code = s->ops->job_unique_rule(s, id, &r, err);
    if (!code)
        *key = r.key; /* handed over */
    return code;
}

int aspen_store_job_unique_rule(aspen_store *s, int64_t id, aspen_store_job_rule *out,
                                aspen_store_error *err)
{
    if (!s)
        return no_store(err, "job_unique_rule");
    if (!out)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_job_unique_rule: out is NULL");
    *out = (aspen_store_job_rule){0};
    int code = s->ops->job_unique_rule(s, id, out, err);
    if (code)
        aspen_store_job_rule_clear(out);
    else if (out->key && !out->states)
        out->states = ASPEN_STORE_UNIQUE_STATES;
    return code;
}

int aspen_store_claim(aspen_store *s, int64_t engine_id, size_t max, int64_t now_ms,
                      aspen_store_job **jobs, size_t *n, bool *paused, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "claim");
    return s->ops->claim(s, engine_id, max, now_ms, jobs, n, paused, err);
}

/* The test hook aspen_store_test_fail_unclaims: how many unclaims are still to be refused.
 * Process-wide, because an engine opens its store handles itself and a test cannot reach them. */
static atomic_int unclaims_to_fail;

int aspen_store_test_fail_unclaims(int n)
{
    int left = atomic_exchange(&unclaims_to_fail, n > 0 ? n : 0);
    return left > 0 ? left : 0;
}

/* Takes one refusal from the hook's budget: true when this call is to fail. */
static bool unclaim_refused_by_test_hook(int *left_after)
{
    int left = atomic_load_explicit(&unclaims_to_fail, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&unclaims_to_fail, &left, left - 1)) {
            *left_after = left - 1;
            return true;
        }
    }
    return false;
}

int aspen_store_unclaim(aspen_store *s, int64_t engine_id, const int64_t *ids, size_t n,
                        aspen_store_error *err)
{
    if (!s)
        return no_store(err, "unclaim");
    if (!ids && n)
        return store_err(err, ASPEN_STORE_EINVAL, "no job ids given");
    int left = 0;
    if (n && unclaim_refused_by_test_hook(&left)) /* giving back nothing cannot fail */
        return store_err(err, ASPEN_STORE_EIO,
                         "giving back %zu reservation(s) refused on purpose by the test hook "
                         "aspen_store_test_fail_unclaims (%d more to refuse); nothing was written",
                         n, left);
    return s->ops->unclaim(s, engine_id, ids, n, err);
}

int aspen_store_append_logs(aspen_store *s, const aspen_store_log_line *lines, size_t n,
                            aspen_store_error *err)
{
    if (!s)
        return no_store(err, "append_logs");
    if (!lines && n)
        return store_err(err, ASPEN_STORE_EINVAL, "no log lines given");
    return s->ops->append_logs(s, lines, n, err);
}

int aspen_store_commit(aspen_store *s, int64_t engine_id, const aspen_store_start *starts,
                       size_t n_starts, int *start_status, const aspen_store_completion *c,
                       size_t n, int64_t now_ms, int *status, aspen_store_state *final_states,
                       aspen_store_error *err)
{
    if (!s)
        return no_store(err, "commit");
    if ((!c && n) || (!starts && n_starts))
        return store_err(err, ASPEN_STORE_EINVAL, "no completions or starts given");
    for (size_t i = 0; i < n; i++)
        if (c[i].replay && (c[i].replay_size == 0 || c[i].replay_attempt <= 0 ||
                            c[i].replay_size > ASPEN_STORE_MAX_ATTEMPT_DATA))
            return store_err(err, c[i].replay_size > ASPEN_STORE_MAX_ATTEMPT_DATA
                                      ? ASPEN_STORE_ETOOBIG
                                      : ASPEN_STORE_EINVAL,
                             "completion %zu (job %lld): a replay record needs 1 to %u bytes and "
                             "its attempt's number (got %zu bytes, attempt %d)",
                             i, (long long)c[i].job_id, ASPEN_STORE_MAX_ATTEMPT_DATA,
                             c[i].replay_size, c[i].replay_attempt);
    return s->ops->commit(s, engine_id, starts, n_starts, start_status, c, n, now_ms, status,
                          final_states, err);
}

int aspen_store_release(aspen_store *s, int64_t engine_id, int64_t job_id, int64_t now_ms,
                        aspen_store_error *err)
{
    if (!s)
        return no_store(err, "release");
    return s->ops->release(s, engine_id, job_id, now_ms, err);
}

int aspen_store_cancel(aspen_store *s, int64_t id, int64_t now_ms,
                       aspen_store_cancel_result *result, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "cancel");
    return s->ops->cancel(s, id, now_ms, result, err);
}

int aspen_store_rerun(aspen_store *s, int64_t id, int64_t now_ms, int64_t *new_id,
                      aspen_store_error *err)
{
    aspen_store_submitted out = {0};
    int code = aspen_store_rerun_ex(s, id, now_ms, 0, &out, err);
    if (!code && new_id)
        *new_id = out.id;
    return code;
}

int aspen_store_rerun_ex(aspen_store *s, int64_t id, int64_t now_ms, unsigned flags,
                         aspen_store_submitted *out, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "rerun");
    if (flags & ~ASPEN_STORE_RERUN_NO_UNIQUE)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_rerun_ex: unknown flags 0x%x",
                         flags & ~ASPEN_STORE_RERUN_NO_UNIQUE);
    aspen_store_submitted none = {0};
    if (!out)
        out = &none;
    *out = (aspen_store_submitted){0};
    return s->ops->rerun(s, id, now_ms, flags, out, err);
}

int aspen_store_retry(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "retry");
    return s->ops->retry(s, id, now_ms, err);
}

int aspen_store_delete(aspen_store *s, int64_t id, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "delete");
    return s->ops->delete (s, id, err);
}

int aspen_store_purge(aspen_store *s, int64_t finished_before_ms, int64_t *deleted,
                      aspen_store_error *err)
{
    if (!s)
        return no_store(err, "purge");
    return s->ops->purge(s, finished_before_ms, deleted, err);
}

int aspen_store_engine_register(aspen_store *s, int64_t pid, const char *host, int64_t lease_ms,
                                int64_t now_ms, int64_t *engine_id, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "engine_register");
    if (lease_ms <= 0)
        return store_err(err, ASPEN_STORE_EINVAL, "lease must be positive (e.g. 5000 ms)");
    return s->ops->engine_register(s, pid, host, lease_ms, now_ms, engine_id, err);
}

int aspen_store_engine_renew(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                             aspen_store_error *err)
{
    if (!s)
        return no_store(err, "engine_renew");
    return s->ops->engine_renew(s, engine_id, lease_ms, now_ms, err);
}

int aspen_store_engine_unregister(aspen_store *s, int64_t engine_id, int64_t now_ms,
                                  int64_t *released, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "engine_unregister");
    return s->ops->engine_unregister(s, engine_id, now_ms, released, err);
}

int aspen_store_engine_heartbeat(aspen_store *s, int64_t engine_id, int64_t lease_ms,
                                 const aspen_store_engine_figures *f, int64_t now_ms,
                                 aspen_store_error *err)
{
    if (!s)
        return no_store(err, "engine_heartbeat");
    if (!f)
        return store_err(err, ASPEN_STORE_EINVAL, "engine_heartbeat: figures are NULL");
    if (f->n_slots && !f->slots)
        return store_err(err, ASPEN_STORE_EINVAL, "engine_heartbeat: %zu slots but no array",
                         f->n_slots);
    if (lease_ms <= 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "engine_heartbeat: lease must be positive (got %lld ms)",
                         (long long)lease_ms);
    if (f->workers < 0 || f->busy < 0 || f->warm_vms < 0 || f->rss_bytes < 0 ||
        !(f->jobs_per_s >= 0 && f->jobs_per_s < 1e12))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "engine_heartbeat: figures must be non-negative numbers");
    if (f->queues && strlen(f->queues) > ASPEN_STORE_ENGINE_QUEUES_MAX)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "engine_heartbeat: the served queues' list is %zu bytes (at most %d)",
                         strlen(f->queues), ASPEN_STORE_ENGINE_QUEUES_MAX);
    char version[32];
    store_clean_ascii(f->version ? f->version : "", version, sizeof version);
    char *slots = store_engine_slots_encode(f->slots, f->n_slots);
    if (!slots)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing a heartbeat");
    int code = s->ops->engine_heartbeat(s, engine_id, lease_ms, f, version, slots, now_ms, err);
    free(slots);
    return code;
}

int aspen_store_engines(aspen_store *s, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
                        aspen_store_error *err)
{
    if (!s)
        return no_store(err, "engines");
    int code = s->ops->engines(s, now_ms, out, n, err);
    if (code)
        return code;
    for (size_t i = 0; i < *n; i++)
        (*out)[i].stale = (*out)[i].heartbeat_age_ms > ASPEN_STORE_HEARTBEAT_STALE_MS;
    return 0;
}

int aspen_store_recover(aspen_store *s, int64_t now_ms, aspen_store_recovery *report,
                        aspen_store_error *err)
{
    if (!s)
        return no_store(err, "recover");
    return s->ops->recover(s, 0, 0, now_ms, report, err);
}

int aspen_store_recover_others(aspen_store *s, int64_t self_engine, int64_t min_expired_ms,
                               int64_t now_ms, aspen_store_recovery *report,
                               aspen_store_error *err)
{
    if (!s)
        return no_store(err, "recover");
    if (self_engine < 0 || min_expired_ms < 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "recovery needs an engine id and a minimum expiry of 0 or more "
                         "(got %lld and %lld ms)",
                         (long long)self_engine, (long long)min_expired_ms);
    return s->ops->recover(s, self_engine, min_expired_ms, now_ms, report, err);
}

int aspen_store_cancel_requests(aspen_store *s, int64_t engine_id, int64_t **ids, size_t *n,
                                aspen_store_error *err)
{
    if (!s)
        return no_store(err, "cancel_requests");
    return s->ops->cancel_requests(s, engine_id, ids, n, err);
}

int aspen_store_get(aspen_store *s, int64_t id, aspen_store_job *out, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "get");
    return s->ops->get(s, id, out, err);
}

int aspen_store_list(aspen_store *s, const aspen_store_filter *filter, aspen_store_job **jobs,
                     size_t *n, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "list");
    return s->ops->list(s, filter, jobs, n, err);
}

int aspen_store_set_priority(aspen_store *s, int64_t id, int priority, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "set_priority");
    if (priority < ASPEN_STORE_PRIORITY_MIN || priority > ASPEN_STORE_PRIORITY_MAX)
        return store_err(err, ASPEN_STORE_EINVAL, "priority %d is out of range: it goes from %d to %d "
                         "(higher runs first)", priority, ASPEN_STORE_PRIORITY_MIN,
                         ASPEN_STORE_PRIORITY_MAX);
    return s->ops->set_priority(s, id, priority, err);
}

int aspen_store_run_now(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "run_now");
    return s->ops->run_now(s, id, now_ms, err);
}

/* The delay is checked once, here, for every backend: 0 or less would make a job due (run-now's
 * edge, not this one) and a delay past the bound is most likely a unit mistaken. */
static int snooze_delay_check(int64_t delay_ms, aspen_store_error *err)
{
    if (delay_ms > 0 && delay_ms <= ASPEN_STORE_SNOOZE_MAX_MS)
        return 0;
    if (delay_ms <= 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "a snooze of %s puts nothing off: give a delay of more than 0, at most "
                         "365d (to run a scheduled job now: aspen run-now ID)",
                         delay_ms < 0 ? "a negative time" : "0");
    char got[32];
    aspen_store_duration_format(delay_ms, got, sizeof got);
    return store_err(err, ASPEN_STORE_EINVAL,
                     "a snooze of %s is too long: at most 365d (a year, as submit's --delay)", got);
}

int aspen_store_snooze(aspen_store *s, int64_t id, int64_t delay_ms, int64_t now_ms,
                       aspen_store_error *err)
{
    if (!s)
        return no_store(err, "snooze");
    int code = snooze_delay_check(delay_ms, err);
    return code ? code : s->ops->snooze(s, id, delay_ms, now_ms, err);
}

int aspen_store_snooze_matching(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t delay_ms, int64_t now_ms, int64_t *snoozed,
                                int64_t *reserved, aspen_store_error *err)
{
    if (snoozed)
        *snoozed = 0;
    if (reserved)
        *reserved = 0;
    if (!s)
        return no_store(err, "snooze_matching");
    int code = snooze_delay_check(delay_ms, err);
    return code ? code
                : s->ops->snooze_matching(s, filter, delay_ms, now_ms, snoozed, reserved, err);
}

int aspen_store_count(aspen_store *s, const aspen_store_filter *filter, int64_t *count,
                      aspen_store_error *err)
{
    if (!s)
        return no_store(err, "count");
    return s->ops->count(s, filter, count, err);
}

int aspen_store_retry_failed(aspen_store *s, const struct aspen_store_filter *filter,
                             int64_t now_ms, int64_t *retried, aspen_store_error *err)
{
    return aspen_store_retry_failed_ex(s, filter, now_ms, retried, NULL, NULL, err);
}

int aspen_store_retry_failed_ex(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t now_ms, int64_t *retried, aspen_store_retry_skip **skipped,
                                size_t *n_skipped, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "retry_failed");
    aspen_store_retry_skip *list = NULL;
    size_t n = 0;
    int64_t done = 0;
    int code = s->ops->retry_failed(s, filter, now_ms, &done, &list, &n, err);
    if (code) {
        free(list);
        list = NULL, n = 0, done = 0;
    }
    if (retried)
        *retried = done;
    if (skipped)
        *skipped = list;
    else
        free(list);
    if (n_skipped)
        *n_skipped = n;
    return code;
}

int aspen_store_cancel_matching(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t now_ms, int64_t *cancelled, int64_t *requested,
                                aspen_store_error *err)
{
    if (!s)
        return no_store(err, "cancel_matching");
    return s->ops->cancel_matching(s, filter, now_ms, cancelled, requested, err);
}

int aspen_store_counts(aspen_store *s, int64_t counts[ASPEN_STORE_STATE_COUNT],
                       aspen_store_error *err)
{
    if (!s)
        return no_store(err, "counts");
    return s->ops->counts(s, counts, err);
}

int aspen_store_oldest_waiting(aspen_store *s, int64_t now_ms, int64_t *age_ms,
                               aspen_store_error *err)
{
    if (!s)
        return no_store(err, "oldest_waiting");
    return s->ops->oldest_waiting(s, now_ms, age_ms, err);
}

int aspen_store_attempts(aspen_store *s, int64_t job_id, aspen_store_attempt **out, size_t *n,
                         aspen_store_error *err)
{
    if (!s)
        return no_store(err, "attempts");
    return s->ops->attempts(s, job_id, out, n, err);
}

int aspen_store_logs(aspen_store *s, int64_t job_id, int64_t after_seq, size_t limit,
                     aspen_store_log **out, size_t *n, aspen_store_error *err)
{
    if (!s)
        return no_store(err, "logs");
    return s->ops->logs(s, job_id, after_seq, limit, out, n, err);
}

int aspen_store_log_feed(aspen_store *s, aspen_store_log_cursor *cursor, size_t limit,
                         aspen_store_feed_line **out, size_t *n, aspen_store_error *err)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!s)
        return no_store(err, "log feed");
    if (!cursor || !out || !n)
        return store_err(err, ASPEN_STORE_EINVAL, "log feed: cursor, out and n are required");
    if (cursor->tx < 0)
        return s->ops->log_feed_end(s, cursor, err);
    /* a bounded read: the caller asks again with the cursor it got back */
    if (limit == 0 || limit > 5000)
        limit = limit ? 5000 : 500;
    return s->ops->log_feed(s, cursor, limit, out, n, err);
}

void aspen_store_log_feed_free(aspen_store_feed_line *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i].line);
    free(l);
}

int aspen_store_wait_fd(aspen_store *s, int *fd, aspen_store_error *err)
{
    if (fd)
        *fd = -1;
    if (!s)
        return no_store(err, "wait_fd");
    if (!fd)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_wait_fd: fd is NULL");
    return s->ops->wait_fd(s, fd, err);
}

int aspen_store_notified(aspen_store *s, bool *woken, aspen_store_error *err)
{
    if (woken)
        *woken = false;
    if (!s)
        return no_store(err, "notified");
    if (!woken)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_notified: woken is NULL");
    return s->ops->notified(s, woken, err);
}

int aspen_store_log_wait_fd(aspen_store *s, int *fd, aspen_store_error *err)
{
    if (fd)
        *fd = -1;
    if (!s)
        return no_store(err, "log_wait_fd");
    if (!fd)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_log_wait_fd: fd is NULL");
    return s->ops->log_wait_fd ? s->ops->log_wait_fd(s, fd, err) : 0;
}

int aspen_store_log_notified(aspen_store *s, bool *woken, aspen_store_error *err)
{
    if (woken)
        *woken = false;
    if (!s)
        return no_store(err, "log_notified");
    if (!woken)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_log_notified: woken is NULL");
    return s->ops->log_notified ? s->ops->log_notified(s, woken, err) : 0;
}

int aspen_store_wait_work(aspen_store *s, int timeout_ms, bool *woken, aspen_store_error *err)
{
    if (!woken)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_wait_work: woken is NULL");
    *woken = false;
    int fd = -1;
    int code = aspen_store_wait_fd(s, &fd, err);
    if (code || fd < 0)
        return code;
    /* Something may already be buffered on the connection: take it before sleeping. */
    code = aspen_store_notified(s, woken, err);
    if (code || *woken)
        return code;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return store_err(err, ASPEN_STORE_EIO, "waiting for new work: poll failed (errno %d)",
                         errno);
    return rc == 0 ? 0 : aspen_store_notified(s, woken, err);
}

/* ---- attempt data (schema version 6) ---------------------------------------------------------- */

const char *aspen_store_data_kind_name(aspen_store_data_kind kind)
{
    return kind == ASPEN_STORE_DATA_CORE ? "core" : kind == ASPEN_STORE_DATA_REPLAY ? "replay" : "?";
}

static bool data_kind_ok(int kind)
{
    return kind == ASPEN_STORE_DATA_CORE || kind == ASPEN_STORE_DATA_REPLAY;
}

int aspen_store_put_attempt_data(aspen_store *s, const aspen_store_attempt_data *items, size_t n,
                                 aspen_store_error *err)
{
    if (!s)
        return no_store(err, "put_attempt_data");
    if (n == 0)
        return 0;
    if (!items)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_put_attempt_data: no items (NULL)");
    for (size_t i = 0; i < n; i++) {
        const aspen_store_attempt_data *d = &items[i];
        if (d->job_id <= 0 || d->attempt <= 0 || !data_kind_ok((int)d->kind) || !d->bytes ||
            d->size == 0)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "attempt data %zu: job %lld attempt %d kind %d with %zu bytes: a job, "
                             "an attempt >= 1, a kind (core or replay) and some bytes are needed",
                             i, (long long)d->job_id, d->attempt, (int)d->kind, d->size);
        if (d->size > ASPEN_STORE_MAX_ATTEMPT_DATA)
            return store_err(err, ASPEN_STORE_ETOOBIG,
                             "the %s of job %lld attempt %d is %zu bytes, more than the store "
                             "keeps (%u): lower the cap that produced it",
                             aspen_store_data_kind_name(d->kind), (long long)d->job_id,
                             d->attempt, d->size, ASPEN_STORE_MAX_ATTEMPT_DATA);
    }
    return s->ops->put_attempt_data(s, items, n, err);
}

int aspen_store_get_attempt_data(aspen_store *s, int64_t job_id, int attempt,
                                 aspen_store_data_kind kind, void **bytes, size_t *size,
                                 aspen_store_error *err)
{
    if (bytes)
        *bytes = NULL;
    if (size)
        *size = 0;
    if (!s)
        return no_store(err, "get_attempt_data");
    if (!bytes || !size || !data_kind_ok((int)kind) || attempt <= 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "aspen_store_get_attempt_data: an attempt >= 1, a kind and out "
                         "pointers are needed");
    return s->ops->get_attempt_data(s, job_id, attempt, (int)kind, bytes, size, err);
}

int aspen_store_list_attempt_data(aspen_store *s, int64_t job_id, aspen_store_attempt_data **out,
                                  size_t *n, aspen_store_error *err)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!s)
        return no_store(err, "list_attempt_data");
    if (!out || !n)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_list_attempt_data: out is NULL");
    return s->ops->list_attempt_data(s, job_id, out, n, err);
}
