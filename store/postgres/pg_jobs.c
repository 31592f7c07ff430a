/* pg_jobs.c — the PostgreSQL backend's write side: submit (a batch is one transaction), claim with
 * FOR UPDATE SKIP LOCKED, unclaim, live logs, the group commit, release, cancel, rerun, retry,
 * delete, purge, and the transition writer pg_job_read/pg_job_write through which every per-job
 * change of state passes. The semantics are SQLite's (store/sqlite/sqlite_jobs.c, docs/STORE.md);
 * what differs is how several hosts are kept apart:
 *
 * - Time: each call takes the server's clock once, shifted by the caller's offset (pg_store.h),
 *   and moves every absolute time the caller hands in (run_at, retry_at, start and finish times
 *   of attempts, log times) by the same shift, so all hosts' times are on one timeline.
 * - Claim: the queue head is locked FOR UPDATE SKIP LOCKED (another host claiming at the same
 *   moment steps over those rows instead of waiting), and the reservation is an INSERT into
 *   claims ON CONFLICT DO NOTHING: a row one host just reserved and committed can be locked by a
 *   second whose snapshot predates that commit, and the claims key then refuses it, so no job is
 *   ever reserved twice (RETURNING says which rows were really won).
 * - Commit: the engine row is locked FOR KEY SHARE first (recovery takes it FOR UPDATE, so a
 *   commit and the recovery of the same engine never interleave), then the jobs FOR UPDATE in id
 *   order (no deadlock between commits). An engine whose lease is not live on the server's clock
 *   has every item refused with ELEASE; if its lease expired and nobody recovered it yet, the
 *   commit recovers it first (its attempts recorded as lost, its jobs queued again), so a late
 *   result never completes a job and never leaves it stuck.
 * - Every write that makes a job claimable sends NOTIFY aspen_jobs (pg_notify_work), which
 *   PostgreSQL delivers to idle engines when the transaction commits. */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_ATTEMPTS 3
#define DEFAULT_TIMEOUT_MS 30000

/* ---- small helpers ------------------------------------------------------------------------------ */

static int64_t affected(PGresult *r) { return strtoll(PQcmdTuples(r), NULL, 10); }

static int run(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
               const char *what, int64_t *changed, aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    if (changed)
        *changed = affected(r);
    PQclear(r);
    return 0;
}

static int failed(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

/* The server's timeline's "now" for this call (pg_store.h, Time): the caller's now_ms plus this
 * host's measured skew, the value PG_NOW stands for in every statement of the call. */
static int server_now(struct pg_store *s, int64_t now_ms, int64_t *now, aspen_store_error *err)
{
    (void)s, (void)err;
    *now = now_ms + pg_clock_skew_ms();
    return 0;
}

/* A caller's absolute time moved onto the server's timeline (0 stays 0: "not set"). */
static int64_t shifted(int64_t t, int64_t shift) { return t ? t + shift : 0; }

int pg_notify_work(struct pg_store *s, aspen_store_error *err)
{
    struct pg_params p = {0};
    return run(s, "pgj_notify", "SELECT pg_notify('aspen_jobs', '')", &p,
               "announcing new work (NOTIFY aspen_jobs)", NULL, err);
}

/* Guest log lines and error texts are whatever the guest wrote; a PostgreSQL text value must be
 * valid UTF-8 (SQLite stores any bytes), and one bad byte would refuse the whole group commit
 * again and again. So such bytes become U+FFFD on the way in (pg_utf8_clean for single values;
 * add_text below for the arrays of a batched insert). utf8_seq: the length of the valid UTF-8
 * sequence at p (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF), 0 if none. */
static size_t utf8_seq(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
             : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F)))
        return 0;
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F)))
        return 0;
    return n;
}

/* Array literals for batched statements (defined with the log batch below). */
static void add_int(struct pg_sql *q, bool first, int64_t v);
static void add_text(struct pg_sql *q, bool first, const char *v);

/* ---- the transition writer ---------------------------------------------------------------------- */

#define JOB_ROW_COLUMNS                                                                            \
    "id, state, run_at, attempts, max_attempts, started_at, finished_at, owner, cancel_requested," \
    " log_count, log_dropped"

static void row_from_result(const PGresult *r, int i, struct store_job_row *row)
{
    memset(row, 0, sizeof *row);
    row->id = pg_get_int(r, i, 0);
    row->state = (aspen_store_state)state_from_text((const unsigned char *)PQgetvalue(r, i, 1));
    row->run_at = pg_get_int(r, i, 2);
    row->attempts = (int)pg_get_int(r, i, 3);
    row->max_attempts = (int)pg_get_int(r, i, 4);
    row->started_at = pg_get_int(r, i, 5);
    row->finished_at = pg_get_int(r, i, 6);
    row->owner = pg_get_int(r, i, 7);
    row->cancel_requested = pg_get_bool(r, i, 8);
    row->log_count = (int)pg_get_int(r, i, 9);
    row->log_dropped = pg_get_int(r, i, 10);
}

int pg_job_read(struct pg_store *s, int64_t id, bool for_update, struct store_job_row *row,
                aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, id);
    PGresult *r =
        for_update
            ? pg_exec(s, "pgj_read_lock",
                      "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id = $1 FOR UPDATE", &p,
                      "reading a job", err)
            : pg_exec(s, "pgj_read", "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id = $1", &p,
                      "reading a job", err);
    if (!r)
        return failed(err);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld in %s: check the id (aspen jobs%s)",
                         (long long)id, s->shown, store_cmd(&s->base));
    }
    row_from_result(r, 0, row);
    PQclear(r);
    return 0;
}

int pg_job_write(struct pg_store *s, const struct store_job_row *before,
                 const struct store_job_row *after, aspen_store_error *err)
{
    if (after->via_running) {
        int code = aspen_store_check_transition(before->id, before->state, ASPEN_STORE_RUNNING, err);
        if (!code)
            code = aspen_store_check_transition(before->id, ASPEN_STORE_RUNNING, after->state, err);
        if (code)
            return code;
    } else if (before->state != after->state || !after->field_update) {
        int code = aspen_store_check_transition(before->id, before->state, after->state, err);
        if (code)
            return code;
    }
    struct pg_params p = {0};
    pg_p_int(&p, before->id);
    pg_p_text(&p, aspen_store_state_name(after->state));
    pg_p_int(&p, after->run_at);
    pg_p_int(&p, after->attempts);
    pg_p_int(&p, after->max_attempts);
    pg_p_opt_int(&p, after->started_at);
    pg_p_opt_int(&p, after->finished_at);
    pg_p_opt_int(&p, after->owner);
    pg_p_bool(&p, after->cancel_requested);
    pg_p_int(&p, after->log_count);
    pg_p_int(&p, after->log_dropped);
    pg_p_text(&p, aspen_store_state_name(before->state));
    PGresult *r;
    /* A write that changes neither error nor result names only the small columns. */
    if (!after->set_error && !after->set_result) {
        r = pg_exec(s, "pgj_write_small",
                    "UPDATE jobs SET state = $2, run_at = $3, attempts = $4, max_attempts = $5,"
                    " started_at = $6, finished_at = $7, owner = $8, cancel_requested = $9,"
                    " log_count = $10, log_dropped = $11 WHERE id = $1 AND state = $12",
                    &p, "writing a job's state", err);
    } else {
        char *clean = NULL;
        int code = pg_utf8_clean(after->error, &clean, err);
        if (code)
            return code;
        pg_p_bool(&p, after->set_error);
        pg_p_text(&p, clean ? clean : after->error);
        pg_p_bool(&p, after->set_result);
        pg_p_bytes(&p, after->result, after->result_size);
        r = pg_exec(s, "pgj_write",
                    "UPDATE jobs SET state = $2, run_at = $3, attempts = $4, max_attempts = $5,"
                    " started_at = $6, finished_at = $7, owner = $8, cancel_requested = $9,"
                    " log_count = $10, log_dropped = $11,"
                    " error = CASE WHEN $13::boolean THEN $14::text ELSE error END,"
                    " result = CASE WHEN $15::boolean THEN $16::bytea ELSE result END"
                    " WHERE id = $1 AND state = $12",
                    &p, "writing a job's state", err);
        free(clean);
    }
    if (!r)
        return failed(err);
    int64_t n = affected(r);
    PQclear(r);
    if (n != 1)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld changed state while being updated (expected %s): try again",
                         (long long)before->id, aspen_store_state_name(before->state));
    if (before->state != after->state)
        pg_counts_note(s, before->state, after->state, 1);
    else
        s->tx_wrote = true; /* a write all the same: others' data version moves */
    return 0;
}

/* ---- reservations ---------------------------------------------------------------------------- */

static int claim_owner(struct pg_store *s, int64_t job, int64_t *engine, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, job);
    PGresult *r = pg_exec(s, "pgj_claim_owner", "SELECT engine FROM claims WHERE job = $1", &p,
                          "reading a job's reservation", err);
    if (!r)
        return failed(err);
    *engine = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

static int claim_delete(struct pg_store *s, int64_t job, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, job);
    return run(s, "pgj_claim_delete", "DELETE FROM claims WHERE job = $1", &p,
               "removing a job's reservation", NULL, err);
}

/* ---- submit -------------------------------------------------------------------------------------- */

/* Puts "job 3 of the batch: " in front of an error's message. */
static int named(const char *where, int code, aspen_store_error *err)
{
    if (err && *where) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s%s", where, err->msg);
        memcpy(err->msg, msg, sizeof msg);
    }
    return code;
}

struct binary_memo {
    const void *bytes;
    size_t size;
    char sha[65];
    bool valid;
};

/* Whether text is valid UTF-8 (utf8_seq); PostgreSQL refuses a statement with any that is not. */
static bool utf8_valid(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; c && *c;) {
        size_t k = utf8_seq(c);
        if (!k)
            return false;
        c += k;
    }
    return true;
}

/* One job's binary: stored (bytes) or looked up (hash), once per distinct binary of the batch;
 * its hash into sha ("" when none). */
static int resolve_binary(struct pg_store *s, const aspen_store_job_spec *j, const char *where,
                          int64_t now_ms, struct binary_memo *memo, char sha[65],
                          aspen_store_error *err)
{
    sha[0] = '\0';
    int code = 0;
    if (j->binary) {
        if (!memo->valid || memo->bytes != j->binary || memo->size != j->binary_size) {
            aspen_store_sha256_hex(j->binary, j->binary_size, memo->sha);
            code = pg_binary_store(s, memo->sha, j->binary, j->binary_size, j->binary_name,
                                   now_ms, err);
            if (code)
                return named(where, code, err);
            memo->bytes = j->binary;
            memo->size = j->binary_size;
            memo->valid = true;
        }
        if (j->binary_sha256 && strcmp(j->binary_sha256, memo->sha) != 0)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "%sthe binary's bytes hash to %.16s…, not the given %.16s…", where,
                             memo->sha, j->binary_sha256);
        memcpy(sha, memo->sha, 65);
    } else if (j->binary_sha256) {
        if (!memo->valid || memo->bytes || strcmp(memo->sha, j->binary_sha256) != 0) {
            code = pg_binary_exists(s, j->binary_sha256, err);
            if (code)
                return named(where, code, err);
            snprintf(memo->sha, sizeof memo->sha, "%s", j->binary_sha256);
            memo->bytes = NULL;
            memo->size = 0;
            memo->valid = true;
        }
        snprintf(sha, 65, "%s", j->binary_sha256);
    }
    return 0;
}

static void add_opt_text(struct pg_sql *q, bool first, const char *v)
{
    if (v)
        add_text(q, first, v);
    else
        pg_sql_add(q, first ? "{NULL" : ",NULL");
}

/* ---- unique keys ---------------------------------------------------------------------------------
 * A key is serialised by a transaction advisory lock (the two-int form, whose key space never
 * meets the one-bigint schema lock), taken before the key is looked up and held to COMMIT: the
 * lookup is a new statement, so under READ COMMITTED it sees every job of the key that a
 * submitter before us committed, and no submitter after us looks until we committed. Period and
 * states are checked by the lookup at that moment (a finished or expired job simply is not found),
 * which a unique index could not express. Two keys sharing a 32-bit hash only wait for each other. */
#define PG_UNIQUE_LOCK_CLASS 0x41737075 /* "Aspu" */

static int32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)key; *c; c++)
        h = (h ^ *c) * 16777619u;
    return (int32_t)h;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Locks every distinct key of the batch in one order (ascending hash), so two batches that share
 * keys never deadlock. */
static int unique_lock(struct pg_store *s, const char *const *keys, size_t n, aspen_store_error *err)
{
    int32_t *h = malloc((n ? n : 1) * sizeof *h);
    if (!h)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory locking unique keys");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i])
            h[k++] = key_hash(keys[i]);
    qsort(h, k, sizeof *h, cmp_i32);
    int code = 0;
    for (size_t i = 0; i < k && !code; i++) {
        if (i && h[i] == h[i - 1])
            continue;
        struct pg_params p = {0};
        pg_p_int(&p, PG_UNIQUE_LOCK_CLASS);
        pg_p_int(&p, h[i]);
        code = run(s, "pgj_unique_lock", "SELECT pg_advisory_xact_lock($1::integer, $2::integer)",
                   &p, "waiting for a unique key's lock", NULL, err);
    }
    free(h);
    return code;
}

static void states_list(unsigned states, char *out, size_t size)
{
    size_t used = snprintf(out, size, ",");
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (states & (1u << st))
            used += snprintf(out + used, used < size ? size - used : 0, "%s,",
                             aspen_store_state_name((aspen_store_state)st));
}

/* The newest job of a key that rule u counts at now (server timeline); *found false when none. */
/* (except: a job not to count, a retry's own; 0 for none.) */
static int unique_find(struct pg_store *s, const char *key, const aspen_store_unique *u,
                       int64_t now, int64_t except, bool *found, aspen_store_submitted *dup,
                       aspen_store_error *err)
{
    *found = false;
    char states[80];
    states_list(store_unique_states(u), states, sizeof states);
    struct pg_params p = {0};
    pg_p_text(&p, key);
    pg_p_int(&p, store_unique_since(u, now));
    pg_p_text(&p, states);
    pg_p_int(&p, except);
    PGresult *r = pg_exec(s, "pgj_unique_find",
                          "SELECT u.job, j.state, j.created_at FROM job_unique u JOIN jobs j"
                          " ON j.id = u.job WHERE u.key = $1 AND u.created_at > $2::bigint"
                          " AND strpos($3, ',' || j.state || ',') > 0 AND u.job <> $4::bigint"
                          " ORDER BY u.created_at DESC, u.job DESC LIMIT 1",
                          &p, "looking up a unique key", err);
    if (!r)
        return failed(err);
    if (PQntuples(r) == 1) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, 0, 1));
        *found = state >= 0;
        dup->id = pg_get_int(r, 0, 0);
        dup->duplicate = true;
        dup->state = state >= 0 ? (aspen_store_state)state : ASPEN_STORE_QUEUED;
        dup->created_at_ms = pg_get_int(r, 0, 2);
    }
    PQclear(r);
    return 0;
}

static int unique_rule_get(struct pg_store *s, int64_t id, aspen_store_job_rule *out,
                           aspen_store_error *err)
{
    *out = (aspen_store_job_rule){0};
    struct pg_params p = {0};
    pg_p_int(&p, id);
    PGresult *r = pg_exec(s, "pgj_unique_get",
                          "SELECT key, period_ms, states FROM job_unique WHERE job = $1", &p,
                          "reading a job's unique key", err);
    if (!r)
        return failed(err);
    bool oom = false;
    if (PQntuples(r) == 1) {
        out->key = pg_get_text(r, 0, 0, &oom);
        out->period_ms = pg_get_int(r, 0, 1);
        int64_t states = pg_get_int(r, 0, 2);
        /* only bits of states that exist: a row written by hand reads as the default */
        out->states = states > 0 && states < (1 << ASPEN_STORE_STATE_COUNT) ? (unsigned)states : 0;
    }
    PQclear(r);
    return oom ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a unique key") : 0;
}

int pg_job_unique_rule(aspen_store *base, int64_t id, aspen_store_job_rule *out,
                       aspen_store_error *err)
{
    return unique_rule_get(pgs(base), id, out, err);
}

/* The whole batch in two statements: its ids from the jobs' identity sequence (so ids_out is in
 * spec order whatever order rows are inserted in), then one INSERT … SELECT FROM unnest(…). Text
 * that is not UTF-8 is refused here, naming the job (PostgreSQL would refuse the statement). */
static int insert_jobs(struct pg_store *s, const aspen_store_job_spec *specs, size_t n,
                       int64_t now_ms, const char *const *keys, int64_t *ids_out,
                       aspen_store_submitted *done, aspen_store_error *err);

int pg_submit_batch(aspen_store *base, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                    const char *const *keys, int64_t *ids_out, aspen_store_submitted *out,
                    aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    aspen_store_submitted *done = calloc(n ? n : 1, sizeof *done);
    if (!done)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory submitting %zu jobs", n);
    int code = pg_tx_begin(s, err);
    if (code) {
        free(done);
        return code;
    }
    code = insert_jobs(s, specs, n, now_ms, keys, ids_out, done, err);
    if (code) {
        pg_tx_rollback(s);
        free(done);
        return code;
    }
    code = pg_tx_commit(s, "committing submitted jobs", err);
    if (!code && out)
        memcpy(out, done, n * sizeof *out);
    free(done);
    return code;
}

int pg_insert_jobs(struct pg_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                   int64_t *ids_out, aspen_store_error *err)
{
    aspen_store_submitted *done = calloc(n ? n : 1, sizeof *done);
    if (!done)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory submitting %zu jobs", n);
    int code = insert_jobs(s, specs, n, now_ms, NULL, ids_out, done, err);
    free(done);
    return code;
}

/* The insert of a batch inside the caller's transaction; done[i] says what became of spec i. */
static int insert_jobs(struct pg_store *s, const aspen_store_job_spec *specs, size_t n,
                       int64_t now_ms, const char *const *keys, int64_t *ids_out,
                       aspen_store_submitted *done, aspen_store_error *err)
{
    enum { COLS = 14 };
    struct pg_sql c[COLS] = {{0}}, qids = {0}, qnames = {0}, uk[4] = {{0}}; /* jobs of named queues */
    int64_t now = 0, counted[ASPEN_STORE_STATE_COUNT] = {0};
    size_t added = 0, n_keys = 0;
    int code = server_now(s, now_ms, &now, err);
    if (code)
        goto rollback;
    if (keys && (code = unique_lock(s, keys, n, err)) != 0)
        goto rollback;
    struct pg_params p = {0};
    pg_p_int(&p, (int64_t)n);
    PGresult *r = pg_exec(s, "pgj_job_ids",
                          "SELECT nextval(pg_get_serial_sequence('jobs', 'id'))"
                          " FROM generate_series(1, $1)",
                          &p, "numbering submitted jobs", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    if ((size_t)PQntuples(r) != n) {
        PQclear(r);
        code = store_err(err, ASPEN_STORE_EIO, "numbering %zu submitted jobs failed", n);
        goto rollback;
    }
    struct binary_memo memo = {0};
    bool due = false;
    for (size_t i = 0; i < n; i++) {
        const aspen_store_job_spec *j = &specs[i];
        char where[48] = "", sha[65];
        if (n > 1)
            snprintf(where, sizeof where, "job %zu of the batch: ", i + 1);
        const char *texts[] = {j->type, j->binary_name, j->payload, j->tags, j->source_dir};
        static const char *const names[] = {"type", "binary name", "payload", "tags",
                                            "source directory"};
        for (size_t t = 0; t < 5; t++)
            if (!utf8_valid(texts[t])) {
                PQclear(r);
                code = store_err(err, ASPEN_STORE_EINVAL,
                                 "%sits %s is not valid UTF-8 (the database keeps text as UTF-8):"
                                 " nothing of the batch was submitted",
                                 where, names[t]);
                goto rollback;
            }
        code = resolve_binary(s, j, where, now_ms, &memo, sha, err);
        if (code) {
            PQclear(r);
            goto rollback;
        }
        /* Due or not is decided on the caller's numbers (the shift moves both alike). */
        bool later = j->run_at_ms > 0 && j->run_at_ms > now_ms;
        aspen_store_state state = later ? ASPEN_STORE_SCHEDULED : ASPEN_STORE_QUEUED;
        code = aspen_store_check_transition(0, ASPEN_STORE_STATE_NEW, state, err);
        if (code) {
            PQclear(r);
            goto rollback;
        }
        int64_t id = pg_get_int(r, (int)i, 0);
        const char *key = keys ? keys[i] : NULL;
        if (key) {
            /* A job of this batch first (it is the newest), then the database. */
            bool dup = false;
            for (size_t k = i; k-- > 0 && !dup;)
                if (keys[k] && !done[k].duplicate && strcmp(keys[k], key) == 0 &&
                    store_unique_matches(j->unique, done[k].state, now, now))
                    done[i] = done[k], done[i].duplicate = dup = true;
            if (!dup) {
                if ((code = unique_find(s, key, j->unique, now, 0, &dup, &done[i], err)) != 0) {
                    PQclear(r);
                    goto rollback;
                }
                if (dup)
                    done[i].created_at_ms -= now - now_ms; /* back on the caller's clock */
            }
            if (dup) {
                if (ids_out)
                    ids_out[i] = done[i].id;
                continue;
            }
            add_int(&uk[0], n_keys == 0, id);
            add_text(&uk[1], n_keys == 0, key);
            add_int(&uk[2], n_keys == 0, j->unique && j->unique->period_ms > 0 ? j->unique->period_ms : 0);
            add_int(&uk[3], n_keys == 0, (int64_t)store_unique_states(j->unique));
            n_keys++;
        }
        done[i] = (aspen_store_submitted){.id = id, .state = state, .created_at_ms = now_ms};
        due = due || !later;
        counted[state]++;
        if (ids_out)
            ids_out[i] = id;
        bool f = added++ == 0;
        add_int(&c[0], f, id);
        add_text(&c[1], f, j->type);
        add_opt_text(&c[2], f, sha[0] ? sha : NULL);
        add_opt_text(&c[3], f, j->binary_name);
        add_text(&c[4], f, j->payload ? j->payload : "{}");
        add_text(&c[5], f, aspen_store_state_name(state));
        add_int(&c[6], f, j->priority);
        add_int(&c[7], f, j->run_at_ms > 0 ? j->run_at_ms + (now - now_ms) : now);
        add_int(&c[8], f, j->max_attempts ? j->max_attempts : DEFAULT_MAX_ATTEMPTS);
        add_int(&c[9], f, j->timeout_ms ? j->timeout_ms : DEFAULT_TIMEOUT_MS);
        add_int(&c[10], f, j->memory_bytes);
        add_int(&c[11], f, j->isolation ? 1 : 0);
        add_text(&c[12], f, j->tags ? j->tags : "[]");
        add_opt_text(&c[13], f, j->source_dir);
        if (strcmp(store_queue_of(j), ASPEN_STORE_QUEUE_DEFAULT) != 0) { /* named: pg_queues.c */
            add_text(&qnames, !qids.text, store_queue_of(j));
            add_int(&qids, !qids.text, id);
        }
    }
    PQclear(r);
    if (added == 0) /* every job was a duplicate: nothing to write */
        goto done;
    p = (struct pg_params){0};
    bool oom = false;
    for (int i = 0; i < COLS; i++) {
        pg_sql_add(&c[i], "}");
        oom = oom || c[i].oom;
        pg_p_text(&p, c[i].text);
    }
    pg_p_int(&p, now);
    int64_t inserted = 0;
    code = oom ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory submitting %zu jobs", n)
               : run(s, "pgj_jobs_insert",
                     "INSERT INTO jobs (id, type, binary_sha256, binary_name, payload, state,"
                     " priority, run_at, max_attempts, timeout_ms, memory_bytes, isolation, tags,"
                     " created_at, source_dir) OVERRIDING SYSTEM VALUE"
                     " SELECT u.id, u.type, u.sha, u.bname, u.payload::json, u.state, u.priority,"
                     " u.run_at, u.max_attempts, u.timeout_ms, u.memory_bytes, u.isolation,"
                     " u.tags::json, $15, u.source_dir FROM unnest($1::bigint[], $2::text[],"
                     " $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[],"
                     " $8::bigint[], $9::integer[], $10::bigint[], $11::bigint[], $12::integer[],"
                     " $13::text[], $14::text[]) AS u (id, type, sha, bname, payload, state,"
                     " priority, run_at, max_attempts, timeout_ms, memory_bytes, isolation, tags,"
                     " source_dir)",
                     &p, n > 1 ? "submitting a batch of jobs" : "submitting a job", &inserted,
                     err);
    for (int i = 0; i < COLS; i++)
        pg_sql_free(&c[i]);
    if (!code && (size_t)inserted != added)
        code = store_err(err, ASPEN_STORE_EIO, "%lld of %zu jobs were inserted",
                         (long long)inserted, added);
    if (!code && n_keys) {
        bool uoom = false;
        p = (struct pg_params){0};
        for (int k = 0; k < 4; k++) {
            pg_sql_add(&uk[k], "}");
            uoom = uoom || uk[k].oom;
            pg_p_text(&p, uk[k].text);
        }
        pg_p_int(&p, now);
        /* with the rule's period and states, which retry and rerun apply later */
        code = uoom ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory for unique keys")
                    : run(s, "pgj_unique_insert",
                          "INSERT INTO job_unique (job, key, created_at, period_ms, states)"
                          " SELECT u.job, u.key, $5, u.period_ms, u.states FROM unnest($1::bigint[],"
                          " $2::text[], $3::bigint[], $4::integer[]) AS u (job, key, period_ms, states)",
                          &p, "storing unique keys", NULL, err);
    }
    if (code)
        goto rollback;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (counted[st])
            pg_counts_note(s, ASPEN_STORE_STATE_NEW, (aspen_store_state)st, counted[st]);
    if (qids.text) {
        pg_sql_add(&qids, "}");
        pg_sql_add(&qnames, "}");
        code = qids.oom || qnames.oom
                   ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory submitting %zu jobs", n)
                   : pg_queues_submitted(s, qids.text, qnames.text, now, err);
        if (code)
            goto rollback;
    }
    if (due && (code = pg_notify_work(s, err)) != 0)
        goto rollback;
done:
    pg_sql_free(&qids);
    pg_sql_free(&qnames);
    for (int i = 0; i < 4; i++)
        pg_sql_free(&uk[i]);
    return code;
rollback:
    for (int i = 0; i < COLS; i++)
        pg_sql_free(&c[i]);
    pg_sql_free(&qids);
    pg_sql_free(&qnames);
    for (int i = 0; i < 4; i++)
        pg_sql_free(&uk[i]);
    return code;
}

/* ---- claim --------------------------------------------------------------------------------------- */

/* The server's now, and whether engine_id holds a live lease at it: 0, or ELEASE with a message.
 * The engine row is locked FOR KEY SHARE until the transaction ends (recovery of this engine
 * waits; its renewals do not). *expired (may be NULL) tells an expired lease from a missing row. */
static void lease_step(struct pg_step *st, struct pg_params *p, int64_t engine_id,
                       int64_t now_ms, bool claim)
{
    *p = (struct pg_params){0};
    pg_p_now(p, now_ms);
    pg_p_int(p, engine_id);
    /* The pause flag comes along (one round trip for both; a commit ignores it). A claim (the
     * caller asks for the pause flag) also makes its own transaction's COMMIT asynchronous
     * (set_config(…, true) is SET LOCAL, in the same round trip): it does not wait for its WAL
     * to reach the disk. What a server crash can lose then is the last claims — reservations
     * and promotions of scheduled jobs, never a result: the jobs are still queued without a
     * reservation (the engine's start or completion of one is refused, it runs again), and the
     * lease of the engine that claimed them expires as it would. A completion's COMMIT stays
     * synchronous, and flushing its WAL flushes every earlier claim's with it, so a durable
     * result never rests on a claim that could be lost. With fsync on this takes one fsync wait
     * out of every claim (docs/BENCHMARKS.md, "The engine on PostgreSQL"). */
    *st = claim ? (struct pg_step){.name = "pgj_lease_claim",
                                   .sql = "SELECT " PG_NOW(1) ", (SELECT lease_until FROM engines"
                                          " WHERE id = $2 FOR KEY SHARE), (SELECT value FROM"
                                          " settings WHERE key = 'queue.paused'), EXISTS (SELECT"
                                          " 1 FROM queues WHERE paused <> 0 OR concurrency IS NOT"
                                          " NULL OR rate_n IS NOT NULL),"
                                          " set_config('synchronous_commit', 'off', true)",
                                   .p = p, .what = "checking an engine's lease"}
                 /* Whether a queue has a rate comes along too: a commit's starts write rate
                  * shares (pg_queue_started) only on a handle that knows one exists, and the
                  * handle that claimed a job need not be the one that starts it (the engine
                  * claims on a connection of its own: engine.c, claimer_main). */
                 : (struct pg_step){.name = "pgj_lease",
                                   .sql = "SELECT " PG_NOW(1) ", (SELECT lease_until FROM engines"
                                          " WHERE id = $2 FOR KEY SHARE), EXISTS (SELECT 1 FROM"
                                          " queues WHERE rate_n IS NOT NULL)",
                                   .p = p, .what = "checking an engine's lease"};
}

/* The lease step's answer (r is cleared): as lease_now. paused is non-NULL for a claim's. */
static int lease_result(struct pg_store *s, PGresult *r, int64_t engine_id, int64_t *now,
                        bool *expired, bool *paused, const char *doing, aspen_store_error *err)
{    *now = pg_get_int(r, 0, 0);
    bool registered = !PQgetisnull(r, 0, 1);
    int64_t until = pg_get_int(r, 0, 1);
    if (paused) {
        *paused = !PQgetisnull(r, 0, 2) && strcmp(PQgetvalue(r, 0, 2), "0") != 0;
        s->queues_active = pg_get_bool(r, 0, 3); /* some queue has a setting: pg_queues.c */
    } else if (pg_get_bool(r, 0, 2)) {
        s->rate_seen = true; /* some queue has a rate: this handle's starts write shares */
    }
    PQclear(r);
    if (expired)
        *expired = registered && until < *now;
    if (!registered)
        return store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld is not registered (or its lease expired and its jobs were "
                         "recovered by another process): register again and drop the jobs it held",
                         (long long)engine_id);
    if (until < *now)
        return store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld's lease expired %lld ms ago by the database's clock: renew "
                         "it (aspen_store_engine_renew) before %s",
                         (long long)engine_id, (long long)(*now - until), doing);
    return 0;
}

static int lease_now(struct pg_store *s, int64_t engine_id, int64_t now_ms, int64_t *now,
                     bool *expired, bool *paused, const char *doing, aspen_store_error *err)
{
    struct pg_params p;
    struct pg_step st;
    lease_step(&st, &p, engine_id, now_ms, paused != NULL);
    PGresult *r = pg_exec(s, st.name, st.sql, &p, st.what, err);
    if (!r)
        return failed(err);
    return lease_result(s, r, engine_id, now, expired, paused, doing, err);
}

/* Claim order: priority descending, then run_at, then id. */
static int claim_order(const void *a, const void *b)
{
    const aspen_store_job *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->run_at_ms != y->run_at_ms)
        return x->run_at_ms < y->run_at_ms ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The claim of the default queue's head: up to max jobs nobody has reserved, rows other claimers
 * hold skipped; the claims key decides between two hosts that both locked one row (see the top of
 * this file). Every head row comes back, won (column 0 true) or lost. now: the server's now, the
 * reservations' time. */
static void head_claim_step(struct pg_step *st, struct pg_params *p, size_t max, int64_t engine_id,
                            int64_t now)
{
    *p = (struct pg_params){0};
    pg_p_int(p, (int64_t)max);
    pg_p_int(p, engine_id);
    pg_p_int(p, now);
    *st = (struct pg_step){
        .name = "pgj_claim",
        .sql = "WITH head AS (SELECT " PG_JOB_COLUMNS " FROM jobs WHERE state = 'queued' AND"
               " NOT EXISTS (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
               " ORDER BY priority DESC, run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED),"
               " won AS (INSERT INTO claims (job, engine, claimed_at)"
               " SELECT id, $2, $3 FROM head ON CONFLICT (job) DO NOTHING RETURNING job)"
               " SELECT won.job IS NOT NULL, head.* FROM head"
               " LEFT JOIN won ON won.job = head.id ORDER BY priority DESC, run_at, id",
        .p = p, .what = "claiming jobs"};
}

int pg_claim(aspen_store *base, int64_t engine_id, size_t max, int64_t now_ms,
             aspen_store_job **jobs, size_t *n, bool *paused, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *jobs = NULL;
    *n = 0;
    if (paused)
        *paused = false;
    if (max == 0)
        return 0;
    if (max > 100000)
        max = 100000; /* one transaction's worth; the caller asks again */
    /* The head's claim goes in the first round trip too when the last claim saw no queue with a
     * setting (nor does this handle serve only some queues): a claim is then 2 round trips, not
     * 3. The server runs it after the lease check and the promotion, in the same transaction;
     * when the lease check refuses or the queue is paused it is rolled back with the rest. If a
     * queue got a setting since, its limits were not applied: all of it is rolled back and the
     * claim starts again queue by queue (once). */
    bool ahead = !s->queues_active && !s->base.n_serve;
again:;
    bool is_paused = false;
    int64_t now = 0, promoted = 0;
    aspen_store_job *out = NULL;
    size_t got = 0;
    /* BEGIN, the lease check and the promotion in one round trip (pg_pipeline). The promotion
     * (scheduled → queued for the due prefix; rows another host is promoting are skipped) runs
     * whatever the lease check says: when it refuses, or the queue is paused, all of it is
     * rolled back. Its "now" is the lease check's: the same parameter (PG_NOW). */
    struct pg_params lp, p = {0}, hp;
    struct pg_step steps[3];
    lease_step(&steps[0], &lp, engine_id, now_ms, true);
    pg_p_now(&p, now_ms);
    steps[1] = (struct pg_step){.name = "pgj_promote",
                                .sql = "WITH due AS (SELECT id FROM jobs WHERE state = 'scheduled'"
                                       " AND run_at <= $1 ORDER BY run_at LIMIT 100000"
                                       " FOR UPDATE SKIP LOCKED)"
                                       " UPDATE jobs SET state = 'queued' FROM due"
                                       " WHERE jobs.id = due.id AND jobs.state = 'scheduled'",
                                .p = &p, .what = "promoting due scheduled jobs"};
    if (ahead) /* the lease check's now is now_ms + skew: the same value */
        head_claim_step(&steps[2], &hp, max, engine_id, now_ms + pg_clock_skew_ms());
    PGresult *head = NULL; /* the first round's answer when it came with the BEGIN */
    int code = pg_tx_begin_with(s, steps, ahead ? 3 : 2, err);
    if (code)
        goto rollback;
    head = ahead ? steps[2].r : NULL;
    promoted = affected(steps[1].r);
    PQclear(steps[1].r);
    code = lease_result(s, steps[0].r, engine_id, &now, NULL, &is_paused,
                        "claiming or completing jobs", err);
    if (code || is_paused)
        goto rollback; /* paused: nothing to write */
    if (head && (s->queues_active || s->base.n_serve)) {
        PQclear(head); /* a queue got a setting: its limits must apply (above) */
        head = NULL;
        pg_tx_rollback(s);
        ahead = false;
        goto again;
    }
    pg_counts_note(s, ASPEN_STORE_SCHEDULED, ASPEN_STORE_QUEUED, promoted);

    /* Queues with settings, or a handle serving only some queues: queue by queue under the
     * limited queues' row locks (pg_queues.c). Otherwise the one head, as before queues existed. */
    s->base.claim_held = false;
    s->base.claim_retry_in_ms = 0;
    if (s->queues_active || s->base.n_serve) {
        code = pg_claim_queues(s, engine_id, max, now, &out, &got, err);
        if (code)
            goto rollback;
        goto claimed;
    }

    /* A row lost to a claimer that committed after the statement's snapshot is retried with a
     * new statement (a new snapshot), so a claim does not come back short — or empty, telling
     * the engine the queue is dry — while work waits. */
    for (int round = 0; round < 8 && got < max; round++) {
        PGresult *r = head;
        head = NULL;
        if (!r) {
            struct pg_step st;
            head_claim_step(&st, &hp, max - got, engine_id, now);
            r = pg_exec(s, st.name, st.sql, st.p, st.what, err);
        }
        if (!r) {
            code = failed(err);
            goto rollback;
        }
        size_t rows = (size_t)PQntuples(r), lost = 0;
        if (rows) {
            aspen_store_job *grown = realloc(out, (got + rows) * sizeof *out);
            if (!grown) {
                PQclear(r);
                code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming %zu jobs", max);
                goto rollback;
            }
            out = grown;
        }
        for (size_t i = 0; i < rows; i++) {
            if (!pg_get_bool(r, (int)i, 0)) {
                lost++;
                continue;
            }
            code = pg_job_from_row(r, (int)i, 1, &out[got], err);
            if (code) {
                PQclear(r);
                goto rollback;
            }
            got++;
        }
        PQclear(r);
        if (!lost)
            break; /* the head was ours, or there is no more */
    }
    if (got > 1)
        qsort(out, got, sizeof *out, claim_order); /* rounds each come in order; all together */
claimed:
    if (got)
        s->tx_wrote = true; /* reservations written */
    code = pg_tx_commit(s, "committing claimed jobs", err);
    if (code)
        goto free_out;
    *jobs = out;
    *n = got;
    return 0;
rollback:
    PQclear(head);
    pg_tx_rollback(s);
free_out:
    aspen_store_jobs_free(out, got);
    if (paused)
        *paused = is_paused;
    return code;
}

int pg_unclaim(aspen_store *base, int64_t engine_id, const int64_t *ids, size_t n,
               aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    int64_t gone = 0;
    for (size_t i = 0; i < n; i++) {
        struct pg_params p = {0};
        pg_p_int(&p, ids[i]);
        pg_p_int(&p, engine_id);
        int64_t k = 0;
        code = run(s, "pgj_claim_take", "DELETE FROM claims WHERE job = $1 AND engine = $2", &p,
                   "giving back reserved jobs", &k, err);
        if (code)
            goto rollback;
        gone += k;
    }
    if (gone) {
        s->tx_wrote = true;
        if ((code = pg_notify_work(s, err)) != 0)
            goto rollback;
    }
    return pg_tx_commit(s, "giving back reserved jobs", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

/* The write phase of a group commit: its statements (reservations taken, job rows, attempt rows,
 * log lines, the NOTIFY), sent in one round trip (pg_pipeline) instead of one each. The arrays
 * the parameters point into are owned by the batch until write_batch_free. */
struct write_batch {
    struct pg_step steps[6];
    struct pg_params params[6];
    struct pg_sql owned[2 + 16 + 14 + 5]; /* claims, jobs, attempts (ATTEMPT_COLS), logs */
    size_t n, n_owned;
    int take_step, rows_step; /* the claims DELETE and the jobs UPDATE, -1 when absent */
    size_t taken, rows;       /* how many rows each must change */
};

static const char *wb_own(struct write_batch *wb, struct pg_sql *q)
{
    wb->owned[wb->n_owned] = *q;
    *q = (struct pg_sql){0};
    return wb->owned[wb->n_owned++].text;
}

static struct pg_params *wb_step(struct write_batch *wb, const char *name, const char *sql,
                                 const char *what)
{
    size_t i = wb->n++;
    wb->params[i] = (struct pg_params){0};
    wb->steps[i] = (struct pg_step){.name = name, .sql = sql, .p = &wb->params[i], .what = what};
    return &wb->params[i];
}

static void write_batch_free(struct write_batch *wb)
{
    for (size_t i = 0; i < wb->n_owned; i++)
        pg_sql_free(&wb->owned[i]);
    for (size_t i = 0; i < wb->n; i++)
        PQclear(wb->steps[i].r);
    wb->n = wb->n_owned = 0;
}

/* ---- logs ---------------------------------------------------------------------------------------- */

/* Log rows gathered for one statement: PostgreSQL arrays in text form, inserted with unnest. */
struct log_batch {
    struct pg_sql job, seq, attempt, time, line;
    size_t n;
};

static void log_batch_free(struct log_batch *b)
{
    pg_sql_free(&b->job);
    pg_sql_free(&b->seq);
    pg_sql_free(&b->attempt);
    pg_sql_free(&b->time);
    pg_sql_free(&b->line);
    memset(b, 0, sizeof *b);
}

static void add_int(struct pg_sql *q, bool first, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%s%lld", first ? "{" : ",", (long long)v);
    pg_sql_add(q, buf);
}

/* A text array element: double-quoted, with " and \ escaped, and bytes that are not UTF-8
 * replaced (see utf8_seq). */
static void add_text(struct pg_sql *q, bool first, const char *v)
{
    pg_sql_add(q, first ? "{\"" : ",\"");
    char chunk[256];
    size_t k = 0;
    for (const char *c = v; *c;) {
        if (k + 5 > sizeof chunk) {
            chunk[k] = '\0';
            pg_sql_add(q, chunk);
            k = 0;
        }
        size_t len = utf8_seq((const unsigned char *)c);
        if (len == 0) {
            memcpy(chunk + k, "\xEF\xBF\xBD", 3);
            k += 3;
            c++;
            continue;
        }
        if (*c == '"' || *c == '\\')
            chunk[k++] = '\\';
        memcpy(chunk + k, c, len);
        k += len;
        c += len;
    }
    chunk[k] = '\0';
    pg_sql_add(q, chunk);
    pg_sql_add(q, "\"");
}

static void log_batch_add(struct log_batch *b, int64_t job, int64_t seq, int attempt,
                          int64_t time_ms, const char *line)
{
    bool first = b->n == 0;
    add_int(&b->job, first, job);
    add_int(&b->seq, first, seq);
    add_int(&b->attempt, first, attempt);
    add_int(&b->time, first, time_ms);
    add_text(&b->line, first, line);
    b->n++;
}

/* The lines and their announcement to the log feed's followers (LISTEN aspen_logs) in one
 * statement; PostgreSQL delivers one notification per transaction however many batches sent it
 * (same channel, same payload), at commit. */
#define LOGS_INSERT_SQL                                                                            \
    "WITH ins AS (INSERT INTO logs (job, seq, attempt, time_ms, line) SELECT * FROM"              \
    " unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bigint[], $5::text[]))"               \
    " SELECT pg_notify('aspen_logs', '')"

/* The same INSERT as a step of a group commit's write batch (b's arrays move into it). */
static int log_batch_step(struct log_batch *b, struct write_batch *wb, aspen_store_error *err)
{
    if (!b->n)
        return 0;
    struct pg_sql *cols[] = {&b->job, &b->seq, &b->attempt, &b->time, &b->line};
    for (size_t i = 0; i < 5; i++) {
        pg_sql_add(cols[i], "}");
        if (cols[i]->oom)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing %zu log lines", b->n);
    }
    struct pg_params *p = wb_step(wb, "pgj_logs_insert", LOGS_INSERT_SQL, "writing log lines");
    for (size_t i = 0; i < 5; i++)
        pg_p_text(p, wb_own(wb, cols[i]));
    log_batch_free(b);
    return 0;
}

/* The INSERT on its own, inside the caller's transaction (live logs). */
static int log_batch_flush(struct pg_store *s, struct log_batch *b, aspen_store_error *err)
{
    struct write_batch wb = {.take_step = -1, .rows_step = -1};
    int code = log_batch_step(b, &wb, err);
    if (!code)
        code = pg_pipeline(s, wb.steps, wb.n, false, err);
    write_batch_free(&wb);
    return code;
}

/* Lines of one job under the per-job cap, as SQLite's logs_insert: row's counters move. */
static void logs_gather(struct pg_store *s, struct log_batch *b, struct store_job_row *row,
                        int attempt, const aspen_store_log_line *lines, size_t n, int64_t shift)
{
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
        log_batch_add(b, row->id, row->log_count + 1, text == marker ? 0 : attempt,
                      shifted(lines[i].time_ms, shift), text);
        row->log_count++;
    }
}

static int write_log_counts(struct pg_store *s, const struct store_job_row *row,
                            aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, row->id);
    pg_p_int(&p, row->log_count);
    pg_p_int(&p, row->log_dropped);
    s->tx_wrote = true;
    return run(s, "pgj_logcount", "UPDATE jobs SET log_count = $2, log_dropped = $3 WHERE id = $1",
               &p, "counting log lines", NULL, err);
}

int pg_append_logs(aspen_store *base, const aspen_store_log_line *lines, size_t n,
                   aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct log_batch b = {0};
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    int64_t now = 0, now_ms = aspen_store_now_ms();
    code = server_now(s, now_ms, &now, err);
    if (code)
        goto rollback;
    /* Consecutive lines of one job are gathered together, then its counters written once. */
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        while (k < n && lines[k].job_id == lines[i].job_id && lines[k].attempt == lines[i].attempt)
            k++;
        struct store_job_row row;
        code = pg_job_read(s, lines[i].job_id, true, &row, err);
        if (code)
            goto rollback;
        logs_gather(s, &b, &row, lines[i].attempt ? lines[i].attempt : row.attempts, &lines[i],
                    k - i, now - now_ms);
        code = log_batch_flush(s, &b, err);
        if (!code)
            code = write_log_counts(s, &row, err);
        if (code)
            goto rollback;
        i = k;
    }
    return pg_tx_commit(s, "committing log lines", err);
rollback:
    log_batch_free(&b);
    pg_tx_rollback(s);
    return code;
}

/* ---- complete (group commit) --------------------------------------------------------------------- */

static const char *const outcome_names[] = {"succeeded", "failed", "timeout", "cancelled"};

/* Attempt rows gathered for one statement. */
struct attempt_batch {
    struct pg_sql job, number, engine, started, finished, wall, exits, calls, pages, in, out,
        outcome, error, recovered;
    size_t n;
};

static struct pg_sql *attempt_cols(struct attempt_batch *b, size_t i)
{
    struct pg_sql *cols[] = {&b->job,   &b->number, &b->engine,  &b->started,  &b->finished,
                             &b->wall,  &b->exits,  &b->calls,   &b->pages,    &b->in,
                             &b->out,   &b->outcome, &b->error, &b->recovered};
    return cols[i];
}
#define ATTEMPT_COLS 14
_Static_assert(2 + 16 + ATTEMPT_COLS + 5 <= sizeof ((struct write_batch *)0)->owned /
                                            sizeof ((struct write_batch *)0)->owned[0],
               "a write batch owns every array of a group commit's statements");

static void attempt_batch_free(struct attempt_batch *b)
{
    for (size_t i = 0; i < ATTEMPT_COLS; i++)
        pg_sql_free(attempt_cols(b, i));
    memset(b, 0, sizeof *b);
}

static void add_opt_int(struct pg_sql *q, bool first, int64_t v)
{
    if (v)
        add_int(q, first, v);
    else
        pg_sql_add(q, first ? "{NULL" : ",NULL");
}

static void attempt_add(struct attempt_batch *b, int64_t job, int number, int64_t engine,
                        int64_t started, int64_t finished, const aspen_store_attempt_stats *st,
                        const char *outcome, const char *error, bool recovered)
{
    static const aspen_store_attempt_stats zero;
    if (!st)
        st = &zero;
    bool first = b->n == 0;
    add_int(&b->job, first, job);
    add_int(&b->number, first, number);
    add_opt_int(&b->engine, first, engine);
    add_opt_int(&b->started, first, started);
    add_opt_int(&b->finished, first, finished);
    add_int(&b->wall, first, st->wall_us);
    add_int(&b->exits, first, (int64_t)st->exits);
    add_int(&b->calls, first, (int64_t)st->host_calls);
    add_int(&b->pages, first, (int64_t)st->pages_dirtied);
    add_int(&b->in, first, (int64_t)st->bytes_in);
    add_int(&b->out, first, (int64_t)st->bytes_out);
    add_text(&b->outcome, first, outcome);
    if (error)
        add_text(&b->error, first, error);
    else
        pg_sql_add(&b->error, first ? "{NULL" : ",NULL");
    pg_sql_add(&b->recovered, first ? (recovered ? "{t" : "{f") : (recovered ? ",t" : ",f"));
    b->n++;
}

/* The attempt rows' INSERT as a step of wb (b's arrays move into it). */
static int attempt_flush(struct attempt_batch *b, struct write_batch *wb, aspen_store_error *err)
{
    if (!b->n)
        return 0;
    for (size_t i = 0; i < ATTEMPT_COLS; i++) {
        pg_sql_add(attempt_cols(b, i), "}");
        if (attempt_cols(b, i)->oom) {
            attempt_batch_free(b);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing attempts");
        }
    }
    struct pg_params *p = wb_step(wb, "pgj_attempts_insert",
                   "INSERT INTO attempts (job, number, engine, started_at, finished_at, wall_us,"
                   " exits, host_calls, pages_dirtied, bytes_in, bytes_out, outcome, error,"
                   " recovered) SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[],"
                   " $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
                   " $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[],"
                   " $14::boolean[])",
                   "writing attempts");
    for (size_t i = 0; i < ATTEMPT_COLS; i++)
        pg_p_text(p, wb_own(wb, attempt_cols(b, i)));
    attempt_batch_free(b);
    return 0;
}

/* ---- the group commit: a batch of statements, not a statement per job ----------------------- */

/* One job of a commit: its row as this commit has made it so far, the state it had when locked
 * (the batched write's WHERE), its reservation as read, and what this commit did to it. */
struct commit_row {
    struct store_job_row row;
    aspen_store_state orig;
    int64_t claim_engine; /* who held its reservation when read; 0 = nobody */
    bool dirty, taken;    /* written by this commit / its reservation taken by this commit */
    char *error;          /* this commit's copy of the error it writes (row.error points here) */
};

struct row_set {
    struct commit_row *rows;
    size_t n;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static struct commit_row *row_find(struct row_set *rs, int64_t id)
{
    size_t lo = 0, hi = rs->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->rows[mid].row.id == id)
            return &rs->rows[mid];
        if (rs->rows[mid].row.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void row_set_free(struct row_set *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->rows[i].error);
    free(rs->rows);
    rs->rows = NULL;
    rs->n = 0;
}

/* "{1,2,3}" of the distinct ids, sorted (into *arr; oom is reported by the caller). */
static void id_array(const int64_t *ids, size_t n, struct pg_sql *arr)
{
    int64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        arr->oom = true;
        return;
    }
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            add_int(arr, k++ == 0, sorted[i]);
    pg_sql_add(arr, k ? "}" : "{}");
    free(sorted);
}

/* The two statements that lock the jobs FOR UPDATE in id order and read their reservations (the
 * second runs after the first, so it reads them with the rows locked), for a pipeline: p's one
 * parameter is arr, the sorted distinct ids (id_array). */
static void rows_lock_steps(struct pg_step steps[2], struct pg_params *p, const struct pg_sql *arr)
{
    *p = (struct pg_params){0};
    pg_p_text(p, arr->text);
    steps[0] = (struct pg_step){.name = "pgj_rows_lock",
                                .sql = "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id ="
                                       " ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                                .p = p, .what = "reading jobs to commit"};
    steps[1] = (struct pg_step){.name = "pgj_rows_claims",
                                .sql = "SELECT job, engine FROM claims WHERE job = ANY($1::bigint[])",
                                .p = p, .what = "reading reservations of jobs to commit"};
}

/* The jobs of a commit from rows_lock_steps' two results (both cleared): a job missing from the
 * database has no entry (its items are refused with ENOTFOUND). */
static int rows_read(PGresult *r, PGresult *claims, size_t n, struct row_set *rs,
                     aspen_store_error *err)
{
    rs->rows = NULL;
    rs->n = 0;
    size_t rows = (size_t)PQntuples(r);
    rs->rows = calloc(rows ? rows : 1, sizeof *rs->rows);
    if (!rs->rows) {
        PQclear(r);
        PQclear(claims);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory committing %zu jobs", n);
    }
    for (size_t i = 0; i < rows; i++) {
        row_from_result(r, (int)i, &rs->rows[i].row);
        rs->rows[i].orig = rs->rows[i].row.state;
    }
    rs->n = rows;
    PQclear(r);
    for (int i = 0; i < PQntuples(claims); i++) {
        struct commit_row *cr = row_find(rs, pg_get_int(claims, i, 0));
        if (cr)
            cr->claim_engine = pg_get_int(claims, i, 1);
    }
    PQclear(claims);
    return 0;
}

/* rows_lock_steps and rows_read in a round trip of their own: for a commit whose rows read with
 * its BEGIN are stale (its engine was recovered first). */
static int rows_lock(struct pg_store *s, const struct pg_sql *arr, size_t n, struct row_set *rs,
                     aspen_store_error *err)
{
    struct pg_params p;
    struct pg_step steps[2];
    rows_lock_steps(steps, &p, arr);
    int code = pg_pipeline(s, steps, 2, false, err);
    return code ? code : rows_read(steps[0].r, steps[1].r, n, rs, err);
}

/* Takes engine_id's reservation of a queued job (deleted from claims at the end of the commit),
 * the only way a job starts; ELEASE when another engine holds it, ESTATE when nobody does. */
static int take_reservation(struct commit_row *cr, int64_t engine_id, aspen_store_error *err)
{
    if (cr->claim_engine == engine_id && !cr->taken) {
        cr->taken = true;
        return 0;
    }
    if (cr->claim_engine && cr->claim_engine != engine_id)
        return store_err(err, ASPEN_STORE_ELEASE,
                         "job %lld is reserved by engine %lld, not engine %lld: this engine's "
                         "lease lapsed and its reservations were given back",
                         (long long)cr->row.id, (long long)cr->claim_engine, (long long)engine_id);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is queued, not running, and not reserved by engine %lld (never "
                     "claimed, or its reservation was given back): it was not started",
                     (long long)cr->row.id, (long long)engine_id);
}

/* The transition check of pg_job_write, for a change staged in memory and written with the rest
 * of the commit by write_rows. */
static int stage(struct commit_row *cr, const struct store_job_row *after, aspen_store_error *err)
{
    const struct store_job_row *before = &cr->row;
    int code = 0;
    if (after->via_running) {
        code = aspen_store_check_transition(before->id, before->state, ASPEN_STORE_RUNNING, err);
        if (!code)
            code = aspen_store_check_transition(before->id, ASPEN_STORE_RUNNING, after->state, err);
    } else if (before->state != after->state || !after->field_update) {
        code = aspen_store_check_transition(before->id, before->state, after->state, err);
    }
    if (code)
        return code;
    char *error = NULL;
    if (after->set_error && after->error) {
        error = store_strdup(after->error);
        if (!error)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory committing job %lld",
                             (long long)before->id);
    }
    bool set_error = before->set_error || after->set_error;
    bool set_result = before->set_result || after->set_result;
    const void *result = after->set_result ? after->result : before->result;
    size_t result_size = after->set_result ? after->result_size : before->result_size;
    if (after->set_error) {
        free(cr->error);
        cr->error = error;
    }
    cr->row = *after;
    cr->row.set_error = set_error;
    cr->row.error = cr->error;
    cr->row.set_result = set_result;
    cr->row.result = result;
    cr->row.result_size = result_size;
    cr->row.via_running = cr->row.field_update = false;
    cr->dirty = true;
    return 0;
}

static void add_bool(struct pg_sql *q, bool first, bool v)
{
    pg_sql_add(q, first ? (v ? "{t" : "{f") : (v ? ",t" : ",f"));
}

static void add_bytes(struct pg_sql *q, bool first, const void *v, size_t n)
{
    if (!v) {
        pg_sql_add(q, first ? "{NULL" : ",NULL");
        return;
    }
    pg_sql_add(q, first ? "{\"\\\\x" : ",\"\\\\x"); /* "\\x…": an escaped backslash in the array */
    static const char hex[] = "0123456789abcdef";
    char chunk[4097];
    size_t k = 0;
    const unsigned char *b = v;
    for (size_t i = 0; i < n; i++) {
        chunk[k++] = hex[b[i] >> 4];
        chunk[k++] = hex[b[i] & 15];
        if (k == sizeof chunk - 1) {
            chunk[k] = '\0';
            pg_sql_add(q, chunk);
            k = 0;
        }
    }
    chunk[k] = '\0';
    pg_sql_add(q, chunk);
    pg_sql_add(q, "\"");
}

/* Writes every staged row in one UPDATE … FROM unnest(…) WHERE id AND state = the state it was
 * locked in, and notes the counts. The rows are locked FOR UPDATE, so each matches. */
static int write_rows(struct pg_store *s, struct row_set *rs, struct write_batch *wb,
                      aspen_store_error *err)
{
    enum { COLS = 16 };
    struct pg_sql c[COLS] = {{0}};
    size_t k = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const struct commit_row *cr = &rs->rows[i];
        if (!cr->dirty)
            continue;
        const struct store_job_row *r = &cr->row;
        bool f = k++ == 0;
        add_int(&c[0], f, r->id);
        add_text(&c[1], f, aspen_store_state_name(r->state));
        add_int(&c[2], f, r->run_at);
        add_int(&c[3], f, r->attempts);
        add_int(&c[4], f, r->max_attempts);
        add_opt_int(&c[5], f, r->started_at);
        add_opt_int(&c[6], f, r->finished_at);
        add_opt_int(&c[7], f, r->owner);
        add_bool(&c[8], f, r->cancel_requested);
        add_int(&c[9], f, r->log_count);
        add_int(&c[10], f, r->log_dropped);
        add_bool(&c[11], f, r->set_error);
        if (r->set_error && r->error)
            add_text(&c[12], f, r->error);
        else
            pg_sql_add(&c[12], f ? "{NULL" : ",NULL");
        add_bool(&c[13], f, r->set_result);
        add_bytes(&c[14], f, r->set_result ? r->result : NULL, r->result_size);
        add_text(&c[15], f, aspen_store_state_name(cr->orig));
    }
    if (!k)
        return 0;
    bool oom = false;
    for (int i = 0; i < COLS; i++) {
        pg_sql_add(&c[i], "}");
        oom = oom || c[i].oom;
    }
    if (oom) {
        for (int i = 0; i < COLS; i++)
            pg_sql_free(&c[i]);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing %zu jobs", k);
    }
    wb->rows_step = (int)wb->n;
    wb->rows = k;
    struct pg_params *p = wb_step(wb, "pgj_write_many",
                         "UPDATE jobs SET state = u.state, run_at = u.run_at, attempts = u.attempts,"
                         " max_attempts = u.max_attempts, started_at = u.started_at,"
                         " finished_at = u.finished_at, owner = u.owner,"
                         " cancel_requested = u.cancel_requested, log_count = u.log_count,"
                         " log_dropped = u.log_dropped,"
                         " error = CASE WHEN u.set_error THEN u.error ELSE jobs.error END,"
                         " result = CASE WHEN u.set_result THEN u.result ELSE jobs.result END"
                         " FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::integer[],"
                         " $5::integer[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[],"
                         " $10::integer[], $11::bigint[], $12::boolean[], $13::text[],"
                         " $14::boolean[], $15::bytea[], $16::text[]) AS u (id, state, run_at,"
                         " attempts, max_attempts, started_at, finished_at, owner,"
                         " cancel_requested, log_count, log_dropped, set_error, error, set_result,"
                         " result, before) WHERE jobs.id = u.id AND jobs.state = u.before",
                         "writing finished jobs");
    for (int i = 0; i < COLS; i++)
        pg_p_text(p, wb_own(wb, &c[i]));
    /* The rows are locked: each matches (write_batch_check says so after the round trip). */
    for (size_t i = 0; i < rs->n; i++) {
        const struct commit_row *cr = &rs->rows[i];
        if (!cr->dirty)
            continue;
        if (cr->orig != cr->row.state)
            pg_counts_note(s, cr->orig, cr->row.state, 1);
        else
            s->tx_wrote = true;
    }
    return 0;
}

/* Deletes the reservations this commit took (one statement). */
static int delete_taken(struct pg_store *s, struct row_set *rs, int64_t engine_id,
                        struct write_batch *wb, aspen_store_error *err)
{
    struct pg_sql arr = {0}, at = {0};
    size_t k = 0;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rows[i].taken) {
            add_int(&at, k == 0, rs->rows[i].row.started_at);
            add_int(&arr, k++ == 0, rs->rows[i].row.id);
        }
    if (!k)
        return 0;
    pg_sql_add(&arr, "}");
    pg_sql_add(&at, "}");
    if (arr.oom || at.oom) {
        pg_sql_free(&arr);
        pg_sql_free(&at);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory committing %zu starts", k);
    }
    /* Started jobs of rate-limited queues keep their share of the rate for one period. */
    int shares = pg_queue_started(s, arr.text, at.text, err);
    pg_sql_free(&at);
    if (shares) {
        pg_sql_free(&arr);
        return shares;
    }
    wb->take_step = (int)wb->n;
    wb->taken = k;
    struct pg_params *p = wb_step(wb, "pgj_claims_take_many",
                                  "DELETE FROM claims WHERE job = ANY($1::bigint[]) AND engine = $2",
                                  "taking reservations of started jobs");
    pg_p_text(p, wb_own(wb, &arr));
    pg_p_int(p, engine_id);
    return 0;
}

/* After the batch's round trip: every reservation taken and every row written, or EBUSY (the
 * caller rolls back: nothing of the commit is written). */
static int write_batch_check(const struct write_batch *wb, int64_t engine_id,
                             aspen_store_error *err)
{
    if (wb->take_step >= 0) {
        size_t n = (size_t)affected(wb->steps[wb->take_step].r);
        if (n != wb->taken)
            return store_err(err, ASPEN_STORE_EBUSY,
                             "%zu reservations of engine %lld went while its jobs were being "
                             "committed: nothing of this commit was written; try again",
                             wb->taken - n, (long long)engine_id);
    }
    if (wb->rows_step >= 0) {
        size_t n = (size_t)affected(wb->steps[wb->rows_step].r);
        if (n != wb->rows)
            return store_err(err, ASPEN_STORE_EBUSY,
                             "%zu of %zu jobs changed state while being committed: nothing of "
                             "this commit was written; try again",
                             wb->rows - n, wb->rows);
    }
    return 0;
}

static int not_found(struct pg_store *s, int64_t id, aspen_store_error *err)
{
    return store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld in %s: check the id (aspen jobs%s)",
                     (long long)id, s->shown, store_cmd(&s->base));
}

/* One start mark: queued + reserved by engine_id → running. */
static int start_one(struct pg_store *s, struct row_set *rs, int64_t engine_id,
                     const aspen_store_start *m, int64_t now, int64_t shift,
                     aspen_store_error *err)
{
    struct commit_row *cr = row_find(rs, m->job_id);
    if (!cr)
        return not_found(s, m->job_id, err);
    if (cr->row.state != ASPEN_STORE_QUEUED)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s, not queued: it was not started (cancelled or taken "
                         "meanwhile?)",
                         (long long)m->job_id, aspen_store_state_name(cr->row.state));
    struct store_job_row after;
    store_started_row(&cr->row, engine_id, m->started_at_ms ? shifted(m->started_at_ms, shift) : now,
                &after);
    int code = aspen_store_check_transition(m->job_id, cr->row.state, after.state, err);
    if (!code)
        code = take_reservation(cr, engine_id, err);
    return code ? code : stage(cr, &after, err);
}

/* the engine's own retry of a unique job (below, beside the operator's retry) */
static int pg_unique_lock_retries(struct pg_store *s, const aspen_store_completion *c, size_t n,
                                  aspen_store_error *err);
static int pg_unique_retry_held(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms,
                                bool *found, aspen_store_retry_skip *skip, unsigned *states,
                                aspen_store_error *err);

/* One completion (as SQLite's complete_one): 0, a per-item refusal (ESTATE, ENOTFOUND, ELEASE,
 * EINVAL: nothing written for it), or another code that aborts the whole commit. */
static int complete_one(struct pg_store *s, struct row_set *rs, int64_t engine_id,
                        const aspen_store_completion *c, int64_t now_ms, int64_t now,
                        struct attempt_batch *ab, struct log_batch *lb, bool *requeued,
                        aspen_store_state *final_state, aspen_store_error *err)
{
    int64_t shift = now - now_ms;
    if ((unsigned)c->outcome > ASPEN_STORE_OUTCOME_CANCELLED)
        return store_err(err, ASPEN_STORE_EINVAL, "job %lld: unknown outcome %d",
                         (long long)c->job_id, (int)c->outcome);
    struct commit_row *cr = row_find(rs, c->job_id);
    if (!cr)
        return not_found(s, c->job_id, err);
    struct store_job_row *row = &cr->row, running, after;
    if (final_state)
        *final_state = row->state; /* what it stays if refused */
    bool start_too = false;
    if (row->state == ASPEN_STORE_QUEUED) {
        if (cr->claim_engine != engine_id || cr->taken) {
            int code = take_reservation(cr, engine_id, err); /* the refusal's message */
            return code ? code : ASPEN_STORE_ESTATE;
        }
        store_started_row(row, engine_id,
                    c->stats.started_at_ms ? shifted(c->stats.started_at_ms, shift) : now,
                    &running);
        start_too = true;
    } else if (row->state != ASPEN_STORE_RUNNING) {
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s, not running: its result was not recorded (recovered "
                         "after a lost lease, cancelled, or completed twice?)",
                         (long long)c->job_id, aspen_store_state_name(row->state));
    } else if (row->owner != engine_id) {
        return store_err(err, ASPEN_STORE_ELEASE,
                         "job %lld is now held by engine %lld, not engine %lld: this engine's lease "
                         "lapsed and the job was recovered; its result was not recorded",
                         (long long)c->job_id, (long long)row->owner, (long long)engine_id);
    } else {
        running = *row;
    }
    char errbuf[96], held_err[640];
    aspen_store_completion cc = *c;
    cc.error = store_default_error(c, running.attempts, errbuf, sizeof errbuf);
    store_decide_completion(&running, &cc, now, shifted(c->retry_at_ms, shift),
                            c->retry_at_ms <= now_ms, &after);
    after.via_running = start_too;
    int code;
    if (after.state == ASPEN_STORE_QUEUED || after.state == ASPEN_STORE_SCHEDULED) {
        /* the engine's own retry: not while another job holds the key (as SQLite's) */
        bool held = false;
        aspen_store_retry_skip skip;
        unsigned counted = 0;
        if ((code = pg_unique_retry_held(s, c->job_id, now, now_ms, &held, &skip, &counted,
                                         err)) != 0)
            return code;
        /* a holder this commit finishes already (its row not yet written) counts as it ends */
        struct commit_row *hr = held ? row_find(rs, skip.holder.id) : NULL;
        if (hr && hr->dirty && !(counted & (1u << hr->row.state)))
            held = false;
        if (held) {
            store_unique_not_retried(&running, &after, now, cc.error, &skip, held_err,
                                     sizeof held_err);
            cc.error = after.error;
        }
    }
    code = aspen_store_check_transition(c->job_id, running.state, after.state, err);
    if (code)
        return code;
    if (start_too && (code = take_reservation(cr, engine_id, err)) != 0)
        return code;
    attempt_add(ab, c->job_id, running.attempts, engine_id,
                c->stats.started_at_ms ? shifted(c->stats.started_at_ms, shift) : running.started_at,
                c->stats.finished_at_ms ? shifted(c->stats.finished_at_ms, shift) : now, &c->stats,
                outcome_names[c->outcome], cc.error, false);
    logs_gather(s, lb, &after, running.attempts, c->logs, c->n_logs, shift);
    code = stage(cr, &after, err);
    if (code)
        return code;
    if (after.state == ASPEN_STORE_QUEUED)
        *requeued = true;
    if (final_state)
        *final_state = after.state;
    return 0;
}

static bool item_refusal(int code)
{
    return code == ASPEN_STORE_ESTATE || code == ASPEN_STORE_ENOTFOUND ||
           code == ASPEN_STORE_ELEASE || code == ASPEN_STORE_EINVAL;
}

/* pg_lease.c: recovers one engine whose lease expired, inside the caller's transaction. */
int pg_recover_engine(struct pg_store *s, int64_t engine_id, int64_t now,
                      aspen_store_recovery *report, aspen_store_error *err);

int pg_commit(aspen_store *base, int64_t engine_id, const aspen_store_start *starts,
              size_t n_starts, int *start_status, const aspen_store_completion *c, size_t n,
              int64_t now_ms, int *status, aspen_store_state *final_states, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct row_set rs = {0};
    struct attempt_batch ab = {0};
    struct log_batch lb = {0};
    int64_t *ids = NULL;
    size_t refused = 0;
    bool requeued = false;
    aspen_store_error item_err = {0};
    if (n_starts + n == 0) {
        if (err)
            err->code = 0, err->msg[0] = '\0';
        return 0;
    }
    ids = malloc((n_starts + n) * sizeof *ids);
    if (!ids)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory committing %zu jobs", n);
    for (size_t i = 0; i < n_starts; i++)
        ids[i] = starts[i].job_id;
    for (size_t i = 0; i < n; i++)
        ids[n_starts + i] = c[i].job_id;

    struct write_batch wb = {.take_step = -1, .rows_step = -1};
    struct pg_sql idarr = {0};
    id_array(ids, n_starts + n, &idarr);
    if (idarr.oom) {
        pg_sql_free(&idarr);
        free(ids);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory committing %zu jobs", n);
    }
    /* BEGIN, the lease check and the jobs locked with their reservations: one round trip. The
     * rows are locked after the engine row (FOR KEY SHARE) as before, so the lock order is
     * unchanged; they are read again only when the lease had expired and this commit recovers
     * its engine first (rare), since the recovery changes them. */
    struct pg_params lp, rp;
    struct pg_step first[3];
    lease_step(&first[0], &lp, engine_id, now_ms, false);
    rows_lock_steps(&first[1], &rp, &idarr);
    int code = pg_tx_begin_with(s, first, 3, err);
    if (code) {
        pg_tx_rollback(s);
        pg_sql_free(&idarr);
        free(ids);
        return code;
    }
    int64_t now = 0;
    bool expired = false;
    int lease = lease_result(s, first[0].r, engine_id, &now, &expired, NULL, "completing jobs",
                             &item_err);
    if (lease && lease != ASPEN_STORE_ELEASE) {
        PQclear(first[1].r);
        PQclear(first[2].r);
        code = lease;
        if (err)
            *err = item_err;
        goto rollback;
    }
    bool reread = lease && expired;
    if (reread) {
        PQclear(first[1].r);
        PQclear(first[2].r);
    } else if ((code = rows_read(first[1].r, first[2].r, n_starts + n, &rs, err)) != 0) {
        goto rollback;
    }
    if (lease && expired) {
        /* Nobody recovered it yet: do it now, so its jobs go back to the queue with the lost
         * attempt recorded instead of waiting, owned by a lease that will never be renewed. */
        aspen_store_recovery rep = {0};
        aspen_store_error rec_err = {0};
        code = pg_recover_engine(s, engine_id, now, &rep, &rec_err);
        if (code) {
            if (err)
                *err = rec_err;
            goto rollback;
        }
        if (rep.engines_removed) {
            requeued = rep.requeued || rep.unreserved;
            store_err(&item_err, ASPEN_STORE_ELEASE,
                      "engine %lld's lease had expired by the database's clock: its %lld running "
                      "jobs were recovered (attempts recorded as lost) and its results are "
                      "refused; register again",
                      (long long)engine_id,
                      (long long)(rep.requeued + rep.failed + rep.cancelled));
        } else {
            /* Renewed while we waited for its row (or gone): ask again. */
            lease = lease_now(s, engine_id, now_ms, &now, &expired, NULL, "completing jobs", &item_err);
            if (lease && (lease != ASPEN_STORE_ELEASE || expired)) {
                code = lease == ASPEN_STORE_ELEASE ? ASPEN_STORE_EBUSY : lease;
                if (err)
                    *err = item_err, err->code = code;
                goto rollback;
            }
        }
    }
    if (reread && (code = rows_lock(s, &idarr, n_starts + n, &rs, err)) != 0)
        goto rollback;
    for (size_t i = 0; i < n_starts; i++) {
        aspen_store_error e1 = {0};
        int st = lease ? ASPEN_STORE_ELEASE
                       : start_one(s, &rs, engine_id, &starts[i], now, now - now_ms, &e1);
        if (lease)
            e1 = item_err;
        if (start_status)
            start_status[i] = st;
        if (item_refusal(st)) {
            if (err && ++refused == 1)
                *err = e1; /* the first refusal, for the log; the call still succeeds */
            continue;
        }
        if (st) {
            code = st;
            if (err)
                *err = e1;
            goto rollback;
        }
    }
    if (!lease && (code = pg_unique_lock_retries(s, c, n, err)) != 0)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        aspen_store_error e1 = {0};
        aspen_store_state fs = ASPEN_STORE_RUNNING;
        int st;
        if (lease) {
            struct commit_row *cr = row_find(&rs, c[i].job_id);
            fs = cr ? cr->row.state : ASPEN_STORE_RUNNING;
            st = ASPEN_STORE_ELEASE;
            e1 = item_err;
        } else {
            st = complete_one(s, &rs, engine_id, &c[i], now_ms, now, &ab, &lb, &requeued, &fs,
                              &e1);
        }
        if (status)
            status[i] = st;
        if (final_states)
            final_states[i] = fs;
        if (item_refusal(st)) {
            if (err && ++refused == 1)
                *err = e1;
            continue;
        }
        if (!st && c[i].replay)
            st = pg_commit_replay(s, &c[i], &e1);
        if (st) {
            code = st;
            if (err)
                *err = e1;
            goto rollback;
        }
    }
    code = delete_taken(s, &rs, engine_id, &wb, err);
    if (!code)
        code = write_rows(s, &rs, &wb, err);
    if (!code)
        code = attempt_flush(&ab, &wb, err);
    if (!code)
        code = log_batch_step(&lb, &wb, err);
    if (!code && requeued)
        wb_step(&wb, "pgj_notify", "SELECT pg_notify('aspen_jobs', '')",
                "announcing jobs queued again");
    if (!code)
        code = pg_pipeline(s, wb.steps, wb.n, false, err);
    if (!code)
        code = write_batch_check(&wb, engine_id, err);
    write_batch_free(&wb);
    if (code)
        goto rollback;
    row_set_free(&rs);
    pg_sql_free(&idarr);
    free(ids);
    code = pg_tx_commit(s, n ? "committing finished jobs" : "marking jobs started", err);
    if (code)
        return code;
    if (err) {
        err->code = 0; /* the first refusal's message stays for the caller's log */
        if (refused == 0)
            err->msg[0] = '\0';
    }
    return 0;
rollback:
    pg_tx_rollback(s);
    write_batch_free(&wb);
    attempt_batch_free(&ab);
    log_batch_free(&lb);
    row_set_free(&rs);
    pg_sql_free(&idarr);
    free(ids);
    return code;
}

/* ---- release, cancel, rerun, retry, delete, purge ------------------------------------------------ */

static int release_one(struct pg_store *s, int64_t engine_id, int64_t job_id,
                       aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = pg_job_read(s, job_id, true, &before, err);
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
        s->tx_wrote = true;
        return claim_delete(s, job_id, err);
    }
    code = store_decide_release(&before, engine_id, &after, err);
    return code ? code : pg_job_write(s, &before, &after, err);
}

int pg_release(aspen_store *base, int64_t engine_id, int64_t job_id, int64_t now_ms,
               aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    (void)now_ms;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = release_one(s, engine_id, job_id, err);
    if (!code)
        code = pg_notify_work(s, err);
    if (code)
        goto rollback;
    return pg_tx_commit(s, "releasing a job", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

/* Releases every running job of an engine (unregister), inside the caller's transaction. */
int pg_release_all(struct pg_store *s, int64_t engine_id, int64_t *released,
                   aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    PGresult *r = pg_exec(s, "pgj_running_of_engine",
                          "SELECT id FROM jobs WHERE state = 'running' AND owner = $1 ORDER BY id",
                          &p, "listing an engine's jobs", err);
    if (!r)
        return failed(err);
    int rows = PQntuples(r), code = 0;
    int64_t done = 0;
    for (int i = 0; i < rows && !code; i++) {
        code = release_one(s, engine_id, pg_get_int(r, i, 0), err);
        /* A job that moved since the list was read (cancelled, say) is not ours to release. */
        if (code == ASPEN_STORE_ESTATE || code == ASPEN_STORE_ELEASE)
            code = 0;
        else if (!code)
            done++;
    }
    PQclear(r);
    if (!code && released)
        *released = done;
    return code;
}

static int cancel_one(struct pg_store *s, int64_t id, int64_t now,
                      aspen_store_cancel_result *result, aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = pg_job_read(s, id, true, &before, err);
    if (code)
        return code;
    aspen_store_cancel_result r;
    bool final = store_decide_cancel(&before, now, &after, &r);
    code = pg_job_write(s, &before, &after, err);
    /* A job reserved by an engine but not started is still queued: the cancel wins, and the
     * engine's start or completion of it is refused. */
    if (!code && final && before.state == ASPEN_STORE_QUEUED)
        code = claim_delete(s, id, err);
    if (!code && result)
        *result = r;
    return code;
}

int pg_cancel_ids(struct pg_store *s, const int64_t *ids, size_t n, int64_t now_ms, int64_t *done,
                  int64_t *asked, aspen_store_error *err)
{
    *done = *asked = 0;
    if (!n)
        return 0;
    /* the ids as one bigint[] parameter ("{1,2,3}") */
    struct pg_sql arr = {0};
    for (size_t i = 0; i < n; i++)
        add_int(&arr, i == 0, ids[i]);
    pg_sql_add(&arr, "}");
    if (arr.oom) {
        pg_sql_free(&arr);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory cancelling %zu jobs", n);
    }
    /* what store_decide_cancel decides per job, per state: a waiting job is cancelled now with
     * its error said, a running one keeps running with the flag its engine polls. The rows are
     * locked: the states read here are the ones written from. */
    int code = 0;
    int64_t moved[ASPEN_STORE_STATE_COUNT] = {0};
    struct pg_params p = {0};
    pg_p_text(&p, arr.text);
    pg_p_now(&p, now_ms);
    pg_p_text(&p, "cancelled before it ran");
    PGresult *r = pg_exec(s, "pgj_cancel_ids",
                          "WITH c AS (SELECT id, state FROM jobs WHERE id = ANY($1::bigint[])"
                          " AND state IN ('queued', 'scheduled')),"
                          " u AS (UPDATE jobs j SET state = 'cancelled', finished_at = " PG_NOW(2)
                          ", error = $3 FROM c WHERE j.id = c.id AND j.state = c.state"
                          " RETURNING c.state AS before),"
                          " d AS (DELETE FROM claims WHERE job IN (SELECT id FROM c))"
                          " SELECT before, count(*) FROM u GROUP BY before",
                          &p, "cancelling the matching jobs", err);
    if (!r) {
        code = failed(err);
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        aspen_store_state st = ASPEN_STORE_QUEUED;
        if (strcmp(PQgetvalue(r, i, 0), "scheduled") == 0)
            st = ASPEN_STORE_SCHEDULED;
        moved[st] += pg_get_int(r, i, 1);
    }
    PQclear(r);
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (moved[st]) {
            pg_counts_note(s, (aspen_store_state)st, ASPEN_STORE_CANCELLED, moved[st]);
            *done += moved[st];
        }
    struct pg_params q = {0};
    pg_p_text(&q, arr.text);
    code = run(s, "pgj_cancel_ids_running",
               "UPDATE jobs SET cancel_requested = true WHERE id = ANY($1::bigint[])"
               " AND state = 'running'",
               &q, "asking the matching running jobs to stop", asked, err);
    if (!code && *asked)
        s->tx_wrote = true; /* a write all the same: others' data version moves */
out:
    pg_sql_free(&arr);
    return code;
}

int pg_cancel_one(struct pg_store *s, int64_t id, int64_t now_ms,
                  aspen_store_cancel_result *result, aspen_store_error *err)
{
    int64_t now = 0;
    int code = server_now(s, now_ms, &now, err);
    return code ? code : cancel_one(s, id, now, result, err);
}

int pg_cancel(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
              aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = pg_cancel_one(s, id, now_ms, result, err);
    if (code)
        goto rollback;
    return pg_tx_commit(s, "cancelling a job", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

/* A rerun keeps the original's uniqueness rule: under the key's lock, as a submit, a job of the
 * key that the rule counts makes it a duplicate (nothing written) instead of a second live job.
 * Its only locks are the key's and then what a submit takes, in a submit's order. */
int pg_rerun(aspen_store *base, int64_t id, int64_t now_ms, unsigned flags,
             aspen_store_submitted *out, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = aspen_store_check_transition(0, ASPEN_STORE_STATE_NEW, ASPEN_STORE_QUEUED, err);
    if (code)
        return code;
    code = pg_tx_begin(s, err);
    if (code)
        return code;
    int64_t now = 0;
    aspen_store_job_rule rule = {0};
    aspen_store_unique u = {0};
    code = server_now(s, now_ms, &now, err);
    if (!code && !(flags & ASPEN_STORE_RERUN_NO_UNIQUE))
        code = unique_rule_get(s, id, &rule, err); /* a job's key never changes: no lock needed */
    if (code)
        goto rollback;
    if (rule.key) {
        u = store_unique_of_row(rule.key, rule.period_ms, rule.states);
        const char *keys[1] = {rule.key};
        bool dup = false;
        if ((code = unique_lock(s, keys, 1, err)) != 0 ||
            (code = unique_find(s, rule.key, &u, now, 0, &dup, out, err)) != 0)
            goto rollback;
        if (dup) {
            out->created_at_ms -= now - now_ms; /* back on the caller's clock */
            aspen_store_job_rule_clear(&rule);
            return pg_tx_commit(s, "rerunning a job", err); /* nothing was written */
        }
    }
    struct pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_now(&p, now_ms);
    /* max attempts as submitted: a retry's raise is the failed job's, not the new one's */
    PGresult *r = pg_exec(s, "pgj_rerun",
                          "INSERT INTO jobs (type, binary_sha256, binary_name, payload, state,"
                          " priority, run_at, max_attempts, timeout_ms, memory_bytes, isolation,"
                          " tags, created_at, source_dir, rerun_of, queue)"
                          " SELECT type, binary_sha256, binary_name, payload, 'queued', priority, " PG_NOW(2)
                          ", coalesce(submitted_max_attempts, max_attempts), timeout_ms, memory_bytes,"
                          " isolation, tags, " PG_NOW(2)
                          ", source_dir, id, queue FROM jobs WHERE id = $1 RETURNING id",
                          &p, "rerunning a job", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld to rerun in %s", (long long)id,
                         s->shown);
        goto rollback;
    }
    int64_t rerun_id = pg_get_int(r, 0, 0);
    *out = (aspen_store_submitted){
        .id = rerun_id, .state = ASPEN_STORE_QUEUED, .created_at_ms = now_ms};
    PQclear(r);
    if (rule.key) {
        p = (struct pg_params){0};
        pg_p_int(&p, rerun_id);
        pg_p_text(&p, rule.key);
        pg_p_int(&p, now);
        pg_p_int(&p, u.period_ms);
        pg_p_int(&p, (int64_t)u.states);
        code = run(s, "pgj_unique_insert_one",
                   "INSERT INTO job_unique (job, key, created_at, period_ms, states)"
                   " VALUES ($1, $2, $3, $4, $5)",
                   &p, "storing a rerun's unique key", NULL, err);
        if (code)
            goto rollback;
    }
    pg_counts_note(s, ASPEN_STORE_STATE_NEW, ASPEN_STORE_QUEUED, 1);
    code = pg_queue_renote(s, rerun_id, now_ms, err);
    if (!code)
        code = pg_notify_work(s, err);
    if (code)
        goto rollback;
    aspen_store_job_rule_clear(&rule);
    return pg_tx_commit(s, "committing a rerun", err);
rollback:
    aspen_store_job_rule_clear(&rule);
    *out = (aspen_store_submitted){0};
    pg_tx_rollback(s);
    return code;
}

int pg_unique_lock_jobs(struct pg_store *s, const int64_t *ids, size_t n, aspen_store_error *err)
{
    if (!n)
        return 0;
    struct pg_sql q = {0};
    for (size_t i = 0; i < n; i++)
        add_int(&q, i == 0, ids[i]);
    pg_sql_add(&q, "}");
    if (q.oom) {
        pg_sql_free(&q);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory locking unique keys");
    }
    struct pg_params p = {0};
    pg_p_text(&p, q.text);
    PGresult *r = pg_exec(s, "pgj_unique_keys_of",
                          "SELECT DISTINCT key FROM job_unique WHERE job = ANY ($1::bigint[])", &p,
                          "reading the jobs' unique keys", err);
    pg_sql_free(&q);
    if (!r)
        return failed(err);
    int k = PQntuples(r), code = 0;
    const char **keys = malloc((k ? (size_t)k : 1) * sizeof *keys);
    if (!keys)
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory locking unique keys");
    for (int i = 0; !code && i < k; i++)
        keys[i] = PQgetvalue(r, i, 0);
    if (!code && k)
        code = unique_lock(s, keys, (size_t)k, err); /* ascending hash, as every batch locks */
    free(keys);
    PQclear(r);
    return code;
}

/* Whether another job holds job id's unique key in a state id's own rule counts (*found, with
 * *skip filled; its created_at on the caller's clock). Under the key's lock, taken after the
 * job's row lock: a submit holds no row lock while it waits for a key, so no cycle. */
static int retry_held_as(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms, bool lock,
                         bool *found, aspen_store_retry_skip *skip, unsigned *states,
                         aspen_store_error *err)
{
    *found = false;
    aspen_store_job_rule rule;
    int code = unique_rule_get(s, id, &rule, err);
    if (code || !rule.key)
        return code;
    aspen_store_unique u = store_unique_of_row(rule.key, rule.period_ms, rule.states);
    if (states)
        *states = store_unique_states(&u);
    aspen_store_submitted holder = {0};
    const char *keys[1] = {rule.key};
    code = lock ? unique_lock(s, keys, 1, err) : 0;
    if (!code)
        code = unique_find(s, rule.key, &u, now, id, found, &holder, err);
    if (!code && *found) {
        holder.created_at_ms -= now - now_ms;
        *skip = (aspen_store_retry_skip){.id = id, .holder = holder};
        snprintf(skip->key, sizeof skip->key, "%s", rule.key);
    }
    aspen_store_job_rule_clear(&rule);
    return code;
}

static int retry_held(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms, bool *found,
                      aspen_store_retry_skip *skip, aspen_store_error *err)
{
    return retry_held_as(s, id, now, now_ms, true, found, skip, NULL, err);
}

int pg_unique_held(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms, bool *found,
                   aspen_store_retry_skip *skip, aspen_store_error *err)
{
    return retry_held(s, id, now, now_ms, found, skip, err);
}

/* The engine's own retry (a commit's failed attempt with attempts left): the keys of every job
 * of the commit that may be retried are locked at once before any is looked up, in ascending
 * hash order as every batch takes them (two commits retrying jobs of two keys never wait for each
 * other crosswise); the commit holds its rows already, and no key holder waits for a running
 * job's row. */
static int pg_unique_lock_retries(struct pg_store *s, const aspen_store_completion *c, size_t n,
                                  aspen_store_error *err)
{
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory locking unique keys");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((c[i].outcome == ASPEN_STORE_OUTCOME_FAILURE ||
             c[i].outcome == ASPEN_STORE_OUTCOME_TIMEOUT) && c[i].retry_at_ms > 0)
            ids[k++] = c[i].job_id;
    int code = pg_unique_lock_jobs(s, ids, k, err);
    free(ids);
    return code;
}

/* Whether another job holds job id's key by its own rule, under the lock pg_unique_lock_retries
 * took (*states: the rule's, for the caller's look at the rows it is about to write). */
static int pg_unique_retry_held(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms,
                                bool *found, aspen_store_retry_skip *skip, unsigned *states,
                                aspen_store_error *err)
{
    return retry_held_as(s, id, now, now_ms, false, found, skip, states, err);
}

int pg_retry_one(struct pg_store *s, int64_t id, int64_t now_ms, aspen_store_retry_skip *held,
                 bool *was_held, aspen_store_error *err)
{
    if (was_held)
        *was_held = false;
    struct store_job_row before, after;
    int64_t now = 0;
    int code = server_now(s, now_ms, &now, err);
    if (!code)
        code = pg_job_read(s, id, true, &before, err);
    if (code)
        return code;
    code = store_decide_retry(&before, now, &after, store_cmd(&s->base), err);
    if (code)
        return code;
    bool found = false;
    aspen_store_retry_skip skip;
    if ((code = retry_held(s, id, now, now_ms, &found, &skip, err)) != 0)
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
        /* the first raise keeps what was submitted, for a rerun (schema version 17) */
        struct pg_params p = {0};
        pg_p_int(&p, id);
        code = run(s, "pgj_keep_max_attempts",
                   "UPDATE jobs SET submitted_max_attempts = max_attempts"
                   " WHERE id = $1 AND submitted_max_attempts IS NULL",
                   &p, "keeping a job's submitted max attempts", NULL, err);
        if (code)
            return code;
    }
    code = pg_job_write(s, &before, &after, err);
    if (!code)
        code = pg_queue_renote(s, id, now_ms, err);
    return code ? code : pg_notify_work(s, err);
}

int pg_retry(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = pg_retry_one(s, id, now_ms, NULL, NULL, err);
    if (code)
        goto rollback;
    return pg_tx_commit(s, "retrying a job", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

int pg_delete(aspen_store *base, int64_t id, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row row;
    code = pg_job_read(s, id, true, &row, err);
    if (code)
        goto rollback;
    if (!aspen_store_state_is_final(row.state)) {
        code = store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s: only finished jobs can be deleted; cancel it first",
                         (long long)id, aspen_store_state_name(row.state));
        goto rollback;
    }
    struct pg_params p = {0};
    pg_p_int(&p, id);
    code = run(s, "pgj_delete_logs", "DELETE FROM logs WHERE job = $1", &p, "deleting a job", NULL,
               err);
    if (!code)
        code = run(s, "pgj_delete_attempts", "DELETE FROM attempts WHERE job = $1", &p,
                   "deleting a job", NULL, err);
    if (!code)
        code = run(s, "pgj_delete_unique", "DELETE FROM job_unique WHERE job = $1", &p,
                   "deleting a job", NULL, err);
    if (!code)
        code = run(s, "pgj_delete_job", "DELETE FROM jobs WHERE id = $1", &p, "deleting a job",
                   NULL, err);
    if (code)
        goto rollback;
    pg_counts_note(s, row.state, ASPEN_STORE_STATE_NEW, 1);
    return pg_tx_commit(s, "deleting a job", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

int pg_purge(aspen_store *base, int64_t finished_before_ms, int64_t *deleted,
             aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    if (deleted)
        *deleted = 0;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    /* The cut-off is a caller's time: on the server's timeline like every other. */
    int64_t now = 0, now_ms = aspen_store_now_ms();
    code = server_now(s, now_ms, &now, err);
    if (code)
        goto rollback;
    struct pg_params p = {0};
    pg_p_int(&p, finished_before_ms + (now - now_ms));
    /* One statement: the jobs go, their logs and attempts with them, and what went is counted
     * per state for job_counts. */
    PGresult *r = pg_exec(s, "pgj_purge",
                          "WITH gone AS (DELETE FROM jobs WHERE state IN ('succeeded', 'failed',"
                          " 'cancelled') AND finished_at < $1 RETURNING id, state),"
                          " l AS (DELETE FROM logs WHERE job IN (SELECT id FROM gone)),"
                          " a AS (DELETE FROM attempts WHERE job IN (SELECT id FROM gone)),"
                          " u AS (DELETE FROM job_unique WHERE job IN (SELECT id FROM gone))"
                          " SELECT state, count(*) FROM gone GROUP BY state",
                          &p, "purging old jobs", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    int64_t total = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, i, 0));
        int64_t k = pg_get_int(r, i, 1);
        if (state >= 0)
            pg_counts_note(s, (aspen_store_state)state, ASPEN_STORE_STATE_NEW, k);
        total += k;
    }
    PQclear(r);
    if (total)
        s->tx_wrote = true; /* the deletes hide in a CTE under a SELECT */
    code = pg_tx_commit(s, "purging old jobs", err);
    if (!code && deleted)
        *deleted = total;
    return code;
rollback:
    pg_tx_rollback(s);
    return code;
}
