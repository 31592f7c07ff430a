/* sqlite_jobs.c — the SQLite backend's write side: binaries by content hash, submit (batches; one
 * job is a batch of one, api.c), claim in batches, group-commit completion with attempts and logs,
 * release, cancel, rerun, retry, delete. The spec checks that need no database are made before
 * this runs (store_check_spec, common.c).
 *
 * Every per-job state change goes through job_write, which checks the transition table (state.c)
 * and writes WHERE state = the state it read, inside a BEGIN IMMEDIATE transaction. The bulk claim
 * and promotion statements encode the table's edges in their WHERE clauses. Every path also tells
 * counts_note how many jobs moved between which states, for the job_counts table. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_ATTEMPTS 3
#define DEFAULT_TIMEOUT_MS 30000

static int stmt_failed(struct sqlite_store *s, aspen_store_error *err)
{
    (void)s;
    return err && err->code ? err->code : ASPEN_STORE_EIO;
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* ---- the transition writer ---------------------------------------------------------------------- */

int job_read(struct sqlite_store *s, int64_t id, struct store_job_row *row, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_READ, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld in %s: check the id (aspen jobs%s)",
                         (long long)id, s->base.name, store_cmd(&s->base));
    }
    if (rc != SQLITE_ROW) {
        int code = store_sqlite_err(s, err, rc, "reading a job");
        sqlite3_reset(st);
        return code;
    }
    memset(row, 0, sizeof *row);
    row->id = id;
    row->state = (aspen_store_state)state_from_text(sqlite3_column_text(st, 0));
    row->run_at = sqlite3_column_int64(st, 1);
    row->attempts = sqlite3_column_int(st, 2);
    row->max_attempts = sqlite3_column_int(st, 3);
    row->started_at = sqlite3_column_int64(st, 4);
    row->finished_at = sqlite3_column_int64(st, 5);
    row->owner = sqlite3_column_int64(st, 6);
    row->cancel_requested = sqlite3_column_int(st, 7) != 0;
    row->log_count = sqlite3_column_int(st, 8);
    row->log_dropped = sqlite3_column_int64(st, 9);
    sqlite3_reset(st);
    return 0;
}

int job_write_check(const struct store_job_row *before, const struct store_job_row *after,
                    aspen_store_error *err)
{
    if (after->via_running) {
        int code = aspen_store_check_transition(before->id, before->state, ASPEN_STORE_RUNNING, err);
        if (!code)
            code = aspen_store_check_transition(before->id, ASPEN_STORE_RUNNING, after->state, err);
        return code;
    }
    if (before->state != after->state || !after->field_update)
        return aspen_store_check_transition(before->id, before->state, after->state, err);
    return 0;
}

int job_write(struct sqlite_store *s, const struct store_job_row *before, const struct store_job_row *after,
              aspen_store_error *err)
{
    int code = job_write_check(before, after, err);
    return code ? code : job_write_row(s, before, after, err);
}

int job_write_row(struct sqlite_store *s, const struct store_job_row *before,
                  const struct store_job_row *after, aspen_store_error *err)
{
    /* A write that changes neither error nor result names only the small columns. */
    bool small = !after->set_error && !after->set_result;
    sqlite3_stmt *st = store_stmt(s, small ? ST_JOB_WRITE_SMALL : ST_JOB_WRITE, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, before->id);
    sqlite3_bind_text(st, 2, aspen_store_state_name(after->state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, after->run_at);
    sqlite3_bind_int(st, 4, after->attempts);
    sqlite3_bind_int(st, 5, after->max_attempts);
    bind_opt_int(st, 6, after->started_at);
    bind_opt_int(st, 7, after->finished_at);
    bind_opt_int(st, 8, after->owner);
    sqlite3_bind_int(st, 9, after->cancel_requested);
    sqlite3_bind_int(st, 10, after->log_count);
    sqlite3_bind_int64(st, 11, after->log_dropped);
    if (small) {
        sqlite3_bind_text(st, 12, aspen_store_state_name(before->state), -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int(st, 12, after->set_error);
        if (after->error)
            sqlite3_bind_text(st, 13, after->error, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 14, after->set_result);
        if (after->result)
            sqlite3_bind_blob64(st, 15, after->result, after->result_size, SQLITE_STATIC);
        sqlite3_bind_text(st, 16, aspen_store_state_name(before->state), -1, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    int code = 0;
    if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "writing a job's state");
    else if (sqlite3_changes(s->db) != 1)
        code = store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld changed state while being updated (expected %s): try again",
                         (long long)before->id, aspen_store_state_name(before->state));
    else if (before->state != after->state)
        counts_note(s, before->state, after->state, 1);
    sqlite3_reset(st);
    return code;
}

int claim_owner(struct sqlite_store *s, int64_t job, int64_t *engine, aspen_store_error *err)
{
    *engine = 0;
    sqlite3_stmt *st = store_stmt(s, ST_CLAIM_OWNER, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, job);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        *engine = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading a job's reservation");
    sqlite3_reset(st);
    return code;
}

int claim_delete(struct sqlite_store *s, int64_t job, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_CLAIM_DELETE, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, job);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "removing a job's reservation");
}

/* ---- binaries ------------------------------------------------------------------------------------ */

static int binary_insert(struct sqlite_store *s, const char *sha, const void *bytes, size_t size,
                         const char *name, int64_t now_ms, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_BINARY_INSERT, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_text(st, 1, sha, 64, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)size);
    sqlite3_bind_blob64(st, 4, size ? bytes : "", size, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "storing a binary");
    bool existed = code == 0 && sqlite3_changes(s->db) == 0;
    sqlite3_reset(st);
    if (!existed)
        return code;
    /* Already stored under this hash: if that copy was damaged (the engine refuses to run it),
     * these bytes, which do hash to it, replace it. */
    st = store_stmt(s, ST_BINARY_REPAIR, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_text(st, 1, sha, 64, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)size);
    sqlite3_bind_blob64(st, 3, size ? bytes : "", size, SQLITE_STATIC);
    rc = sqlite3_step(st);
    code = rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "repairing a stored binary");
    sqlite3_reset(st);
    return code;
}

static int binary_exists(struct sqlite_store *s, const char *sha, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_BINARY_EXISTS, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_DONE)
        code =
            store_err(err, ASPEN_STORE_ENOTFOUND,
                      "binary %.16s… is not stored in %s: store it first (aspen_store_put_binary) "
                      "or submit the job with the binary's bytes",
                      sha, s->base.name);
    else if (rc != SQLITE_ROW)
        code = store_sqlite_err(s, err, rc, "looking up a binary");
    sqlite3_reset(st);
    return code;
}

int sq_put_binary(aspen_store *base, const void *bytes, size_t size, const char *name,
                  int64_t now_ms, char sha256_out[65], aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    char sha[65];
    aspen_store_sha256_hex(bytes ? bytes : "", size, sha);
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = binary_insert(s, sha, bytes, size, name, now_ms, err);
    if (code)
        goto rollback;
    code = tx_commit(s, "storing a binary", err);
    if (code)
        return code;
    if (sha256_out)
        memcpy(sha256_out, sha, 65);
    return 0;
rollback:
    tx_rollback(s);
    return code;
}

int sq_get_binary(aspen_store *base, const char *sha256, aspen_store_binary *out,
                  aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(s, ST_BINARY_GET, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_text(st, 1, sha256, 64, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        memcpy(out->sha256, sha256, 65);
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        const void *b = sqlite3_column_blob(st, 2);
        out->name = name ? store_strdup(name) : NULL;
        out->bytes = malloc(n ? n : 1);
        out->size = n;
        out->created_at_ms = sqlite3_column_int64(st, 3);
        if (!out->bytes || (name && !out->name)) {
            aspen_store_binary_clear(out);
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a binary");
        } else if (n) {
            memcpy(out->bytes, b, n);
        }
    } else if (rc == SQLITE_DONE) {
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "binary %.16s… is not stored in %s", sha256,
                         s->base.name);
    } else {
        code = store_sqlite_err(s, err, rc, "reading a binary");
    }
    sqlite3_reset(st);
    return code;
}

/* ---- submit -------------------------------------------------------------------------------------- */

/* Remembers the last binary hashed/verified in a batch, so N jobs of one binary hash it once. */
struct binary_memo {
    const void *bytes;
    size_t size;
    char sha[65];
    bool valid;
    const char *queue; /* the last named queue whose row this batch made sure of */
};

static int insert_job(struct sqlite_store *s, const aspen_store_job_spec *j, size_t index, size_t n,
                      int64_t now_ms, struct binary_memo *memo, int64_t *id, aspen_store_error *err)
{
    char where[48] = "";
    if (n > 1)
        snprintf(where, sizeof where, "job %zu of the batch: ", index + 1);
    /* The spec itself was checked by store_check_spec (api.c) before the transaction began. */
    const char *sha = NULL;
    int code = 0;
    if (j->binary) {
        if (!memo->valid || memo->bytes != j->binary || memo->size != j->binary_size) {
            aspen_store_sha256_hex(j->binary, j->binary_size, memo->sha);
            code = binary_insert(s, memo->sha, j->binary, j->binary_size, j->binary_name, now_ms,
                                 err);
            if (code)
                return code;
            memo->bytes = j->binary;
            memo->size = j->binary_size;
            memo->valid = true;
        }
        sha = memo->sha;
        if (j->binary_sha256 && strcmp(j->binary_sha256, sha) != 0)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "%sthe binary's bytes hash to %.16s…, not the given %.16s…", where,
                             sha, j->binary_sha256);
    } else if (j->binary_sha256) {
        if (!memo->valid || memo->bytes || strcmp(memo->sha, j->binary_sha256) != 0) {
            code = binary_exists(s, j->binary_sha256, err);
            if (code)
                return code;
            memcpy(memo->sha, j->binary_sha256, 65);
            memo->bytes = NULL;
            memo->size = 0;
            memo->valid = true;
        }
        sha = j->binary_sha256;
    }
    int64_t run_at = j->run_at_ms > 0 ? j->run_at_ms : now_ms;
    aspen_store_state state = run_at > now_ms ? ASPEN_STORE_SCHEDULED : ASPEN_STORE_QUEUED;
    code = aspen_store_check_transition(0, ASPEN_STORE_STATE_NEW, state, err);
    if (code)
        return code;

    sqlite3_stmt *st = store_stmt(s, ST_JOB_INSERT, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_text(st, 1, j->type, -1, SQLITE_STATIC);
    if (sha)
        sqlite3_bind_text(st, 2, sha, 64, SQLITE_STATIC);
    if (j->binary_name)
        sqlite3_bind_text(st, 3, j->binary_name, -1, SQLITE_STATIC);
    const char *payload = j->payload ? j->payload : "{}";
    bool ext = strlen(payload) > PAYLOAD_INLINE_MAX; /* kept out of the row: see migrate_v4 */
    sqlite3_bind_text(st, 4, ext ? "{}" : payload, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 15, ext);
    sqlite3_bind_text(st, 5, aspen_store_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, j->priority);
    sqlite3_bind_int64(st, 7, run_at);
    sqlite3_bind_int(st, 8, j->max_attempts ? j->max_attempts : DEFAULT_MAX_ATTEMPTS);
    sqlite3_bind_int64(st, 9, j->timeout_ms ? j->timeout_ms : DEFAULT_TIMEOUT_MS);
    sqlite3_bind_int64(st, 10, j->memory_bytes);
    sqlite3_bind_int(st, 11, j->isolation);
    sqlite3_bind_text(st, 12, j->tags ? j->tags : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, now_ms);
    if (j->source_dir)
        sqlite3_bind_text(st, 14, j->source_dir, -1, SQLITE_STATIC);
    const char *queue = store_queue_of(j);
    sqlite3_bind_text(st, 16, queue, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "%ssubmitting a job", where);
        code = store_sqlite_err(s, err, rc, what);
    } else {
        counts_note(s, ASPEN_STORE_STATE_NEW, state, 1);
        if (id)
            *id = sqlite3_last_insert_rowid(s->db);
    }
    sqlite3_reset(st);
    if (!code && ext) {
        int64_t rowid = sqlite3_last_insert_rowid(s->db);
        st = store_stmt(s, ST_PAYLOAD_INSERT, err);
        if (!st)
            return stmt_failed(s, err);
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            char what[96];
            snprintf(what, sizeof what, "%sstoring a job's payload", where);
            code = store_sqlite_err(s, err, rc, what);
        }
        sqlite3_reset(st);
    }
    /* A named queue exists from its first job on (once per run of a batch's jobs in it). */
    if (!code && strcmp(queue, ASPEN_STORE_QUEUE_DEFAULT) != 0 &&
        (!memo->queue || strcmp(memo->queue, queue) != 0)) {
        code = sq_queue_note(s, queue, now_ms, err);
        memo->queue = queue;
    }
    return code;
}

/* ",queued,running," for instr(): the states a rule counts. */
static void states_list(unsigned states, char *out, size_t size)
{
    size_t used = snprintf(out, size, ",");
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (states & (1u << st))
            used += snprintf(out + used, used < size ? size - used : 0, "%s,",
                             aspen_store_state_name((aspen_store_state)st));
}

/* The newest job of a key that a rule counts at now (*found false when none). Inside the submit's
 * BEGIN IMMEDIATE: no other connection can add a job of this key until it commits. */
static int unique_find(struct sqlite_store *s, const char *key, const aspen_store_unique *u,
                       int64_t now_ms, int64_t except, bool *found, aspen_store_submitted *dup,
                       aspen_store_error *err)
{
    *found = false;
    sqlite3_stmt *st = store_stmt(s, ST_UNIQUE_FIND, err);
    if (!st)
        return stmt_failed(s, err);
    char states[80];
    states_list(store_unique_states(u), states, sizeof states);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, store_unique_since(u, now_ms));
    sqlite3_bind_text(st, 3, states, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, except);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        int state = state_from_text(sqlite3_column_text(st, 1));
        *found = state >= 0;
        dup->id = sqlite3_column_int64(st, 0);
        dup->duplicate = true;
        dup->state = state >= 0 ? (aspen_store_state)state : ASPEN_STORE_QUEUED;
        dup->created_at_ms = sqlite3_column_int64(st, 2);
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "looking up a unique key");
    }
    sqlite3_reset(st);
    return code;
}

/* The key with the rule it came with (period, states resolved), so that retry and rerun apply
 * the same rule later. */
static int unique_insert(struct sqlite_store *s, int64_t id, const char *key,
                         const aspen_store_unique *u, int64_t now_ms, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_UNIQUE_INSERT, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, u && u->period_ms > 0 ? u->period_ms : 0);
    sqlite3_bind_int64(st, 5, (int64_t)store_unique_states(u));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "storing a unique key");
}

int sq_submit_batch(aspen_store *base, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                    const char *const *keys, int64_t *ids_out, aspen_store_submitted *out,
                    aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    struct binary_memo memo = {0};
    for (size_t i = 0; i < n; i++) {
        const char *key = keys ? keys[i] : NULL;
        aspen_store_submitted done = {0};
        bool dup = false;
        if (key && (code = unique_find(s, key, specs[i].unique, now_ms, 0, &dup, &done, err)) != 0)
            goto rollback;
        if (!dup) {
            code = insert_job(s, &specs[i], i, n, now_ms, &memo, &done.id, err);
            if (!code && key)
                code = unique_insert(s, done.id, key, specs[i].unique, now_ms, err);
            if (code)
                goto rollback;
            int64_t run_at = specs[i].run_at_ms > 0 ? specs[i].run_at_ms : now_ms;
            done.state = run_at > now_ms ? ASPEN_STORE_SCHEDULED : ASPEN_STORE_QUEUED;
            done.created_at_ms = now_ms;
        }
        if (ids_out)
            ids_out[i] = done.id;
        if (out)
            out[i] = done;
    }
    return tx_commit(s, "committing submitted jobs", err);
rollback:
    tx_rollback(s);
    return code;
}

/* The rule stored with job id inside the caller's transaction or alone (r->key NULL: none). */
static int unique_rule_get(struct sqlite_store *s, int64_t id, aspen_store_job_rule *r,
                           aspen_store_error *err)
{
    *r = (aspen_store_job_rule){0};
    sqlite3_stmt *st = store_stmt(s, ST_UNIQUE_GET, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        r->key = store_strdup((const char *)sqlite3_column_text(st, 0));
        r->period_ms = sqlite3_column_int64(st, 1);
        int64_t states = sqlite3_column_int64(st, 2);
        /* only bits of states that exist: a row written by hand reads as the default */
        r->states = states > 0 && states < (1 << ASPEN_STORE_STATE_COUNT) ? (unsigned)states : 0;
        if (!r->key)
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a unique key");
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "reading a job's unique key");
    }
    sqlite3_reset(st);
    return code;
}

int sq_job_unique_rule(aspen_store *base, int64_t id, aspen_store_job_rule *out,
                       aspen_store_error *err)
{
    return unique_rule_get(sq(base), id, out, err);
}

/* ---- claim --------------------------------------------------------------------------------------- */

/* ELEASE unless engine_id holds a live lease at now_ms. */
static int check_lease(struct sqlite_store *s, int64_t engine_id, int64_t now_ms,
                       aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_ENGINE_LEASE, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, engine_id);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        int64_t until = sqlite3_column_int64(st, 0);
        if (until < now_ms)
            code = store_err(err, ASPEN_STORE_ELEASE,
                             "engine %lld's lease expired %lld ms ago: renew it "
                             "(aspen_store_engine_renew) before claiming or completing jobs",
                             (long long)engine_id, (long long)(now_ms - until));
    } else if (rc == SQLITE_DONE) {
        code = store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld is not registered (or its lease expired and its jobs were "
                         "recovered by another process): register again and drop the jobs it held",
                         (long long)engine_id);
    } else {
        code = store_sqlite_err(s, err, rc, "checking an engine's lease");
    }
    sqlite3_reset(st);
    return code;
}

static int queue_paused(struct sqlite_store *s, bool *paused, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_PAUSED, err);
    if (!st)
        return stmt_failed(s, err);
    int rc = sqlite3_step(st), code = 0;
    *paused = false;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        *paused = v && strcmp(v, "0") != 0;
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "reading the pause flag");
    }
    sqlite3_reset(st);
    return code;
}

int sq_claim(aspen_store *base, int64_t engine_id, size_t max, int64_t now_ms,
             aspen_store_job **jobs, size_t *n, bool *paused, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *jobs = NULL;
    *n = 0;
    if (paused)
        *paused = false;
    if (max == 0)
        return 0;
    if (max > 100000)
        max = 100000; /* one transaction's worth; the caller asks again */
    size_t cap = max < 256 ? max : 256; /* grown as rows come: max may be far above the queue */
    aspen_store_job *out = calloc(cap, sizeof *out);
    if (!out)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming %zu jobs", max);
    size_t got = 0;
    bool is_paused = false;
    int code = tx_begin(s, err);
    if (code)
        goto free_out;
    code = check_lease(s, engine_id, now_ms, err);
    if (code)
        goto rollback;
    code = queue_paused(s, &is_paused, err);
    if (code)
        goto rollback;
    if (is_paused)
        goto rollback; /* nothing to write */

    sqlite3_stmt *st = store_stmt(s, ST_PROMOTE_DUE, err);
    if (!st) {
        code = stmt_failed(s, err);
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "promoting due scheduled jobs");
        goto rollback;
    }
    counts_note(s, ASPEN_STORE_SCHEDULED, ASPEN_STORE_QUEUED, sqlite3_changes(s->db));

    /* Queues with settings, or a handle serving only some queues: queue by queue
     * (sqlite_queues.c). Otherwise the one queue index's head, as before queues existed. */
    bool restricted = false;
    code = sq_claim_restricted(s, &restricted, err);
    if (code)
        goto rollback;
    if (restricted) {
        free(out);
        code = sq_claim_queues(s, max, now_ms, &out, &got, err);
        if (code)
            goto rollback_nothing;
        goto reserve;
    }

    /* Read the head first, then reserve it: the reads come back in claim order. */
    st = store_stmt(s, ST_CLAIM, err);
    if (!st) {
        code = stmt_failed(s, err);
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, (int64_t)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && got < max) {
        if (got == cap) {
            size_t grown_cap = cap * 2 < max ? cap * 2 : max;
            aspen_store_job *grown = realloc(out, grown_cap * sizeof *out);
            if (!grown) {
                code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
                sqlite3_reset(st);
                goto free_claimed;
            }
            out = grown;
            cap = grown_cap;
        }
        code = job_from_row(st, &out[got], err);
        if (code) {
            sqlite3_reset(st);
            goto free_claimed;
        }
        got++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        code = store_sqlite_err(s, err, rc, "claiming jobs");
        sqlite3_reset(st);
        goto free_claimed;
    }
    sqlite3_reset(st);
reserve:
    code = group_reserve(s, out, got, engine_id, now_ms, err);
    if (code)
        goto free_claimed;
    code = tx_commit(s, "committing claimed jobs", err);
    if (code)
        goto free_claimed_committed;
    if (got == 0) {
        free(out);
        out = NULL;
    }
    *jobs = out;
    *n = got;
    return 0;

free_claimed:
    tx_rollback(s);
free_claimed_committed:
    aspen_store_jobs_free(out, got);
    return code;
rollback:
    tx_rollback(s);
free_out:
    free(out);
    if (paused)
        *paused = is_paused;
    return code;
rollback_nothing:
    tx_rollback(s);
    return code;
}

int sq_unclaim(aspen_store *base, int64_t engine_id, const int64_t *ids, size_t n,
               aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    for (size_t i = 0; i < n; i++) {
        int64_t owner = 0;
        code = claim_owner(s, ids[i], &owner, err);
        if (!code && owner == engine_id)
            code = claim_delete(s, ids[i], err);
        if (code)
            goto rollback;
    }
    return tx_commit(s, "giving back reserved jobs", err);
rollback:
    tx_rollback(s);
    return code;
}

/* ---- logs ---------------------------------------------------------------------------------------- */

int logs_tx_bump(struct sqlite_store *s, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_LOG_TX_BUMP, err);
    if (!st)
        return stmt_failed(s, err);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "numbering log lines for the feed");
}

int logs_insert(struct sqlite_store *s, struct store_job_row *row, int attempt,
                const aspen_store_log_line *lines, size_t n, aspen_store_error *err)
{
    if (n) {
        int code = logs_tx_bump(s, err);
        if (code)
            return code;
    }
    for (size_t i = 0; i < n; i++) {
        if (lines[i].dropped > 0) { /* counted by the writer, never sent */
            row->log_dropped = lines[i].dropped > INT64_MAX - row->log_dropped
                                   ? INT64_MAX
                                   : row->log_dropped + lines[i].dropped;
            if (!lines[i].line)
                continue;
        }
        if (row->log_count > s->base.log_cap) { /* cap reached and marker written */
            row->log_dropped++;
            continue;
        }
        char marker[160];
        const char *text = lines[i].line ? lines[i].line : "";
        if (row->log_count == s->base.log_cap) {
            snprintf(marker, sizeof marker,
                     "[aspen] log truncated: this job wrote more than %d lines; later lines are "
                     "not kept",
                     s->base.log_cap);
            text = marker;
            row->log_dropped++;
        }
        sqlite3_stmt *st = store_stmt(s, ST_LOG_INSERT, err);
        if (!st)
            return stmt_failed(s, err);
        sqlite3_bind_int64(st, 1, row->id);
        sqlite3_bind_int64(st, 2, row->log_count + 1);
        sqlite3_bind_int(st, 3, text == marker ? 0 : attempt); /* attempt 0 marks the marker */
        sqlite3_bind_int64(st, 4, lines[i].time_ms);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return store_sqlite_err(s, err, rc, "writing log lines");
        row->log_count++;
    }
    return 0;
}

int sq_append_logs(aspen_store *base, const aspen_store_log_line *lines, size_t n,
                   aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    /* Consecutive lines of one job are inserted together, then its counters written once. */
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        while (k < n && lines[k].job_id == lines[i].job_id && lines[k].attempt == lines[i].attempt)
            k++;
        struct store_job_row row;
        code = job_read(s, lines[i].job_id, &row, err);
        if (code)
            goto rollback;
        code = logs_insert(s, &row, lines[i].attempt ? lines[i].attempt : row.attempts, &lines[i],
                           k - i, err);
        if (code)
            goto rollback;
        sqlite3_stmt *st = store_stmt(s, ST_JOB_LOGCOUNT_WRITE, err);
        if (!st) {
            code = stmt_failed(s, err);
            goto rollback;
        }
        sqlite3_bind_int64(st, 1, row.id);
        sqlite3_bind_int(st, 2, row.log_count);
        sqlite3_bind_int64(st, 3, row.log_dropped);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            code = store_sqlite_err(s, err, rc, "counting log lines");
            goto rollback;
        }
        i = k;
    }
    return tx_commit(s, "committing log lines", err);
rollback:
    tx_rollback(s);
    return code;
}

/* ---- complete (group commit) --------------------------------------------------------------------- */

static const char *const outcome_names[] = {"succeeded", "failed", "timeout", "cancelled"};

int store_insert_attempt(struct sqlite_store *s, int64_t job, int number, int64_t engine,
                         int64_t started, int64_t finished, const aspen_store_attempt_stats *stats,
                         const char *outcome, const char *error, bool recovered,
                         aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_ATTEMPT_INSERT, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int(st, 2, number);
    bind_opt_int(st, 3, engine);
    bind_opt_int(st, 4, started);
    bind_opt_int(st, 5, finished);
    static const aspen_store_attempt_stats zero;
    if (!stats)
        stats = &zero;
    sqlite3_bind_int64(st, 6, stats->wall_us);
    sqlite3_bind_int64(st, 7, (int64_t)stats->exits);
    sqlite3_bind_int64(st, 8, (int64_t)stats->host_calls);
    sqlite3_bind_int64(st, 9, (int64_t)stats->pages_dirtied);
    sqlite3_bind_int64(st, 10, (int64_t)stats->bytes_in);
    sqlite3_bind_int64(st, 11, (int64_t)stats->bytes_out);
    sqlite3_bind_text(st, 12, outcome, -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 13, error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, recovered);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "writing an attempt");
}

/* Takes (deletes) engine_id's reservation of a queued job, the only way a job starts; ELEASE when
 * it holds none. */
static int check_reserved(struct sqlite_store *s, int64_t engine_id, const struct store_job_row *before,
                          aspen_store_error *err)
{
    return claim_take(s, engine_id, before->id, err);
}

int claim_take(struct sqlite_store *s, int64_t engine_id, int64_t job, aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_CLAIM_TAKE, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, engine_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_sqlite_err(s, err, rc, "taking a job's reservation");
    if (sqlite3_changes(s->db) == 1)
        return 0;
    const struct store_job_row one = {.id = job}, *before = &one;
    int64_t owner = 0;
    int code = claim_owner(s, before->id, &owner, err);
    if (code)
        return code;
    if (owner)
        return store_err(err, ASPEN_STORE_ELEASE,
                         "job %lld is reserved by engine %lld, not engine %lld: this engine's "
                         "lease lapsed and its reservations were given back",
                         (long long)before->id, (long long)owner, (long long)engine_id);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is queued, not running, and not reserved by engine %lld (never "
                     "claimed, or its reservation was given back): it was not started",
                     (long long)before->id, (long long)engine_id);
}

/* Reads a job inside the group transaction, writing first whatever of the group's waits for it. */
static int group_read(struct sq_group *g, int64_t id, struct store_job_row *row,
                      aspen_store_error *err)
{
    if (group_holds(g, id)) {
        int code = group_flush(g, err);
        if (code)
            return code;
    }
    return job_read(g->s, id, row, err);
}

/* One start mark inside the group transaction: queued + reserved by engine_id → running. The
 * row's write joins the group (sqlite_group.c); *status and *final_state are the caller's. */
static int start_one(struct sq_group *g, int64_t engine_id, const aspen_store_start *m,
                     int64_t now_ms, int *status, aspen_store_error *err)
{
    struct sqlite_store *s = g->s;
    struct store_job_row before;
    int code = group_read(g, m->job_id, &before, err); /* may flush: take the slot after it */
    if (code)
        return code;
    struct group_item *it = group_next(g);
    it->before = before;
    if (it->before.state != ASPEN_STORE_QUEUED)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s, not queued: it was not started (cancelled or taken "
                         "meanwhile?)",
                         (long long)m->job_id, aspen_store_state_name(it->before.state));
    code = check_reserved(s, engine_id, &it->before, err);
    if (!code)
        code = sq_queue_started(s, m->job_id, m->started_at_ms ? m->started_at_ms : now_ms, err);
    if (code)
        return code;
    store_started_row(&it->before, engine_id, m->started_at_ms ? m->started_at_ms : now_ms,
                      &it->after);
    code = job_write_check(&it->before, &it->after, err);
    if (code)
        return code;
    it->status = status;
    return group_add(g, err);
}

static int retry_held(struct sqlite_store *s, int64_t id, int64_t now_ms, bool *found,
                      aspen_store_retry_skip *skip, aspen_store_error *err);

int sq_unique_held(struct sqlite_store *s, int64_t id, int64_t now_ms, bool *found,
                   aspen_store_retry_skip *skip, aspen_store_error *err)
{
    return retry_held(s, id, now_ms, found, skip, err);
}

/* Whether the engine's own retry of job id may go on: not when another job holds its unique key
 * by its own rule (*held, with *skip), as an operator's retry is refused (retry_one). The group's
 * waiting rows are written first, so the lookup sees the states this commit gave them (a holder
 * that finished in the same commit no longer counts). Only a job with a key row pays more than
 * one primary-key lookup. */
static int auto_retry_held(struct sq_group *g, int64_t id, int64_t now_ms, bool *held,
                           aspen_store_retry_skip *skip, aspen_store_error *err)
{
    *held = false;
    aspen_store_job_rule rule;
    int code = unique_rule_get(g->s, id, &rule, err);
    bool keyed = rule.key != NULL;
    aspen_store_job_rule_clear(&rule);
    if (code || !keyed)
        return code;
    if (g->n && (code = group_flush(g, err)) != 0)
        return code;
    return retry_held(g->s, id, now_ms, held, skip, err);
}

/* One completion inside the group transaction. Returns 0, a per-item refusal (ESTATE, ENOTFOUND,
 * ELEASE: nothing written for it), or another negative code that aborts the whole batch. A job
 * still queued and reserved by this engine started and finished inside one group: its start is
 * written here too (queued → running → final in one write, the attempt charged). */
static int complete_one(struct sq_group *g, int64_t engine_id, const aspen_store_completion *c,
                        int64_t now_ms, int *status, aspen_store_state *final_state,
                        aspen_store_error *err)
{
    struct sqlite_store *s = g->s;
    struct store_job_row before, running, after;
    if ((unsigned)c->outcome > ASPEN_STORE_OUTCOME_CANCELLED)
        return store_err(err, ASPEN_STORE_EINVAL, "job %lld: unknown outcome %d",
                         (long long)c->job_id, (int)c->outcome);
    int code = group_read(g, c->job_id, &before, err);
    if (code)
        return code;
    if (final_state)
        *final_state = before.state; /* what it stays if refused */
    bool start_too = false;
    if (before.state == ASPEN_STORE_QUEUED) {
        code = check_reserved(s, engine_id, &before, err);
        if (!code)
            code = sq_queue_started(s, c->job_id,
                                    c->stats.started_at_ms ? c->stats.started_at_ms : now_ms, err);
        if (code)
            return code;
        store_started_row(&before, engine_id, c->stats.started_at_ms ? c->stats.started_at_ms : now_ms,
                    &running);
        start_too = true;
    } else if (before.state != ASPEN_STORE_RUNNING) {
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s, not running: its result was not recorded (recovered "
                         "after a lost lease, cancelled, or completed twice?)",
                         (long long)c->job_id, aspen_store_state_name(before.state));
    } else if (before.owner != engine_id) {
        return store_err(err, ASPEN_STORE_ELEASE,
                         "job %lld is now held by engine %lld, not engine %lld: this engine's lease "
                         "lapsed and the job was recovered; its result was not recorded",
                         (long long)c->job_id, (long long)before.owner, (long long)engine_id);
    } else {
        running = before;
    }
    char errbuf[sizeof g->it[0].errbuf], dflt[96];
    aspen_store_completion cc = *c;
    cc.error = store_default_error(c, running.attempts, dflt, sizeof dflt);
    store_decide_completion(&running, &cc, now_ms, c->retry_at_ms, c->retry_at_ms <= now_ms,
                            &after);
    after.via_running = start_too;
    if (after.state == ASPEN_STORE_QUEUED || after.state == ASPEN_STORE_SCHEDULED) {
        bool held = false;
        aspen_store_retry_skip skip;
        if ((code = auto_retry_held(g, c->job_id, now_ms, &held, &skip, err)) != 0)
            return code;
        if (held)
            store_unique_not_retried(&running, &after, now_ms, cc.error, &skip, errbuf,
                                     sizeof errbuf);
    }
    if (after.error == dflt)
        snprintf(errbuf, sizeof errbuf, "%s", dflt);
    if (after.error == dflt || after.error == errbuf)
        after.error = errbuf; /* moved into the item below */
    code = aspen_store_check_transition(c->job_id, running.state, after.state, err);
    if (!code)
        code = job_write_check(&before, &after, err);
    if (code)
        return code;

    /* The attempt, the log lines and the row are written with the group's (sqlite_group.c). */
    struct group_item *it = group_next(g);
    if (after.error == errbuf) {
        memcpy(it->errbuf, errbuf, strlen(errbuf) + 1);
        after.error = it->errbuf;
    }
    it->before = before;
    it->after = after;
    it->has_attempt = true;
    it->number = running.attempts;
    it->engine = engine_id;
    it->started = c->stats.started_at_ms ? c->stats.started_at_ms : running.started_at;
    it->finished = c->stats.finished_at_ms ? c->stats.finished_at_ms : now_ms;
    it->stats = &c->stats;
    it->outcome = outcome_names[c->outcome];
    it->logs = c->logs;
    it->n_logs = c->n_logs;
    it->log_attempt = running.attempts;
    it->status = status;
    it->final_state = final_state;
    it->replay = c->replay ? c : NULL; /* stored by the flush, once the completion is written */
    if (final_state)
        *final_state = after.state; /* until the flush says otherwise */
    return group_add(g, err);
}

static bool item_refusal(int code)
{
    return code == ASPEN_STORE_ESTATE || code == ASPEN_STORE_ENOTFOUND ||
           code == ASPEN_STORE_ELEASE || code == ASPEN_STORE_EINVAL;
}

int sq_commit(aspen_store *base, int64_t engine_id, const aspen_store_start *starts,
              size_t n_starts, int *start_status, const aspen_store_completion *c, size_t n,
              int64_t now_ms, int *status, aspen_store_state *final_states, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    size_t refused = 0;
    aspen_store_error item_err = {0};
    /* The rows are written in batches (sqlite_group.c): a refusal found when a batch is written
     * lands in that item's status, and counts in `refused` / err like the ones found here. */
    struct sq_group *g = malloc(sizeof *g);
    if (!g) {
        tx_rollback(s);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing a group commit");
    }
    group_init(g, s, &refused, err);
    /* An item's status is 0 once it joins the group; the flush that writes it may still refuse
     * it (into the same status). Refusals before that are returned here. */
    for (size_t i = 0; i < n_starts; i++) {
        if (start_status)
            start_status[i] = 0;
        code = start_one(g, engine_id, &starts[i], now_ms, start_status ? &start_status[i] : NULL,
                         &item_err);
        if (item_refusal(code)) {
            if (start_status)
                start_status[i] = code;
            if (err && ++refused == 1)
                *err = item_err; /* the first refusal, for the log; the call still succeeds */
            continue;
        }
        if (code) {
            if (err)
                *err = item_err;
            goto rollback;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (status)
            status[i] = 0;
        if (final_states)
            final_states[i] = ASPEN_STORE_RUNNING;
        code = complete_one(g, engine_id, &c[i], now_ms, status ? &status[i] : NULL,
                            final_states ? &final_states[i] : NULL, &item_err);
        if (item_refusal(code)) {
            if (status)
                status[i] = code;
            if (err && ++refused == 1)
                *err = item_err;
            continue;
        }
        if (code) {
            if (err)
                *err = item_err;
            goto rollback;
        }
    }
    code = group_flush(g, &item_err);
    if (code) {
        if (err)
            *err = item_err;
        goto rollback;
    }
    free(g);
    code = tx_commit(s, n ? "committing finished jobs" : "marking jobs started", err);
    if (code)
        return code;
    if (refused == 0 && err)
        err->code = 0, err->msg[0] = '\0';
    else if (err)
        err->code = 0; /* the message stays for the caller's log; the batch committed */
    return 0;
rollback:
    free(g);
    tx_rollback(s);
    return code;
}

/* ---- release, cancel, rerun, retry, delete ------------------------------------------------------- */

static int release_one(struct sqlite_store *s, int64_t engine_id, int64_t job_id,
                       aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = job_read(s, job_id, &before, err);
    if (code)
        return code;
    if (before.state == ASPEN_STORE_QUEUED) {
        /* Reserved but never started: give the reservation back; nothing was charged. */
        int64_t owner = 0;
        code = claim_owner(s, job_id, &owner, err);
        if (code)
            return code;
        if (owner != engine_id)
            return store_err(err, ASPEN_STORE_ESTATE,
                             "job %lld is queued and not reserved by engine %lld: nothing to "
                             "release",
                             (long long)job_id, (long long)engine_id);
        return claim_delete(s, job_id, err);
    }
    code = store_decide_release(&before, engine_id, &after, err);
    return code ? code : job_write(s, &before, &after, err);
}

int sq_release(aspen_store *base, int64_t engine_id, int64_t job_id, int64_t now_ms,
               aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    (void)now_ms;
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = release_one(s, engine_id, job_id, err);
    if (code)
        goto rollback;
    return tx_commit(s, "releasing a job", err);
rollback:
    tx_rollback(s);
    return code;
}

/* Releases every running job of an engine (used by unregister). */
int store_release_all(struct sqlite_store *s, int64_t engine_id, int64_t *released,
                      aspen_store_error *err)
{
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = store_stmt(s, ST_RUNNING_OF_ENGINE, err);
    if (!st)
        return stmt_failed(s, err);
    sqlite3_bind_int64(st, 1, engine_id);
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *grown = store_grow(ids, &cap, n, sizeof *ids);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory releasing jobs");
            goto free_ids;
        }
        ids = grown;
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "listing an engine's jobs");
        goto free_ids;
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < n; i++) {
        code = release_one(s, engine_id, ids[i], err);
        if (code)
            goto free_ids;
    }
    if (released)
        *released = (int64_t)n;
free_ids:
    sqlite3_reset(st);
    free(ids);
    return code;
}

static int cancel_one(struct sqlite_store *s, int64_t id, int64_t now_ms,
                      aspen_store_cancel_result *result, aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = job_read(s, id, &before, err);
    if (code)
        return code;
    aspen_store_cancel_result r;
    bool final = store_decide_cancel(&before, now_ms, &after, &r);
    code = job_write(s, &before, &after, err);
    /* A job reserved by an engine but not started is still queued: the cancel wins, and the
     * engine's start or completion of it is refused. */
    if (!code && final && before.state == ASPEN_STORE_QUEUED)
        code = claim_delete(s, id, err);
    if (!code && result)
        *result = r;
    return code;
}

int sq_cancel(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
              aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = cancel_one(s, id, now_ms, result, err);
    if (code)
        goto rollback;
    return tx_commit(s, "cancelling a job", err);
rollback:
    tx_rollback(s);
    return code;
}

/* A rerun keeps the original's uniqueness rule: under the write lock, as a submit, a job of the
 * key that the rule counts makes this a duplicate (nothing written) instead of a second live job. */
int sq_rerun(aspen_store *base, int64_t id, int64_t now_ms, unsigned flags,
             aspen_store_submitted *out, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = aspen_store_check_transition(0, ASPEN_STORE_STATE_NEW, ASPEN_STORE_QUEUED, err);
    if (code)
        return code;
    code = tx_begin(s, err);
    if (code)
        return code;
    aspen_store_job_rule rule = {0};
    aspen_store_unique u = {0};
    if (!(flags & ASPEN_STORE_RERUN_NO_UNIQUE) && (code = unique_rule_get(s, id, &rule, err)) != 0)
        goto rollback;
    if (rule.key) {
        u = store_unique_of_row(rule.key, rule.period_ms, rule.states);
        bool dup = false;
        if ((code = unique_find(s, rule.key, &u, now_ms, 0, &dup, out, err)) != 0)
            goto rollback;
        if (dup) {
            aspen_store_job_rule_clear(&rule);
            return tx_commit(s, "rerunning a job", err); /* nothing was written */
        }
    }
    sqlite3_stmt *st = store_stmt(s, ST_RERUN, err);
    if (!st) {
        code = stmt_failed(s, err);
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "rerunning a job");
        goto rollback;
    }
    if (sqlite3_changes(s->db) != 1) {
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld to rerun in %s", (long long)id,
                         s->base.name);
        goto rollback;
    }
    counts_note(s, ASPEN_STORE_STATE_NEW, ASPEN_STORE_QUEUED, 1);
    int64_t rerun_id = sqlite3_last_insert_rowid(s->db);
    *out = (aspen_store_submitted){
        .id = rerun_id, .state = ASPEN_STORE_QUEUED, .created_at_ms = now_ms};
    st = store_stmt(s, ST_PAYLOAD_COPY, err); /* copies nothing when the payload is inline */
    if (!st) {
        code = stmt_failed(s, err);
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, rerun_id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "copying a job's payload for its rerun");
        goto rollback;
    }
    if (rule.key && (code = unique_insert(s, rerun_id, rule.key, &u, now_ms, err)) != 0)
        goto rollback;
    code = sq_queue_renote(s, rerun_id, now_ms, err);
    if (code)
        goto rollback;
    aspen_store_job_rule_clear(&rule);
    return tx_commit(s, "committing a rerun", err);
rollback:
    aspen_store_job_rule_clear(&rule);
    *out = (aspen_store_submitted){0};
    tx_rollback(s);
    return code;
}

/* Whether another job holds job id's unique key in a state id's own rule counts (*found, with
 * *skip filled). Inside the write transaction, so no submit, retry or rerun of the key can slip
 * in between this look and the retry's write. */
static int retry_held(struct sqlite_store *s, int64_t id, int64_t now_ms, bool *found,
                      aspen_store_retry_skip *skip, aspen_store_error *err)
{
    *found = false;
    aspen_store_job_rule rule;
    int code = unique_rule_get(s, id, &rule, err);
    if (code || !rule.key)
        return code;
    aspen_store_unique u = store_unique_of_row(rule.key, rule.period_ms, rule.states);
    aspen_store_submitted holder = {0};
    code = unique_find(s, rule.key, &u, now_ms, id, found, &holder, err);
    if (!code && *found) {
        *skip = (aspen_store_retry_skip){.id = id, .holder = holder};
        snprintf(skip->key, sizeof skip->key, "%s", rule.key);
    }
    aspen_store_job_rule_clear(&rule);
    return code;
}

static int retry_one(struct sqlite_store *s, int64_t id, int64_t now_ms,
                     aspen_store_retry_skip *held, bool *was_held, aspen_store_error *err)
{
    if (was_held)
        *was_held = false;
    struct store_job_row before, after;
    int code = job_read(s, id, &before, err);
    if (code)
        return code;
    code = store_decide_retry(&before, now_ms, &after, store_cmd(&s->base), err);
    if (code)
        return code;
    bool found = false;
    aspen_store_retry_skip skip;
    if ((code = retry_held(s, id, now_ms, &found, &skip, err)) != 0)
        return code;
    if (found) {
        char msg[sizeof err->msg];
        aspen_store_retry_skip_message(&skip, store_cmd(&s->base), msg, sizeof msg);
        if (held)
            *held = skip;
        if (was_held)
            *was_held = true;
        return store_err(err, ASPEN_STORE_ESTATE, "%s", msg);
    }
    if (after.max_attempts != before.max_attempts) {
        sqlite3_stmt *st = store_stmt(s, ST_KEEP_MAX_ATTEMPTS, err);
        if (!st)
            return stmt_failed(s, err);
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return store_sqlite_err(s, err, rc, "keeping a job's submitted max attempts");
    }
    code = job_write(s, &before, &after, err);
    return code ? code : sq_queue_renote(s, id, now_ms, err);
}

int sq_retry(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = retry_one(s, id, now_ms, NULL, NULL, err);
    if (code)
        goto rollback;
    return tx_commit(s, "retrying a job", err);
rollback:
    tx_rollback(s);
    return code;
}

int sq_delete(aspen_store *base, int64_t id, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row row;
    code = job_read(s, id, &row, err);
    if (code)
        goto rollback;
    if (!aspen_store_state_is_final(row.state)) {
        code = store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s: only finished jobs can be deleted; cancel it first",
                         (long long)id, aspen_store_state_name(row.state));
        goto rollback;
    }
    static const enum stmt_id steps[] = {ST_DELETE_LOGS, ST_DELETE_ATTEMPTS, ST_DELETE_PAYLOAD,
                                         ST_DELETE_UNIQUE, ST_DELETE_JOB};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sqlite3_stmt *st = store_stmt(s, steps[i], err);
        if (!st) {
            code = stmt_failed(s, err);
            goto rollback;
        }
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            code = store_sqlite_err(s, err, rc, "deleting a job");
            goto rollback;
        }
    }
    counts_note(s, row.state, ASPEN_STORE_STATE_NEW, 1);
    return tx_commit(s, "deleting a job", err);
rollback:
    tx_rollback(s);
    return code;
}

int sq_purge(aspen_store *base, int64_t finished_before_ms, int64_t *deleted,
             aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    static const char *const final_states = "('succeeded', 'failed', 'cancelled')";
    int64_t total = 0;
    if (deleted)
        *deleted = 0;
    int code = tx_begin(s, err);
    if (code)
        return code;
    /* Count what goes, per state, for job_counts; then logs, attempts, jobs. */
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT state, count(*) FROM jobs WHERE state IN %s AND finished_at < ?1 GROUP BY state",
             final_states);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        code = store_sqlite_err(s, err, rc, "purging old jobs");
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, finished_before_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = state_from_text(sqlite3_column_text(st, 0));
        int64_t n = sqlite3_column_int64(st, 1);
        if (state >= 0)
            counts_note(s, (aspen_store_state)state, ASPEN_STORE_STATE_NEW, n);
        total += n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "purging old jobs");
        goto rollback;
    }
    static const char *const tables[] = {"logs", "attempts", "job_payloads", "job_unique"};
    static const char *const keys[] = {"job", "job", "id", "job"};
    for (int pass = 0; pass < 5; pass++) {
        if (pass < 4)
            snprintf(sql, sizeof sql,
                     "DELETE FROM %s WHERE %s IN (SELECT id FROM jobs WHERE state IN %s"
                     " AND finished_at < ?1)",
                     tables[pass], keys[pass], final_states);
        else
            snprintf(sql, sizeof sql, "DELETE FROM jobs WHERE state IN %s AND finished_at < ?1",
                     final_states);
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, finished_before_ms);
            rc = sqlite3_step(st);
            sqlite3_finalize(st);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_OK) {
            code = store_sqlite_err(s, err, rc, "purging old jobs");
            goto rollback;
        }
    }
    code = tx_commit(s, "purging old jobs", err);
    if (!code && deleted)
        *deleted = total;
    return code;
rollback:
    tx_rollback(s);
    return code;
}

/* Used by query.c's filtered bulk actions, inside their transaction. */
int store_cancel_one(struct sqlite_store *s, int64_t id, int64_t now_ms,
                     aspen_store_cancel_result *result, aspen_store_error *err)
{
    return cancel_one(s, id, now_ms, result, err);
}
int store_retry_one(struct sqlite_store *s, int64_t id, int64_t now_ms, aspen_store_retry_skip *held,
                    bool *was_held, aspen_store_error *err)
{
    return retry_one(s, id, now_ms, held, was_held, err);
}

/* ---- backoff ------------------------------------------------------------------------------------- */

int store_sqlite_insert_job(struct sqlite_store *s, const aspen_store_job_spec *j, int64_t now_ms,
                            int64_t *id, aspen_store_error *err)
{
    struct binary_memo memo = {0};
    return insert_job(s, j, 0, 1, now_ms, &memo, id, err);
}
