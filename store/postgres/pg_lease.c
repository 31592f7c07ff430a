/* pg_lease.c — the PostgreSQL backend's engines, leases, crash recovery, cancel requests, and the
 * LISTEN side of NOTIFY aspen_jobs (pg_wait_fd, pg_notified) and of NOTIFY aspen_logs (pg_log_wait_fd,
 * pg_log_notified: the log feed's followers).
 *
 * As on SQLite (store/sqlite/sqlite_lease.c): an engine registers (engines row, identity ids
 * never reused), renews its lease, and if it stops renewing, recovery by any host puts its
 * running jobs back (the lost attempt recorded with outcome "recovered") and drops its
 * reservations. What many hosts add:
 *
 * - Leases are on the database's clock: lease_until = server now + lease_ms, and "expired" means
 *   lease_until < server now, so a host whose clock runs ahead cannot steal a live host's jobs and
 *   one whose clock runs behind cannot keep a dead host's.
 * - Recovery locks each expired engine's row FOR UPDATE SKIP LOCKED before touching its jobs. A
 *   commit or claim of that engine holds the row FOR KEY SHARE (pg_jobs.c), so the two never
 *   interleave: either the commit lands first (and recovery finds its jobs finished) or recovery
 *   does (and the commit finds the engine gone: every item refused with ELEASE). Two hosts running
 *   recovery at once take disjoint engines. A renewal is an UPDATE of the same row: it waits for a
 *   recovery that holds it and then finds no row (ELEASE), or it lands first and recovery's
 *   lease_until < now no longer holds when re-checked on the renewed row. */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

static int run(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
               const char *what, int64_t *changed, aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r)
        return failed(err);
    if (changed)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int read_only(struct pg_store *s, const char *what, aspen_store_error *err)
{
    return store_err(err, ASPEN_STORE_EPERM, "%s: %s was opened read-only", what, s->shown);
}

/* pg_jobs.c */
int pg_release_all(struct pg_store *s, int64_t engine_id, int64_t *released,
                   aspen_store_error *err);

int pg_engine_register(aspen_store *base, int64_t pid, const char *host, int64_t lease_ms,
                       int64_t now_ms, int64_t *engine_id, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    if (s->read_only)
        return read_only(s, "registering an engine", err);
    struct pg_params p = {0};
    pg_p_int(&p, pid);
    pg_p_text(&p, host ? host : "");
    pg_p_now(&p, now_ms);
    pg_p_int(&p, lease_ms);
    PGresult *r = pg_exec(s, "pgl_register",
                          "INSERT INTO engines (pid, host, started_at, lease_until)"
                          " VALUES ($1, $2, " PG_NOW(3) ", " PG_NOW(3) " + $4) RETURNING id",
                          &p, "registering an engine", err);
    if (!r)
        return failed(err);
    if (engine_id)
        *engine_id = pg_get_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int pg_engine_renew(aspen_store *base, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    if (s->read_only)
        return read_only(s, "renewing an engine's lease", err);
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    pg_p_now(&p, now_ms);
    pg_p_int(&p, lease_ms);
    int64_t n = 0;
    int code = run(s, "pgl_renew",
                   "UPDATE engines SET lease_until = " PG_NOW(2) " + $3 WHERE id = $1", &p,
                   "renewing an engine's lease", &n, err);
    if (!code && n == 0)
        code = store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld's lease is gone: it expired and another process recovered "
                         "its jobs. Stop the jobs it holds (their results would not be recorded) "
                         "and register again",
                         (long long)engine_id);
    return code;
}

int pg_engine_unregister(aspen_store *base, int64_t engine_id, int64_t now_ms, int64_t *released,
                         aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    (void)now_ms;
    if (released)
        *released = 0;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    /* The engine row first, as recovery and commits lock it: the same order everywhere. */
    code = run(s, "pgl_engine_lock", "SELECT 1 FROM engines WHERE id = $1 FOR UPDATE", &p,
               "unregistering an engine", NULL, err);
    int64_t rel = 0, unreserved = 0;
    if (!code)
        code = pg_release_all(s, engine_id, &rel, err);
    if (!code)
        code = run(s, "pgl_claims_of_engine_delete", "DELETE FROM claims WHERE engine = $1", &p,
                   "giving back an engine's reserved jobs", &unreserved, err);
    if (!code)
        code = run(s, "pgl_engine_delete", "DELETE FROM engines WHERE id = $1", &p,
                   "unregistering an engine", NULL, err);
    if (!code && (rel || unreserved)) {
        s->tx_wrote = true;
        code = pg_notify_work(s, err);
    }
    if (code)
        goto rollback;
    code = pg_tx_commit(s, "unregistering an engine", err);
    if (!code && released)
        *released = rel;
    return code;
rollback:
    pg_tx_rollback(s);
    return code;
}

int pg_engine_heartbeat(aspen_store *base, int64_t engine_id, int64_t lease_ms,
                        const aspen_store_engine_figures *f, const char *version, const char *slots,
                        int64_t now_ms, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    if (s->read_only)
        return read_only(s, "writing an engine's heartbeat", err);
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    pg_p_now(&p, now_ms);
    pg_p_int(&p, lease_ms);
    pg_p_int(&p, f->workers);
    pg_p_int(&p, f->busy);
    pg_p_int(&p, f->warm_vms);
    pg_p_int(&p, f->rss_bytes);
    pg_p_int(&p, (int64_t)(f->jobs_per_s * 1000.0 + 0.5));
    pg_p_text(&p, version);
    pg_p_text(&p, slots);
    pg_p_text(&p, f->queues ? f->queues : "");
    int64_t n = 0;
    int code = run(s, "pgl_heartbeat",
                   "UPDATE engines SET lease_until = " PG_NOW(2) " + $3, heartbeat_at = " PG_NOW(2)
                   ", workers = $4, busy = $5, warm_vms = $6, rss_bytes = $7,"
                   " jobs_per_s_milli = $8, version = $9, slots = $10, queues = $11 WHERE id = $1",
                   &p, "writing an engine's heartbeat", &n, err);
    if (!code && n == 0)
        code = store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld is not registered (never, or its lease expired and another "
                         "process recovered its jobs): its heartbeat was not written. Stop the "
                         "jobs it holds and register again",
                         (long long)engine_id);
    return code;
}

int pg_engines(aspen_store *base, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
               aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *out = NULL;
    *n = 0;
    struct pg_params p = {0};
    pg_p_now(&p, now_ms);
    PGresult *r = pg_exec(s, "pgl_engines",
                          "SELECT e.id, e.pid, e.host, e.started_at, e.lease_until,"
                          " (SELECT count(*) FROM jobs j WHERE j.state = 'running'"
                          " AND j.owner = e.id), e.heartbeat_at,"
                          " " PG_NOW(1) " - CASE WHEN e.heartbeat_at > 0 THEN e.heartbeat_at"
                          " ELSE e.started_at END, e.workers, e.busy, e.warm_vms, e.rss_bytes,"
                          " e.jobs_per_s_milli, e.version, e.slots, e.queues FROM engines e ORDER BY e.id",
                          &p, "listing engines", err);
    if (!r)
        return failed(err);
    size_t rows = (size_t)PQntuples(r);
    aspen_store_engine_info *list = rows ? calloc(rows, sizeof *list) : NULL;
    if (rows && !list) {
        PQclear(r);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing engines");
    }
    for (size_t i = 0; i < rows; i++) {
        aspen_store_engine_info *e = &list[i];
        e->id = pg_get_int(r, (int)i, 0);
        e->pid = pg_get_int(r, (int)i, 1);
        snprintf(e->host, sizeof e->host, "%s", PQgetvalue(r, (int)i, 2));
        e->started_at_ms = pg_get_int(r, (int)i, 3);
        e->lease_until_ms = pg_get_int(r, (int)i, 4);
        e->running = pg_get_int(r, (int)i, 5);
        e->heartbeat_ms = pg_get_int(r, (int)i, 6);
        e->heartbeat_age_ms = pg_get_int(r, (int)i, 7);
        e->workers = pg_get_int(r, (int)i, 8);
        e->busy = pg_get_int(r, (int)i, 9);
        e->warm_vms = pg_get_int(r, (int)i, 10);
        e->rss_bytes = pg_get_int(r, (int)i, 11);
        e->jobs_per_s = (double)pg_get_int(r, (int)i, 12) / 1000.0;
        store_clean_ascii(PQgetvalue(r, (int)i, 13), e->version, sizeof e->version);
        store_engine_slots_decode(e, PQgetvalue(r, (int)i, 14));
        snprintf(e->queues, sizeof e->queues, "%s", PQgetvalue(r, (int)i, 15));
    }
    PQclear(r);
    *out = list;
    *n = rows;
    return 0;
}

/* ---- recovery ---------------------------------------------------------------------------------- */

/* One lost attempt of a running job (already locked by the caller's statement): recorded as
 * recovered, and the job queued again, failed (out of attempts) or cancelled (one was asked). */
static int recover_job(struct pg_store *s, int64_t id, int64_t owner, const char *why, int64_t now,
                       aspen_store_recovery *report, aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = pg_job_read(s, id, true, &before, err);
    if (code)
        return code;
    if (before.state != ASPEN_STORE_RUNNING || before.owner != owner)
        return 0; /* finished or moved by someone else meanwhile */
    char msg[384];
    after = before;
    after.owner = 0;
    after.set_error = true;
    after.error = msg;
    int64_t *counter;
    if (before.cancel_requested) {
        after.state = ASPEN_STORE_CANCELLED;
        after.finished_at = now;
        after.cancel_requested = false;
        snprintf(msg, sizeof msg, "cancelled: attempt %d was lost when %s", before.attempts, why);
        counter = &report->cancelled;
    } else if (before.attempts < before.max_attempts) {
        after.state = ASPEN_STORE_QUEUED; /* keeps its run_at: back at the front of its priority */
        snprintf(msg, sizeof msg, "attempt %d lost: %s; queued again", before.attempts, why);
        counter = &report->requeued;
    } else {
        after.state = ASPEN_STORE_FAILED;
        after.finished_at = now;
        snprintf(msg, sizeof msg, "attempt %d of %d lost: %s; out of attempts", before.attempts,
                 before.max_attempts, why);
        counter = &report->failed;
    }
    code = aspen_store_check_transition(id, before.state, after.state, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_int(&p, before.attempts);
    pg_p_opt_int(&p, owner);
    pg_p_opt_int(&p, before.started_at);
    pg_p_int(&p, now);
    pg_p_text(&p, msg);
    code = run(s, "pgl_attempt_recovered",
               "INSERT INTO attempts (job, number, engine, started_at, finished_at, outcome,"
               " error, recovered) VALUES ($1, $2, $3, $4, $5, 'recovered', $6, true)",
               &p, "recording a lost attempt", NULL, err);
    if (!code)
        code = pg_job_write(s, &before, &after, err);
    if (!code)
        (*counter)++;
    return code;
}

/* Recovers the running jobs listed in r (columns: id, owner) with `why`. */
static int recover_jobs(struct pg_store *s, PGresult *r, const char *why, int64_t now,
                        aspen_store_recovery *report, aspen_store_error *err)
{
    for (int i = 0; i < PQntuples(r); i++) {
        int code = recover_job(s, pg_get_int(r, i, 0), pg_get_int(r, i, 1), why, now, report, err);
        if (code)
            return code;
    }
    return 0;
}

/* Recovers one engine whose lease expired, inside the caller's transaction: its running jobs,
 * its reservations, its row. Nothing when its row is gone or its lease is live at `now` (renewed
 * while we waited for its lock). Used by pg_recover and by a late commit (pg_jobs.c). */
int pg_recover_engine(struct pg_store *s, int64_t engine_id, int64_t now,
                      aspen_store_recovery *report, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    PGresult *r = pg_exec(s, "pgl_engine_get",
                          "SELECT pid, host, lease_until FROM engines WHERE id = $1 FOR UPDATE",
                          &p, "recovering jobs of a dead engine", err);
    if (!r)
        return failed(err);
    if (PQntuples(r) != 1 || pg_get_int(r, 0, 2) >= now) {
        PQclear(r);
        return 0;
    }
    char why[256];
    snprintf(why, sizeof why,
             "engine %lld (pid %lld on %s) stopped renewing its lease (expired %lld ms before "
             "recovery, by the database's clock)",
             (long long)engine_id, (long long)pg_get_int(r, 0, 0), PQgetvalue(r, 0, 1),
             (long long)(now - pg_get_int(r, 0, 2)));
    PQclear(r);
    r = pg_exec(s, "pgl_running_of_engine_lock",
                "SELECT id, owner FROM jobs WHERE state = 'running' AND owner = $1 ORDER BY id"
                " FOR UPDATE",
                &p, "finding jobs of a dead engine", err);
    if (!r)
        return failed(err);
    int code = recover_jobs(s, r, why, now, report, err);
    PQclear(r);
    int64_t k = 0;
    if (!code)
        code = run(s, "pgl_claims_of_engine_delete", "DELETE FROM claims WHERE engine = $1", &p,
                   "giving back reservations of a dead engine", &k, err);
    report->unreserved += k;
    if (!code)
        code = run(s, "pgl_engine_delete", "DELETE FROM engines WHERE id = $1", &p,
                   "removing an expired engine", &k, err);
    if (!code) {
        report->engines_removed += k;
        s->tx_wrote = true;
    }
    return code;
}

int pg_recover(aspen_store *base, int64_t self_engine, int64_t min_expired_ms, int64_t now_ms,
               aspen_store_recovery *report, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    aspen_store_recovery rep = {0};
    if (s->read_only)
        return read_only(s, "recovering jobs of dead engines", err);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    /* Expired engines nobody else is recovering (or committing for) right now; never the caller's
     * own ($3), and only those expired at least $2 ms (an engine back from an outage gives the
     * others it shared one lease period to renew: aspen_store_recover_others). pg_recover_engine
     * re-checks each against now once its row is locked. */
    struct pg_params p = {0};
    pg_p_now(&p, now_ms);
    pg_p_int(&p, min_expired_ms);
    pg_p_int(&p, self_engine);
    PGresult *r = pg_exec(s, "pgl_expired",
                          "SELECT " PG_NOW(1) ", id FROM engines WHERE lease_until < " PG_NOW(1)
                          " - $2::bigint AND id <> $3 ORDER BY id FOR UPDATE SKIP LOCKED",
                          &p, "finding dead engines", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    int64_t now = 0;
    int rows = PQntuples(r);
    if (rows)
        now = pg_get_int(r, 0, 0);
    for (int i = 0; i < rows && !code; i++)
        code = pg_recover_engine(s, pg_get_int(r, i, 1), now, &rep, err);
    PQclear(r);
    if (code)
        goto rollback;
    /* Running jobs whose owner row is gone altogether (deleted by hand, or a crash between
     * versions), and reservations of engines that no longer exist. */
    p = (struct pg_params){0};
    pg_p_now(&p, now_ms);
    r = pg_exec(s, "pgl_orphans",
                "SELECT j.id, j.owner, " PG_NOW(1) " FROM jobs j WHERE j.state = 'running' AND NOT"
                " EXISTS (SELECT 1 FROM engines e WHERE e.id = j.owner) ORDER BY j.id"
                " FOR UPDATE SKIP LOCKED",
                &p, "finding jobs of missing engines", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    if (PQntuples(r)) {
        char why[128];
        snprintf(why, sizeof why, "its engine is gone (no lease)");
        code = recover_jobs(s, r, why, pg_get_int(r, 0, 2), &rep, err);
    }
    PQclear(r);
    if (code)
        goto rollback;
    int64_t k = 0;
    p = (struct pg_params){0};
    code = run(s, "pgl_claims_orphans_delete",
               "DELETE FROM claims c WHERE NOT EXISTS (SELECT 1 FROM engines e WHERE"
               " e.id = c.engine)",
               &p, "giving back reservations of dead engines", &k, err);
    if (code)
        goto rollback;
    rep.unreserved += k;
    if (k)
        s->tx_wrote = true;
    if ((rep.requeued || rep.unreserved) && (code = pg_notify_work(s, err)) != 0)
        goto rollback;
    code = pg_tx_commit(s, "committing recovery", err);
    if (!code && report)
        *report = rep;
    return code;
rollback:
    pg_tx_rollback(s);
    return code;
}

int pg_cancel_requests(aspen_store *base, int64_t engine_id, int64_t **ids, size_t *n,
                       aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *ids = NULL;
    *n = 0;
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    PGresult *r = pg_exec(s, "pgl_cancel_requests",
                          "SELECT id FROM jobs WHERE state = 'running' AND owner = $1"
                          " AND cancel_requested ORDER BY id",
                          &p, "reading cancel requests", err);
    if (!r)
        return failed(err);
    size_t rows = (size_t)PQntuples(r);
    if (rows) {
        *ids = malloc(rows * sizeof **ids);
        if (!*ids) {
            PQclear(r);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading cancel requests");
        }
        for (size_t i = 0; i < rows; i++)
            (*ids)[i] = pg_get_int(r, (int)i, 0);
    }
    *n = rows;
    PQclear(r);
    return 0;
}

/* ---- waiting for new work (LISTEN aspen_jobs) -------------------------------------------------- */

/* The channels a handle can LISTEN on: new work (the engine's waiter) and new log lines (the
 * log feed's followers). Each remembers whether this connection listens since its last reconnect. */
struct pg_channel {
    const char *name, *listen_sql, *what;
};
static const struct pg_channel CH_JOBS = {"aspen_jobs", "LISTEN aspen_jobs",
                                          "subscribing to announcements of new work (LISTEN aspen_jobs)"};
static const struct pg_channel CH_LOGS = {"aspen_logs", "LISTEN aspen_logs",
                                          "subscribing to announcements of new log lines (LISTEN aspen_logs)"};

/* LISTEN on this connection unless it already does since its last reconnect. *renewed: it had
 * listened before and a reconnect lost that, so announcements may have been missed. */
static int listen_now(struct pg_store *s, const struct pg_channel *ch, bool *listening,
                      int *at_reconnects, bool *renewed, aspen_store_error *err)
{
    *renewed = false;
    if (*listening && *at_reconnects == s->reconnects && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    bool before = *listening;
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        int code = pg_reconnect(s, err);
        if (code)
            return code;
    }
    struct pg_params p = {0};
    int code = run(s, ch == &CH_JOBS ? "pgl_listen" : "pgl_listen_logs", ch->listen_sql, &p,
                   ch->what, NULL, err);
    if (code)
        return code;
    *listening = true;
    *at_reconnects = s->reconnects;
    *renewed = before;
    return 0;
}

static int channel_fd(struct pg_store *s, const struct pg_channel *ch, bool *listening,
                      int *at_reconnects, int *fd, aspen_store_error *err)
{
    *fd = -1;
    bool renewed = false;
    int code = listen_now(s, ch, listening, at_reconnects, &renewed, err);
    if (code)
        return code;
    *fd = PQsocket(s->conn);
    if (*fd < 0)
        return store_err(err, ASPEN_STORE_EIO, "the connection to %s has no socket to wait on",
                         s->shown);
    return 0;
}

static int channel_notified(struct pg_store *s, const struct pg_channel *ch, bool *listening,
                            int *at_reconnects, bool *woken, aspen_store_error *err)
{
    *woken = false;
    bool renewed = false;
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK && !PQconsumeInput(s->conn))
        *woken = true; /* the connection broke while we waited: listen_now reconnects, and
                        * what was announced meanwhile is lost, so the waiter looks once */
    int code = listen_now(s, ch, listening, at_reconnects, &renewed, err);
    if (code)
        return code;
    if (renewed)
        *woken = true;
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        if (strcmp(n->relname, ch->name) == 0)
            *woken = true;
        PQfreemem(n);
    }
    return 0;
}

int pg_wait_fd(aspen_store *base, int *fd, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    return channel_fd(s, &CH_JOBS, &s->listening, &s->listen_reconnects, fd, err);
}

int pg_notified(aspen_store *base, bool *woken, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    return channel_notified(s, &CH_JOBS, &s->listening, &s->listen_reconnects, woken, err);
}

/* The log feed's followers (aspen_store_log_wait_fd): NOTIFY aspen_logs, sent once per
 * transaction that wrote lines (pg_jobs.c, log_batch_flush). */
int pg_log_wait_fd(aspen_store *base, int *fd, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    return channel_fd(s, &CH_LOGS, &s->listening_logs, &s->listen_logs_reconnects, fd, err);
}

int pg_log_notified(aspen_store *base, bool *woken, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    return channel_notified(s, &CH_LOGS, &s->listening_logs, &s->listen_logs_reconnects, woken,
                            err);
}
