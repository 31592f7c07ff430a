/* pg_queues.c — named queues on the PostgreSQL backend: the version-6 migration, queues made on
 * first use by a submit, the queue-aware claim, the rate shares written when jobs start, the
 * settings and the listing. The rule deciding how many jobs a queue may have reserved now is
 * store/queues.c's, as on SQLite.
 *
 * Many hosts claim at once here, READ COMMITTED, with FOR UPDATE SKIP LOCKED heads, so a limit
 * needs more than a count: two hosts could each count 1 running of a limit-2 queue and each
 * reserve one more. A claim therefore locks the rows of the limited (or rate-limited) queues it
 * will claim from (`FOR UPDATE`, in name order so claimers never deadlock) before it counts, and
 * holds them until it commits. Every increase of a queue's running + reserved jobs is a claim,
 * and claims of that queue now run one after the other; the count is a NEW statement after the
 * lock is granted, so its snapshot includes the reservations of the claimer that held the lock
 * before. A start turns a reservation into a running job (and a rate share) in one commit, and the
 * running, reserved and recent-start counts are read in ONE statement (one snapshot), so a start
 * committing meanwhile is seen whole or not at all, never as neither. Queues without settings
 * are not locked: their claims go in parallel as before. */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

static int exec_done(struct pg_store *s, const char *name, const char *sql,
                     const struct pg_params *p, const char *what, aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r)
        return failed(err);
    PQclear(r);
    return 0;
}

int pg_migrate_queues(struct pg_store *s, aspen_store_error *err)
{
    for (size_t i = 0; i < store_queues_v8_nsql; i++) {
        PGresult *r = pg_exec_script(s, store_queues_v8_sql[i]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int code = pg_err(s, err, r, "adding named queues (version 8)");
            PQclear(r);
            return code;
        }
        PQclear(r);
    }
    return 0;
}

int pg_queues_submitted(struct pg_store *s, const char *ids, const char *names, int64_t now,
                        aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_text(&p, names);
    pg_p_int(&p, now);
    int code = exec_done(s, "pgq_note",
                         "INSERT INTO queues (name, created_at) SELECT DISTINCT q, $2::bigint"
                         " FROM unnest($1::text[]) AS q ON CONFLICT (name) DO NOTHING",
                         &p, "recording jobs' queues", err);
    p = (struct pg_params){0};
    pg_p_text(&p, ids);
    pg_p_text(&p, names);
    if (!code)
        code = exec_done(s, "pgq_jobs_queue",
                         "UPDATE jobs SET queue = u.q FROM unnest($1::bigint[], $2::text[])"
                         " AS u (id, q) WHERE jobs.id = u.id",
                         &p, "putting jobs in their queues", err);
    return code;
}

int pg_queue_started(struct pg_store *s, const char *ids, const char *ats, aspen_store_error *err)
{
    if (!s->rate_seen)
        return 0;
    struct pg_params p = {0};
    pg_p_text(&p, ids);
    pg_p_text(&p, ats);
    return exec_done(s, "pgq_started",
                     "INSERT INTO queue_starts (queue, at) SELECT j.queue, u.at"
                     " FROM unnest($1::bigint[], $2::bigint[]) AS u (id, at)"
                     " JOIN jobs j ON j.id = u.id JOIN queues q ON q.name = j.queue"
                     " WHERE q.rate_n IS NOT NULL",
                     &p, "recording starts against their queues' rates", err);
}

/* A text[] literal element for a queue name (names are checked on the way in; quoted anyway). */
static void add_name(struct pg_sql *q, bool first, const char *name)
{
    pg_sql_add(q, first ? "{\"" : ",\"");
    char one[3] = {0};
    for (const char *c = name; *c; c++) {
        if (*c == '"' || *c == '\\') {
            one[0] = '\\', one[1] = *c;
        } else {
            one[0] = *c, one[1] = '\0';
        }
        pg_sql_add(q, one);
    }
    pg_sql_add(q, "\"");
}

static int read_settings(struct pg_store *s, const char *name, const char *sql,
                         const struct pg_params *p, struct store_queue_plan *plan,
                         aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, "reading queue settings", err);
    if (!r)
        return failed(err);
    int code = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        struct store_queue_row *q = store_queue_plan_row(plan, PQgetvalue(r, i, 0));
        if (!q) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
            break;
        }
        q->limit = pg_get_int(r, i, 1);
        q->rate_n = pg_get_int(r, i, 2);
        q->rate_period_ms = pg_get_int(r, i, 3);
        q->paused = pg_get_int(r, i, 4) != 0;
    }
    PQclear(r);
    return code;
}

#define SETTINGS_COLUMNS                                                                           \
    "name, coalesce(concurrency, 0), coalesce(rate_n, 0), coalesce(rate_period_ms, 0), paused"

/* Running, reserved and recent-start counts per queue, in one statement: one snapshot; and which
 * bounded named queues have a queued job nobody reserved (kind 3: an EXISTS on jobs_queue_named,
 * stopping at the first such job, so an idle or a long queue costs one index probe). A
 * reservation's queue is looked up by the job's key, one probe per claims row: a join let the
 * planner, which takes the churning claims table for large, hash it against a sequential scan of
 * every job on each claim. The counts start from zero: the claim reads them again after it locks the queues it will take from. */
static int read_counts(struct pg_store *s, int64_t now, struct store_queue_plan *plan,
                       aspen_store_error *err)
{
    for (size_t i = 0; i < plan->n; i++) {
        plan->q[i].running = plan->q[i].reserved = plan->q[i].recent_starts = 0;
        plan->q[i].waiting = false;
    }
    struct pg_params p = {0};
    pg_p_int(&p, now);
    PGresult *r = pg_exec(
        s, "pgq_counts",
        "SELECT 0, queue, count(*) FROM jobs WHERE state = 'running' GROUP BY queue"
        " UNION ALL SELECT 1, (SELECT j.queue FROM jobs j WHERE j.id = c.job), count(*)"
        " FROM claims c GROUP BY 2"
        " UNION ALL SELECT 2, t.queue, count(*) FROM queue_starts t JOIN queues q"
        " ON q.name = t.queue WHERE q.rate_n IS NOT NULL AND t.at > $1::bigint - q.rate_period_ms"
        " GROUP BY t.queue"
        " UNION ALL SELECT 3, q.name, 1 FROM queues q WHERE q.name <> 'default' AND q.paused = 0"
        " AND (q.concurrency IS NOT NULL OR q.rate_n IS NOT NULL) AND EXISTS (SELECT 1 FROM jobs j"
        " WHERE j.state = 'queued' AND j.queue <> 'default' AND j.queue = q.name AND NOT EXISTS"
        " (SELECT 1 FROM claims c WHERE c.job = j.id))",
        &p, "counting queues' running and reserved jobs", err);
    if (!r)
        return failed(err);
    int code = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        struct store_queue_row *q = store_queue_plan_row(plan, PQgetvalue(r, i, 1));
        if (!q) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
            break;
        }
        int64_t kind = pg_get_int(r, i, 0), v = pg_get_int(r, i, 2);
        if (kind == 0)
            q->running += v;
        else if (kind == 1)
            q->reserved += v;
        else if (kind == 2)
            q->recent_starts += v;
        else
            q->waiting = true;
    }
    PQclear(r);
    return code;
}

struct candidate {
    int64_t id, run_at;
    int priority;
    size_t queue; /* index in the plan */
};

static int cand_order(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The unreserved heads of every queue that may take more, cut to the best `want` in claim order. */
static int read_candidates(struct pg_store *s, struct store_queue_plan *plan, size_t want,
                           struct candidate **out, size_t *n, aspen_store_error *err)
{
    struct candidate *c = NULL;
    size_t cap = 0, k = 0;
    int code = 0;
    for (size_t i = 0; i < plan->n && !code; i++) {
        const struct store_queue_row *q = &plan->q[i];
        if (q->allow <= 0)
            continue;
        struct pg_params p = {0};
        pg_p_int(&p, q->allow < (int64_t)want ? q->allow : (int64_t)want);
        bool dflt = !strcmp(q->name, ASPEN_STORE_QUEUE_DEFAULT);
        PGresult *r;
        if (dflt) {
            r = pg_exec(s, "pgq_head_default",
                        "SELECT id, priority, run_at FROM jobs WHERE state = 'queued'"
                        " AND queue = 'default' AND NOT EXISTS"
                        " (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
                        " ORDER BY priority DESC, run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
                        &p, "reading the head of a queue", err);
        } else {
            pg_p_text(&p, q->name);
            r = pg_exec(s, "pgq_head_named",
                        "SELECT id, priority, run_at FROM jobs WHERE state = 'queued'"
                        " AND queue <> 'default' AND queue = $2 AND NOT EXISTS"
                        " (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
                        " ORDER BY priority DESC, run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
                        &p, "reading the head of a queue", err);
        }
        if (!r) {
            code = failed(err);
            break;
        }
        for (int row = 0; row < PQntuples(r); row++) {
            struct candidate *grown = store_grow(c, &cap, k, sizeof *c);
            if (!grown) {
                code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
                break;
            }
            c = grown;
            c[k++] = (struct candidate){.id = pg_get_int(r, row, 0),
                                        .priority = (int)pg_get_int(r, row, 1),
                                        .run_at = pg_get_int(r, row, 2),
                                        .queue = i};
        }
        PQclear(r);
    }
    if (code) {
        free(c);
        return code;
    }
    if (k > 1)
        qsort(c, k, sizeof *c, cand_order);
    *out = c;
    *n = k < want ? k : want;
    return 0;
}

/* The claim when no bounded queue is taken from this time (none has work and room: idle, full or
 * paused): the default queue's one-statement claim (pg_jobs.c, pgj_claim) over every queue but
 * those in `shut` (a text[] literal), so a limited queue nobody can take from costs the claim one
 * filter, not a lock, a head read per queue and a second reserving statement. Rows other
 * claimers hold are skipped, and a row lost on the claims key to one that committed after this
 * statement's snapshot is retried with a new statement, as pg_claim does. */
static int claim_open_queues(struct pg_store *s, int64_t engine_id, size_t max, int64_t now,
                             const char *shut, aspen_store_job **out, size_t *got,
                             aspen_store_error *err)
{
    for (int round = 0; round < 8 && *got < max; round++) {
        struct pg_params p = {0};
        pg_p_int(&p, (int64_t)(max - *got));
        pg_p_int(&p, engine_id);
        pg_p_int(&p, now);
        pg_p_text(&p, shut);
        PGresult *r = pg_exec(
            s, "pgq_claim_open",
            "WITH head AS (SELECT " PG_JOB_COLUMNS " FROM jobs WHERE state = 'queued'"
            " AND queue <> ALL($4::text[]) AND NOT EXISTS (SELECT 1 FROM claims c"
            " WHERE c.job = jobs.id) ORDER BY priority DESC, run_at, id LIMIT $1"
            " FOR UPDATE SKIP LOCKED),"
            " won AS (INSERT INTO claims (job, engine, claimed_at)"
            " SELECT id, $2, $3 FROM head ON CONFLICT (job) DO NOTHING RETURNING job)"
            " SELECT won.job IS NOT NULL, head.* FROM head LEFT JOIN won ON won.job = head.id",
            &p, "claiming jobs of queues", err);
        if (!r)
            return failed(err);
        size_t rows = (size_t)PQntuples(r), lost = 0;
        if (rows) {
            aspen_store_job *grown = realloc(*out, (*got + rows) * sizeof **out);
            if (!grown) {
                PQclear(r);
                return store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
            }
            *out = grown;
        }
        for (size_t i = 0; i < rows; i++) {
            if (!pg_get_bool(r, (int)i, 0)) {
                lost++;
                continue;
            }
            int code = pg_job_from_row(r, (int)i, 1, &(*out)[*got], err);
            if (code) {
                PQclear(r);
                return code;
            }
            (*got)++;
            s->tx_wrote = true;
        }
        PQclear(r);
        if (!lost)
            break; /* the head was ours, or there is no more */
    }
    return 0;
}

int pg_claim_queues(struct pg_store *s, int64_t engine_id, size_t max, int64_t now,
                    aspen_store_job **out, size_t *got, aspen_store_error *err)
{
    *out = NULL;
    *got = 0;
    struct store_queue_plan plan = {0};
    struct pg_sql locked = {0};
    struct candidate *cand = NULL;
    aspen_store_job *jobs = NULL;
    bool *take = NULL; /* by plan row: a bounded queue locked for this claim */
    size_t njobs = 0;
    int code = store_queue_plan_row(&plan, ASPEN_STORE_QUEUE_DEFAULT)
                   ? read_settings(s, "pgq_settings", "SELECT " SETTINGS_COLUMNS " FROM queues",
                                   NULL, &plan, err)
                   : store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
    if (code)
        goto done;
    /* Which bounded queues this claim takes from is decided on an unlocked count first: a bounded
     * queue that is full, paused, not served or has nothing unreserved waiting (an idle one) is
     * neither locked nor read, so it costs the other queues' claims nothing and claimers do not
     * queue up behind its row (issues 8 and 10: every claim used to lock every limited queue's
     * row, so all claimers ran one after the other). Skipping one never breaks its limit. The
     * others are locked (by name: no deadlocks) and counted again, a NEW statement after the
     * lock, so what their previous claimer reserved is seen. */
    bool rates = false;
    for (size_t i = 0; i < plan.n; i++)
        rates = rates || plan.q[i].rate_n > 0;
    if (rates)
        s->rate_seen = true;
    if (rates || s->rate_seen) {
        struct pg_params p = {0};
        pg_p_int(&p, now);
        code = exec_done(s, "pgq_prune",
                         "DELETE FROM queue_starts t WHERE NOT EXISTS (SELECT 1 FROM queues q"
                         " WHERE q.name = t.queue AND q.rate_n IS NOT NULL"
                         " AND t.at > $1::bigint - q.rate_period_ms)",
                         &p, "dropping old rate shares", err);
        if (code)
            goto done;
    }
    code = read_counts(s, now, &plan, err);
    if (code)
        goto done;
    store_queue_plan_decide(&s->base, &plan);
    size_t nlock = 0, nbounded = plan.n; /* rows a later count adds have no settings */
    take = calloc(nbounded ? nbounded : 1, sizeof *take);
    if (!take) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
        goto done;
    }
    for (size_t i = 0; i < nbounded; i++) {
        const struct store_queue_row *q = &plan.q[i];
        bool dflt = !strcmp(q->name, ASPEN_STORE_QUEUE_DEFAULT);
        if (q->allow > 0 && (q->limit > 0 || q->rate_n > 0) && (dflt || q->waiting)) {
            add_name(&locked, nlock++ == 0, q->name);
            take[i] = true;
        }
    }
    if (nlock) {
        pg_sql_add(&locked, "}");
        if (locked.oom) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
            goto done;
        }
        struct pg_params p = {0};
        pg_p_text(&p, locked.text);
        code = read_settings(s, "pgq_lock",
                             "SELECT " SETTINGS_COLUMNS " FROM queues WHERE name = ANY($1::text[])"
                             " ORDER BY name FOR UPDATE",
                             &p, &plan, err);
        if (code)
            goto done;
        s->tx_wrote = true; /* row locks taken: the commit must not be skipped as read-only */
        code = read_counts(s, now, &plan, err);
        if (code)
            goto done;
        store_queue_plan_decide(&s->base, &plan);
    }
    store_queue_plan_hint(&s->base, &plan);
    /* A bounded queue not locked above takes nothing this claim, whatever a later count says. */
    for (size_t i = 0; i < nbounded; i++) {
        struct store_queue_row *q = &plan.q[i];
        if ((q->limit > 0 || q->rate_n > 0) && !take[i])
            q->allow = 0;
    }

    if (!nlock && !s->base.n_serve) {
        struct pg_sql shut = {0};
        size_t nshut = 0;
        for (size_t i = 0; i < plan.n; i++)
            if (plan.q[i].allow <= 0)
                add_name(&shut, nshut++ == 0, plan.q[i].name);
        pg_sql_add(&shut, nshut ? "}" : "{}");
        code = shut.oom ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs")
                        : claim_open_queues(s, engine_id, max, now, shut.text, &jobs, &njobs, err);
        pg_sql_free(&shut);
        if (code)
            goto done;
        goto claimed;
    }

    /* Reserve the chosen heads; rows another host holds are skipped (SKIP LOCKED) and rows it
     * reserved after our snapshot lose on the claims key, so a few rounds pick others. */
    for (int round = 0; round < 8 && njobs < max; round++) {
        size_t ncand = 0;
        free(cand);
        cand = NULL;
        code = read_candidates(s, &plan, max - njobs, &cand, &ncand, err);
        if (code || !ncand)
            break;
        struct pg_sql ids = {0};
        for (size_t i = 0; i < ncand; i++) {
            char b[32];
            snprintf(b, sizeof b, "%s%lld", i ? "," : "{", (long long)cand[i].id);
            pg_sql_add(&ids, b);
        }
        pg_sql_add(&ids, "}");
        if (ids.oom) {
            pg_sql_free(&ids);
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
            break;
        }
        struct pg_params p = {0};
        pg_p_text(&p, ids.text);
        pg_p_int(&p, engine_id);
        pg_p_int(&p, now);
        PGresult *r = pg_exec(
            s, "pgq_reserve",
            "WITH head AS (SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'queued'"
            " AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
            " FOR UPDATE SKIP LOCKED),"
            " won AS (INSERT INTO claims (job, engine, claimed_at)"
            " SELECT id, $2, $3 FROM head ON CONFLICT (job) DO NOTHING RETURNING job)"
            " SELECT " PG_JOB_COLUMNS " FROM won JOIN jobs ON jobs.id = won.job",
            &p, "claiming jobs of queues", err);
        pg_sql_free(&ids);
        if (!r) {
            code = failed(err);
            break;
        }
        size_t rows = (size_t)PQntuples(r);
        if (rows) {
            aspen_store_job *grown = realloc(jobs, (njobs + rows) * sizeof *jobs);
            if (!grown) {
                PQclear(r);
                code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
                break;
            }
            jobs = grown;
            s->tx_wrote = true;
        }
        for (size_t i = 0; i < rows && !code; i++) {
            code = pg_job_from_row(r, (int)i, 0, &jobs[njobs], err);
            if (code)
                break;
            struct store_queue_row *q = store_queue_plan_row(&plan, jobs[njobs].queue);
            if (q && q->allow > 0 && q->allow != INT64_MAX)
                q->allow--;
            njobs++;
        }
        PQclear(r);
        if (code || rows == ncand)
            break; /* every chosen head was ours */
    }
    if (code)
        goto done;
claimed:
    if (njobs > 1)
        qsort(jobs, njobs, sizeof *jobs, store_claim_order);
    *out = jobs;
    *got = njobs;
    jobs = NULL;
    njobs = 0;
done:
    free(take);
    free(cand);
    aspen_store_jobs_free(jobs, njobs);
    pg_sql_free(&locked);
    store_queue_plan_free(&plan);
    return code;
}

/* ---- settings and listing ------------------------------------------------------------------------ */

int pg_queue_set(aspen_store *base, const char *name, unsigned what, int64_t limit, int64_t rate_n,
                 int64_t rate_period_ms, bool paused, int64_t now_ms, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    pg_p_now(&p, now_ms);
    code = exec_done(s, "pgq_declare",
                     "INSERT INTO queues (name, created_at) VALUES ($1, $2::bigint)"
                     " ON CONFLICT (name) DO NOTHING",
                     &p, "declaring a queue", err);
    if (!code && (what & ASPEN_STORE_QUEUE_SET_LIMIT)) {
        p = (struct pg_params){0};
        pg_p_text(&p, name);
        pg_p_int(&p, limit);
        code = exec_done(s, "pgq_set_limit",
                         "UPDATE queues SET concurrency = nullif($2::bigint, 0) WHERE name = $1",
                         &p, "changing a queue's limit", err);
    }
    if (!code && (what & ASPEN_STORE_QUEUE_SET_RATE)) {
        p = (struct pg_params){0};
        pg_p_text(&p, name);
        pg_p_int(&p, rate_n);
        pg_p_int(&p, rate_period_ms);
        code = exec_done(s, "pgq_set_rate",
                         "UPDATE queues SET rate_n = nullif($2::bigint, 0), rate_period_ms ="
                         " CASE WHEN $2::bigint > 0 THEN $3::bigint END WHERE name = $1",
                         &p, "changing a queue's rate", err);
    }
    if (!code && (what & STORE_QUEUE_SET_PAUSE)) {
        p = (struct pg_params){0};
        pg_p_text(&p, name);
        pg_p_int(&p, paused ? 1 : 0);
        code = exec_done(s, "pgq_set_pause", "UPDATE queues SET paused = $2::integer WHERE name = $1",
                         &p, "pausing or resuming a queue", err);
    }
    if (!code && (what & STORE_QUEUE_SET_PAUSE) && !paused)
        code = pg_notify_work(s, err); /* its jobs are claimable again */
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    s->tx_wrote = true;
    return pg_tx_commit(s, "committing a queue's settings", err);
}

static aspen_store_queue_info *find_info(aspen_store_queue_info *qs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(qs[i].name, name))
            return &qs[i];
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const aspen_store_queue_info *)a)->name,
                  ((const aspen_store_queue_info *)b)->name);
}

int pg_queues(aspen_store *base, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
              aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct store_queue_plan plan = {0};
    aspen_store_queue_info *qs = NULL;
    int code = store_queue_plan_row(&plan, ASPEN_STORE_QUEUE_DEFAULT)
                   ? read_settings(s, "pgq_settings", "SELECT " SETTINGS_COLUMNS " FROM queues",
                                   NULL, &plan, err)
                   : store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing queues");
    if (code)
        goto done;
    qs = calloc(plan.n, sizeof *qs);
    if (!qs) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing queues");
        goto done;
    }
    for (size_t i = 0; i < plan.n; i++) {
        snprintf(qs[i].name, sizeof qs[i].name, "%s", plan.q[i].name);
        qs[i].limit = plan.q[i].limit;
        qs[i].rate_n = plan.q[i].rate_n;
        qs[i].rate_period_ms = plan.q[i].rate_period_ms;
        qs[i].paused = plan.q[i].paused;
    }
    if (plan.n > 2)
        qsort(qs + 1, plan.n - 1, sizeof *qs, by_name);
    struct pg_params p = {0};
    pg_p_now(&p, now_ms);
    /* One statement, one snapshot: kind, queue, count, earliest due run_at. */
    PGresult *r = pg_exec(
        s, "pgq_figures",
        "SELECT 0, queue, count(*), min(run_at) FROM jobs WHERE state = 'queued' GROUP BY queue"
        " UNION ALL SELECT 1, queue, count(*), min(CASE WHEN run_at <= $1::bigint THEN run_at END)"
        " FROM jobs WHERE state = 'scheduled' GROUP BY queue"
        " UNION ALL SELECT 2, queue, count(*), NULL FROM jobs WHERE state = 'running' GROUP BY queue"
        " UNION ALL SELECT 3, j.queue, count(*), NULL FROM claims c JOIN jobs j ON j.id = c.job"
        " GROUP BY j.queue"
        /* runs that finished (succeeded, failed): a cancellation is no throughput (trial 24) */
        " UNION ALL SELECT 4, f.queue, count(*), NULL FROM (SELECT queue, finished_at, state FROM"
        " jobs ORDER BY id DESC LIMIT 100000) f WHERE f.finished_at >= $1::bigint - 60000"
        " AND f.state IN ('succeeded', 'failed') GROUP BY f.queue"
        " UNION ALL SELECT 5, '', count(*), NULL FROM (SELECT 1 FROM jobs"
        " WHERE created_at >= $1::bigint - 60000 ORDER BY id DESC LIMIT 100000) c"
        " HAVING count(*) >= 100000",
        &p, "listing queues", err);
    if (!r) {
        code = failed(err);
        goto done;
    }
    int64_t now = now_ms + pg_clock_skew_ms();
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t kind = pg_get_int(r, i, 0), v = pg_get_int(r, i, 2);
        if (kind == 5) {
            for (size_t k = 0; k < plan.n; k++)
                qs[k].throughput_capped = true;
            continue;
        }
        aspen_store_queue_info *q = find_info(qs, plan.n, PQgetvalue(r, i, 1));
        if (!q)
            continue;
        int64_t first = PQgetisnull(r, i, 3) ? 0 : pg_get_int(r, i, 3);
        if (kind == 0)
            q->queued = v;
        else if (kind == 1)
            q->scheduled = v;
        else if (kind == 2)
            q->running = v;
        else if (kind == 3)
            q->reserved = v;
        else if (kind == 4)
            q->finished_last_min = v;
        if ((kind == 0 || kind == 1) && first && (!q->oldest_waiting_ms || first < q->oldest_waiting_ms))
            q->oldest_waiting_ms = first;
    }
    PQclear(r);
    for (size_t i = 0; i < plan.n; i++)
        if (qs[i].oldest_waiting_ms)
            qs[i].oldest_waiting_ms = now > qs[i].oldest_waiting_ms ? now - qs[i].oldest_waiting_ms : 0;
    *out = qs;
    *n = plan.n;
    qs = NULL;
done:
    free(qs);
    store_queue_plan_free(&plan);
    return code;
}

/* ---- a retry or rerun into a removed queue, removing a queue ------------------------------------ */

int pg_queue_renote(struct pg_store *s, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_now(&p, now_ms);
    return exec_done(s, "pgq_renote", STORE_QUEUE_RENOTE_SQL("$1::bigint", "$2::bigint"), &p,
                     "recording a job's queue", err);
}

/* READ COMMITTED alone would race: a submit into the queue not yet committed is not counted, and
 * its job would end in a queue without a row, which a claim going queue by queue never reads. So
 * the check holds the queues table in SHARE ROW EXCLUSIVE mode: every writer of jobs into a named
 * queue writes the queues table in its own transaction (the submit's row-on-first-use, a retry's
 * or rerun's renote), so one that began first has committed before the count (a new statement,
 * after the lock) and is counted, and one that comes later waits the moment and then makes the row
 * again. Claims lock queue rows FOR UPDATE (ROW SHARE: no conflict) and reads take nothing. The
 * mode conflicts with itself, so two removals cannot deadlock upgrading to their deletes. */
int pg_queue_remove(aspen_store *base, const char *name, aspen_store_queue_held *held,
                    aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    /* a writer stuck in a long transaction must not hold every submit behind this lock's wait */
    code = exec_done(s, "pgq_rm_timeout", "SELECT set_config('lock_timeout', '5s', true)", NULL,
                     "removing a queue", err);
    PGresult *r = NULL;
    if (!code) {
        r = pg_exec_dynamic(s, "LOCK TABLE queues IN SHARE ROW EXCLUSIVE MODE", NULL,
                            "waiting for the queues table to remove a queue (another transaction "
                            "held it for 5 s: try again)",
                            err);
        code = r ? 0 : failed(err);
        PQclear(r);
        r = NULL;
    }
    struct pg_params p = {0};
    pg_p_text(&p, name);
    if (!code) {
        r = pg_exec(s, "pgq_rm_count",
                    "SELECT EXISTS (SELECT 1 FROM queues WHERE name = $1),"
                    " (SELECT count(*) FROM jobs WHERE state = 'queued' AND queue <> 'default'"
                    "  AND queue = $1),"
                    " (SELECT count(*) FROM jobs WHERE state = 'scheduled' AND queue = $1),"
                    " (SELECT count(*) FROM jobs WHERE state = 'running' AND queue = $1)",
                    &p, "counting a queue's jobs", err);
        code = r ? 0 : failed(err);
    }
    if (!code) {
        bool exists = pg_get_bool(r, 0, 0);
        held->queued = pg_get_int(r, 0, 1);
        held->scheduled = pg_get_int(r, 0, 2);
        held->running = pg_get_int(r, 0, 3);
        if (!exists)
            code = store_err(err, ASPEN_STORE_ENOTFOUND, "no queue named %s (removed meanwhile?): "
                             "aspen queues%s lists them", name, store_cmd(base));
    }
    PQclear(r);
    r = NULL;
    /* the schedules whose jobs go to it: their next run would make it again */
    char schedules[STORE_QUEUE_RM_NAMES_CAP] = "";
    if (!code) {
        r = pg_exec(s, "pgq_rm_schedules", STORE_QUEUE_RM_SCHEDULES_SQL("$1"), &p,
                    "reading the schedules of a queue", err);
        code = r ? 0 : failed(err);
        for (int i = 0; r && i < PQntuples(r); i++) {
            store_queue_rm_add_name(schedules, sizeof schedules, PQgetvalue(r, i, 0));
            held->schedules = pg_get_int(r, i, 1);
        }
        PQclear(r);
    }
    if (!code && (held->queued || held->scheduled || held->running || held->schedules))
        code = store_queue_held_err(name, held, schedules, store_cmd(base), err);
    if (!code)
        code = exec_done(s, "pgq_rm_starts", "DELETE FROM queue_starts WHERE queue = $1", &p,
                         "removing a queue's rate shares", err);
    if (!code)
        code = exec_done(s, "pgq_rm", "DELETE FROM queues WHERE name = $1", &p,
                         "removing a queue", err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    s->tx_wrote = true;
    return pg_tx_commit(s, "committing a queue's removal", err);
}
