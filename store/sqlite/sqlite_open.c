/* sqlite_open.c — the SQLite backend's handle and its ops table (api.c calls through it). Opening
 * an Aspen database file: checks before SQLite touches anything, pragmas, schema
 * migrations (PRAGMA user_version), the prepared-statement cache, transactions, and the mapping of
 * SQLite failures to messages a user can act on (locked, corrupt, full, read-only, newer schema).
 *
 * Rule: a file that is not an Aspen database, or a corrupt one, is never written: the first thing
 * read is the header (application_id, user_version), and nothing is written before it checks out. */
#include "sqlite_store.h"
#include "schedule_backend.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASPEN_APPLICATION_ID 0x4173706e /* "Aspn" in the database header */

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_BEGIN_DEFERRED] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* The id: SQ_JOB_NEXT_ID (NULL, so SQLite's own max + 1, unless the newest jobs were
     * deleted: then one past the highest id ever handed out; see migrate_v13). */
    [ST_JOB_INSERT] =
        "INSERT INTO jobs (id, type, binary_sha256, binary_name, payload, state, priority, run_at,"
        " max_attempts, timeout_ms, memory_bytes, isolation, tags, created_at, source_dir,"
        " payload_ext, queue)"
        " VALUES (" SQ_JOB_NEXT_ID ", ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15, ?16)",
    [ST_BINARY_INSERT] = "INSERT OR IGNORE INTO binaries (sha256, name, size, bytes, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_BINARY_EXISTS] = "SELECT 1 FROM binaries WHERE sha256 = ?1",
    [ST_BINARY_GET] = "SELECT name, size, bytes, created_at FROM binaries WHERE sha256 = ?1",
    [ST_BINARY_REPAIR] = "UPDATE binaries SET size = ?2, bytes = ?3 WHERE sha256 = ?1"
                         " AND (size != ?2 OR bytes IS NOT ?3)",
    [ST_PAUSED] = "SELECT value FROM settings WHERE key = 'queue.paused'",
    [ST_ENGINE_LEASE] = "SELECT lease_until FROM engines WHERE id = ?1",
    /* scheduled → queued for every job whose time has come (index jobs_due). */
    [ST_PROMOTE_DUE] = "UPDATE jobs INDEXED BY jobs_due SET state = 'queued'"
                       " WHERE state = 'scheduled' AND run_at <= ?1",
    /* The head of the queue (index jobs_queue) that nobody has reserved yet. The claims table holds
     * at most a few prefetched jobs per live engine, so the NOT EXISTS steps over a handful. */
    [ST_CLAIM] = "SELECT " JOB_COLUMNS " FROM jobs INDEXED BY jobs_queue WHERE state = 'queued'"
                 " AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
                 " ORDER BY priority DESC, run_at, id LIMIT ?1",
    [ST_CLAIM_INSERT] = "INSERT INTO claims (job, engine, claimed_at) VALUES (?1, ?2, ?3)",
    [ST_CLAIM_OWNER] = "SELECT engine FROM claims WHERE job = ?1",
    [ST_CLAIM_DELETE] = "DELETE FROM claims WHERE job = ?1",
    [ST_CLAIM_TAKE] = "DELETE FROM claims WHERE job = ?1 AND engine = ?2",
    [ST_CLAIMS_OF_ENGINE_DELETE] = "DELETE FROM claims WHERE engine = ?1",
    /* Reservations of engines without a live lease: they go back to the queue uncharged. */
    [ST_CLAIMS_ORPHANS_DELETE] = "DELETE FROM claims WHERE NOT EXISTS"
                                 " (SELECT 1 FROM engines e WHERE e.id = claims.engine"
                                 " AND (e.lease_until >= ?1 OR e.id = ?2))",
    [ST_JOB_READ] = "SELECT state, run_at, attempts, max_attempts, started_at, finished_at, owner,"
                    " cancel_requested, log_count, log_dropped FROM jobs WHERE id = ?1",
    [ST_JOB_WRITE] = "UPDATE jobs SET state = ?2, run_at = ?3, attempts = ?4, max_attempts = ?5,"
                     " started_at = ?6, finished_at = ?7, owner = ?8, cancel_requested = ?9,"
                     " log_count = ?10, log_dropped = ?11,"
                     " error = CASE WHEN ?12 THEN ?13 ELSE error END,"
                     " result = CASE WHEN ?14 THEN ?15 ELSE result END"
                     " WHERE id = ?1 AND state = ?16",
    /* The same without error and result: a start, a cancel request, a release. */
    [ST_JOB_WRITE_SMALL] = "UPDATE jobs SET state = ?2, run_at = ?3, attempts = ?4,"
                           " max_attempts = ?5, started_at = ?6, finished_at = ?7, owner = ?8,"
                           " cancel_requested = ?9, log_count = ?10, log_dropped = ?11"
                           " WHERE id = ?1 AND state = ?12",
    [ST_JOB_LOGCOUNT_WRITE] = "UPDATE jobs SET log_count = ?2, log_dropped = ?3 WHERE id = ?1",
    [ST_ATTEMPT_INSERT] =
        "INSERT INTO attempts (job, number, engine, started_at, finished_at, wall_us,"
        " exits, host_calls, pages_dirtied, bytes_in, bytes_out, outcome, error, recovered)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_LOG_INSERT] = "INSERT INTO logs (job, seq, attempt, time_ms, line, tx)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, " SQ_LOG_TX ")",
    [ST_JOB_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
    [ST_ATTEMPTS_GET] = "SELECT job, number, engine, started_at, finished_at, wall_us, exits,"
                        " host_calls, pages_dirtied, bytes_in, bytes_out, outcome, error, recovered"
                        " FROM attempts WHERE job = ?1 ORDER BY number",
    [ST_LOGS_GET] = "SELECT seq, attempt, time_ms, line FROM logs WHERE job = ?1 AND seq > ?2"
                    " ORDER BY seq LIMIT ?3",
    /* The feed (version 12): a seek on logs_feed, then each line's engine by its attempt row, or
     * the job's owner while that attempt still runs (its attempt row is written at the end). */
    [ST_LOG_FEED] = "SELECT l.tx, l.job, l.seq, l.attempt, l.time_ms, l.line,"
                    " coalesce(a.engine, j.owner, 0), e.host, e.pid FROM logs l"
                    " LEFT JOIN attempts a ON a.job = l.job AND a.number = l.attempt"
                    " LEFT JOIN jobs j ON j.id = l.job"
                    " LEFT JOIN engines e ON e.id = coalesce(a.engine, j.owner)"
                    " WHERE (l.tx, l.job, l.seq) > (?1, ?2, ?3)"
                    " ORDER BY l.tx, l.job, l.seq LIMIT ?4",
    /* The end is the counter (lines of a deleted tail keep their numbers used); max(tx) for a
     * database whose lines were all written before the counter. */
    [ST_LOG_FEED_END] = "SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM settings"
                        " WHERE key = " SQ_LOG_TX_KEY "), 0), (SELECT coalesce(max(tx), 0) FROM logs))",
    /* Created on the first write of lines one past the highest number in logs (a database
     * written by the first version 12, which numbered by max(tx) + 1), then only ever counted up:
     * numbers are never handed out twice, whatever is deleted. */
    [ST_LOG_TX_BUMP] = "INSERT INTO settings (key, value) VALUES (" SQ_LOG_TX_KEY ","
                       " (SELECT coalesce(max(tx), 0) + 1 FROM logs)) ON CONFLICT (key) DO UPDATE"
                       " SET value = CAST(value AS INTEGER) + 1",
    [ST_COUNTS] = "SELECT state, n FROM job_counts",
    [ST_COUNTS_ADD] = "UPDATE job_counts SET n = n + ?2 WHERE state = ?1",
    /* min(run_at) over the queue index (priority first) would read every queued job: instead,
     * hop from one distinct priority to the next and take each one's first run_at — a few index
     * seeks per priority in use, not one step per queued job (183 ms -> < 1 ms at 1M queued). */
    [ST_OLDEST_QUEUED] =
        "WITH RECURSIVE p(pr) AS ("
        " SELECT (SELECT priority FROM jobs INDEXED BY jobs_queue WHERE state = 'queued'"
        "         ORDER BY priority DESC LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT priority FROM jobs INDEXED BY jobs_queue"
        "         WHERE state = 'queued' AND priority < p.pr ORDER BY priority DESC LIMIT 1)"
        " FROM p WHERE p.pr IS NOT NULL)"
        " SELECT min((SELECT run_at FROM jobs INDEXED BY jobs_queue"
        "             WHERE state = 'queued' AND priority = p.pr"
        "             ORDER BY priority DESC, run_at LIMIT 1)) FROM p WHERE p.pr IS NOT NULL",
    [ST_OLDEST_DUE] = "SELECT min(run_at) FROM jobs INDEXED BY jobs_due"
                       " WHERE state = 'scheduled' AND run_at <= ?1",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
    [ST_SETTING_SET] = "INSERT INTO settings (key, value) VALUES (?1, ?2)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_SETTING_DEL] = "DELETE FROM settings WHERE key = ?1",
    [ST_ENGINE_INSERT] = "INSERT INTO engines (pid, host, started_at, lease_until)"
                         " VALUES (?1, ?2, ?3, ?4)",
    [ST_ENGINE_RENEW] = "UPDATE engines SET lease_until = ?2 WHERE id = ?1",
    [ST_ENGINE_GET] = "SELECT pid, host, lease_until FROM engines WHERE id = ?1",
    [ST_ENGINE_DELETE] = "DELETE FROM engines WHERE id = ?1",
    [ST_ENGINES_LIST] = "SELECT e.id, e.pid, e.host, e.started_at, e.lease_until,"
                        " (SELECT count(*) FROM jobs j INDEXED BY jobs_running"
                        " WHERE j.state = 'running' AND j.owner = e.id),"
                        " e.heartbeat_at, e.workers, e.busy, e.warm_vms, e.rss_bytes,"
                        " e.jobs_per_s_milli, e.version, e.slots, e.queues"
                        " FROM engines e ORDER BY e.id",
    [ST_ENGINE_HEARTBEAT] = "UPDATE engines SET lease_until = ?2, heartbeat_at = ?3, workers = ?4,"
                            " busy = ?5, warm_vms = ?6, rss_bytes = ?7, jobs_per_s_milli = ?8,"
                            " version = ?9, slots = ?10, queues = ?11 WHERE id = ?1",
    [ST_ENGINES_EXPIRED_DELETE] = "DELETE FROM engines WHERE lease_until < ?1 AND id <> ?2",
    /* Running jobs whose owner holds no live lease (expired before ?1, or the row is gone);
     * never the recovering engine's own (?2; 0 = none: ids start at 1). */
    [ST_ORPHANS] = "SELECT id, owner FROM jobs INDEXED BY jobs_running"
                   " WHERE state = 'running' AND NOT EXISTS"
                   " (SELECT 1 FROM engines e WHERE e.id = jobs.owner"
                   " AND (e.lease_until >= ?1 OR e.id = ?2))",
    [ST_RUNNING_OF_ENGINE] = "SELECT id FROM jobs INDEXED BY jobs_running"
                              " WHERE state = 'running' AND owner = ?1 ORDER BY id",
    [ST_CANCEL_REQUESTS] = "SELECT id FROM jobs INDEXED BY jobs_running WHERE state = 'running'"
                           " AND owner = ?1 AND cancel_requested = 1 ORDER BY id",
    [ST_RERUN] = "INSERT INTO jobs (id, type, binary_sha256, binary_name, payload, state, priority,"
                 " run_at, max_attempts, timeout_ms, memory_bytes, isolation, tags, created_at,"
                 " source_dir, rerun_of, payload_ext, queue)"
                 " SELECT " SQ_JOB_NEXT_ID ", type, binary_sha256, binary_name, payload, 'queued', priority, ?2,"
                 " coalesce(submitted_max_attempts, max_attempts), timeout_ms, memory_bytes,"
                 " isolation, tags, ?2, source_dir, id,"
                 " payload_ext, queue FROM jobs WHERE id = ?1",
    [ST_PAYLOAD_INSERT] = "INSERT INTO job_payloads (id, payload) VALUES (?1, ?2)",
    [ST_PAYLOAD_COPY] = "INSERT INTO job_payloads (id, payload)"
                        " SELECT ?2, payload FROM job_payloads WHERE id = ?1",
    [ST_DELETE_PAYLOAD] = "DELETE FROM job_payloads WHERE id = ?1",
    [ST_DELETE_LOGS] = "DELETE FROM logs WHERE job = ?1",
    [ST_DELETE_ATTEMPTS] = "DELETE FROM attempts WHERE job = ?1",
    [ST_DELETE_JOB] = "DELETE FROM jobs WHERE id = ?1",
    [ST_ATTEMPT_DATA_PUT] = "INSERT OR REPLACE INTO attempt_data (job, attempt, kind, size, bytes)"
                            " VALUES (?1, ?2, 2, ?3, ?4)",
    /* The newest job of a key created after ?2 whose state is one of ?3 (",queued,running,"),
     * other than job ?4 (a retry's own job; 0 for a submit or a rerun): read backwards on
     * job_unique_key, so a key's old jobs are never read. */
    [ST_UNIQUE_FIND] = "SELECT u.job, j.state, j.created_at FROM job_unique u INDEXED BY"
                       " job_unique_key JOIN jobs j ON j.id = u.job WHERE u.key = ?1"
                       " AND u.created_at > ?2 AND instr(?3, ',' || j.state || ',') > 0"
                       " AND u.job <> ?4 ORDER BY u.created_at DESC, u.job DESC LIMIT 1",
    [ST_UNIQUE_INSERT] = "INSERT INTO job_unique (job, key, created_at, period_ms, states)"
                         " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_UNIQUE_GET] = "SELECT key, period_ms, states FROM job_unique WHERE job = ?1",
    [ST_DELETE_UNIQUE] = "DELETE FROM job_unique WHERE job = ?1",
    /* before a retry raises max_attempts: the first raise keeps what was submitted */
    [ST_KEEP_MAX_ATTEMPTS] = "UPDATE jobs SET submitted_max_attempts = max_attempts"
                             " WHERE id = ?1 AND submitted_max_attempts IS NULL",
};

/* Schema version 1. Why the indexes look like this:
 * - jobs_queue covers only queued jobs, in claim order: the claim reads its head, so a million
 *   finished (or far-future scheduled) jobs never slow it down.
 * - jobs_due covers only scheduled jobs by run_at: promotion reads the due prefix.
 * - jobs_running covers only running jobs by owner: recovery and cancel polling.
 * - jobs_failed / jobs_cancelled list the problem states fast among a million succeeded jobs.
 * - There is deliberately no index on state for all rows: it would be rewritten on every
 *   transition. Counts per state live in job_counts, adjusted once per write transaction from the
 *   transitions the store made (see counts_flush). */
static const char schema_v1[] =
    "CREATE TABLE binaries ("
    "  sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),"
    "  name TEXT,"
    "  size INTEGER NOT NULL,"
    "  bytes BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  type TEXT NOT NULL CONSTRAINT type_nonempty CHECK (length(type) > 0),"
    "  binary_sha256 TEXT REFERENCES binaries (sha256),"
    "  binary_name TEXT,"
    "  payload TEXT NOT NULL DEFAULT '{}' CONSTRAINT payload_json CHECK (json_valid(payload)),"
    "  state TEXT NOT NULL," /* its values and moves are guarded by the triggers (state.c) */
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  run_at INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),"
    "  timeout_ms INTEGER NOT NULL DEFAULT 30000,"
    "  memory_bytes INTEGER NOT NULL DEFAULT 0,"
    "  isolation INTEGER NOT NULL DEFAULT 0,"
    "  tags TEXT NOT NULL DEFAULT '[]'"
    "    CONSTRAINT tags_array CHECK (json_valid(tags) AND json_type(tags) = 'array'),"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  result BLOB,"
    "  error TEXT,"
    "  rerun_of INTEGER,"
    "  owner INTEGER,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  source_dir TEXT,"
    "  log_count INTEGER NOT NULL DEFAULT 0,"
    "  log_dropped INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_queue ON jobs (priority DESC, run_at, id) WHERE state = 'queued';"
    "CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';"
    "CREATE INDEX jobs_running ON jobs (owner) WHERE state = 'running';"
    "CREATE INDEX jobs_failed ON jobs (state) WHERE state = 'failed';"
    "CREATE INDEX jobs_cancelled ON jobs (state) WHERE state = 'cancelled';"
    "CREATE INDEX jobs_rerun ON jobs (rerun_of) WHERE rerun_of IS NOT NULL;"
    "CREATE TABLE attempts ("
    "  job INTEGER NOT NULL,"
    "  number INTEGER NOT NULL,"
    "  engine INTEGER,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  wall_us INTEGER NOT NULL DEFAULT 0,"
    "  exits INTEGER NOT NULL DEFAULT 0,"
    "  host_calls INTEGER NOT NULL DEFAULT 0,"
    "  pages_dirtied INTEGER NOT NULL DEFAULT 0,"
    "  bytes_in INTEGER NOT NULL DEFAULT 0,"
    "  bytes_out INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT NOT NULL CHECK"
    "    (instr(',succeeded,failed,timeout,cancelled,recovered,', ',' || outcome || ',') > 0),"
    "  error TEXT,"
    "  recovered INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (job, number)) WITHOUT ROWID;"
    "CREATE TABLE logs ("
    "  job INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  line TEXT NOT NULL,"
    "  PRIMARY KEY (job, seq)) WITHOUT ROWID;"
    "CREATE TABLE engines ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: a zombie cannot renew a new id */
    "  pid INTEGER NOT NULL,"
    "  host TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL);"
    "CREATE TABLE job_counts ("
    "  state TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO job_counts (state, n) VALUES ('queued', 0), ('scheduled', 0), ('running', 0),"
    "  ('succeeded', 0), ('failed', 0), ('cancelled', 0);"
    "CREATE TABLE settings ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL) WITHOUT ROWID;";

static int migrate_v1(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db, schema_v1, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "creating the schema (version 1)");
    return 0;
}

/* Version 2: succeeded jobs get the partial index failed and cancelled already had, so listing
 * them newest first (the console's state filter) reads the index instead of every job: 95 ms ->
 * well under 1 ms with a million queued jobs. One index entry per success, appended in id order. */
static int migrate_v2(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "CREATE INDEX IF NOT EXISTS jobs_succeeded ON jobs (state) "
                          "WHERE state = 'succeeded';",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding the succeeded-jobs index (version 2)");
    return 0;
}

/* Version 3: reservations. A claim no longer moves a job to running: it inserts a small row here
 * (the job stays queued, no attempt charged, its own row untouched), and the job becomes running,
 * with attempts + 1 and started_at, when a worker really starts it. Recovery deletes the rows of
 * engines without a live lease: those jobs were never started, so nothing is charged. */
static int migrate_v3(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "CREATE TABLE IF NOT EXISTS claims ("
                          "  job INTEGER PRIMARY KEY,"
                          "  engine INTEGER NOT NULL,"
                          "  claimed_at INTEGER NOT NULL);",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding the claims table (version 3)");
    /* A version-2 database may hold jobs a version-2 engine claimed into running: they stay
     * running under that engine's lease and are recovered as before. */
    return 0;
}

/* Version 4: big payloads move out of the jobs row. SQLite rewrites a row's whole record (its
 * overflow pages too) whenever the record changes size, which every state change does: a job with
 * a 1 MB payload rewrote that megabyte on its claim, its start and its completion, and on a full
 * disk even a claim failed. Payloads over PAYLOAD_INLINE_MAX bytes now live in job_payloads
 * (written once, at submit) and the row keeps '{}' with payload_ext = 1; small ones stay inline
 * (a job row fits a page either way). Existing rows keep their payload where it is. */
static int migrate_v4(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "ALTER TABLE jobs ADD COLUMN payload_ext INTEGER NOT NULL DEFAULT 0;"
                          "CREATE TABLE IF NOT EXISTS job_payloads ("
                          "  id INTEGER PRIMARY KEY,"
                          "  payload TEXT NOT NULL CONSTRAINT payload_json CHECK"
                          "    (json_valid(payload)));",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "moving big payloads out of job rows (version 4)");
    return 0;
}

/* Version 5: engines carry their heartbeat and live figures (columns in store/common.c, the same
 * on PostgreSQL). Rows of running engines read as "no heartbeat yet" until their next beat. */
static int migrate_v5(struct sqlite_store *s, aspen_store_error *err)
{
    for (size_t i = 0; i < store_engine_v5_ncolumns; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "ALTER TABLE engines ADD COLUMN %s", store_engine_v5_columns[i]);
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_err(s, err, rc, "adding engines' heartbeats (version 5)");
    }
    return 0;
}

/* Version 6: attempt data, the blobs a finished attempt keeps (an ELF core, a replay record;
 * sqlite_attempt_data.c), in a table of their own so that attempt rows stay narrow. A trigger
 * deletes them with their job: it runs only when a job row is deleted (never on the hot path),
 * so delete, purge and retention keep working unchanged. */
static int migrate_v6(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "CREATE TABLE IF NOT EXISTS attempt_data ("
                          "  job INTEGER NOT NULL,"
                          "  attempt INTEGER NOT NULL,"
                          "  kind INTEGER NOT NULL,"
                          "  size INTEGER NOT NULL,"
                          "  bytes BLOB NOT NULL,"
                          "  PRIMARY KEY (job, attempt, kind));"
                          "CREATE TRIGGER IF NOT EXISTS attempt_data_with_job AFTER DELETE ON jobs"
                          "  BEGIN DELETE FROM attempt_data WHERE job = OLD.id; END;",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding attempt data (version 6)");
    return 0;
}

/* Version 7: schedules (periodic jobs), their occurrence keys and the scheduler lease (the SQL is
 * in store/schedule.c, beside PostgreSQL's). */
static int migrate_v7(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db, store_schedule_v7_sqlite, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding schedules (version 7)");
    return 0;
}

/* Version 9: an index per indexed whole-store sort key (store/sort.c, the same on PostgreSQL), so that a
 * sorted page of the console or `aspen jobs --sort` is an index range at any table size. What
 * they cost the engine's write path is measured in docs/STORE.md "Sorting". */
static int migrate_v9(struct sqlite_store *s, aspen_store_error *err)
{
    for (int k = 0; k < ASPEN_STORE_SORT_COUNT; k++) {
        char sql[256];
        if (store_sort_index_sql((aspen_store_sort)k, false, sql, sizeof sql) != 0)
            continue;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_err(s, err, rc, "adding the sort indexes (version 9)");
    }
    return 0;
}

/* Version 10: unique jobs and retention.
 * - job_unique holds the key of each job submitted with a uniqueness rule (docs/STORE.md "Unique
 *   jobs"), apart from jobs so that no job row, statement or index of the hot path changes; the
 *   submit looks a key up by (key, created_at) under the transaction's write lock.
 * - jobs_finished lists finished jobs per final state by when they finished (finished_at is set
 *   only in final states), so the retention pruner reads exactly the oldest ones of a state in
 *   small batches, however many newer ones there are. */
static int migrate_v10(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "CREATE TABLE IF NOT EXISTS job_unique ("
                          "  job INTEGER PRIMARY KEY,"
                          "  key TEXT NOT NULL,"
                          "  created_at INTEGER NOT NULL);"
                          "CREATE INDEX IF NOT EXISTS job_unique_key ON job_unique (key, created_at);"
                          "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, finished_at)"
                          "  WHERE finished_at IS NOT NULL;",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding unique keys and the finished-jobs index "
                                            "(version 10)");
    return 0;
}

/* Version 11: the metrics history, per-minute rollups of what each engine finished (the table's
 * text is store/metrics.c's, the same on PostgreSQL). */
static int migrate_v11(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db, store_metrics_v11_sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding the metrics history (version 11)");
    return 0;
}

/* Version 12: the log feed. Lines are keyed by (job, seq); a reader following every job needs an
 * order in which lines appear, so each write of lines numbers them with a counter (SQ_LOG_TX, a
 * row in settings that ST_LOG_TX_BUMP counts up first). SQLite writes one transaction at a time,
 * so a number once visible is never undercut by a later commit; lines older than the migration
 * keep 0.
 * The index is appended at its right edge: one more B-tree insert per line. */
static int query_int(struct sqlite_store *s, const char *sql, int64_t *out, const char *what,
                     aspen_store_error *err);
static int migrate_v12(struct sqlite_store *s, aspen_store_error *err)
{
    /* Idempotent, as the earlier steps are: a database whose version was set back by hand (the
     * tests' older databases) keeps its column and index. */
    int64_t has = 0;
    int code = query_int(s, "SELECT count(*) FROM pragma_table_info('logs') WHERE name = 'tx'", &has,
                         "adding the log feed (version 12)", err);
    if (code)
        return code;
    int rc = sqlite3_exec(s->db,
                          has ? "CREATE INDEX IF NOT EXISTS logs_feed ON logs (tx, job, seq);"
                              : "ALTER TABLE logs ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;"
                                "CREATE INDEX IF NOT EXISTS logs_feed ON logs (tx, job, seq);",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "adding the log feed (version 12)");
    return 0;
}

/* Version 13: job ids are never handed out twice. A rowid table gives a new row max(id) + 1, so
 * deleting the newest jobs (aspen delete, purge, the pruner) let the next submit take a deleted
 * job's id — and a script's saved id then named a different job. AUTOINCREMENT would say the
 * same but means rebuilding the jobs table (every index, minutes on a large database); instead a
 * trigger notes in settings the id of a deleted job that was the newest (rare: the pruner deletes
 * the oldest, so its WHEN — one seek to the table's right edge — is almost always false), and
 * SQ_JOB_NEXT_ID gives a new job one past that note while no larger id exists. PostgreSQL's
 * sequences never reuse a number: its version 13 has nothing to do. */
/* The trigger (as version 15 made it). settings.value is TEXT, so the noted id arrives there as
 * text, and SQLite orders every text after every number: version 13's max(CAST(value AS
 * INTEGER), excluded.value) took the text, so a later note of a lower id (the newest remaining job
 * deleted after the newest one: a purge of one state after another) lowered the floor, and the
 * next submits took deleted jobs' ids again. Both sides are integers now. */
#define SQ_JOB_ID_FLOOR_TRIGGER                                                                   \
    "CREATE TRIGGER IF NOT EXISTS jobs_id_floor AFTER DELETE ON jobs"                             \
    " WHEN OLD.id > coalesce((SELECT max(id) FROM jobs), 0)"                                      \
    " BEGIN INSERT INTO settings (key, value) VALUES (" SQ_JOB_ID_FLOOR_KEY ", OLD.id)"           \
    " ON CONFLICT (key) DO UPDATE"                                                                \
    " SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)); END;"

static int migrate_v13(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db, SQ_JOB_ID_FLOOR_TRIGGER, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "keeping job ids unique (version 13)");
    return 0;
}

/* Version 14: less index work on every job's state change (issue 7; docs/STORE.md "Indexes").
 * SQLite rewrites an index on an UPDATE only when the SET list names one of its columns or a
 * column of its WHERE: a start sets state, attempts, started_at and owner; a completion state,
 * attempts, started_at, finished_at, owner and result.
 * - jobs_succeeded / jobs_failed / jobs_cancelled, one partial index per final state, become one,
 *   jobs_final (state) over every finished job: the same (state, id) order a state's list reads
 *   newest first, one WHERE evaluated per write instead of three. A final state always has
 *   finished_at (store/state.c), and the readers add `finished_at IS NOT NULL` to a final state's
 *   filter so SQLite matches the index.
 * - jobs_sort_duration covers finished jobs only: its key (the run time) changes at the start and
 *   at the finish, so each job paid two deletes and two inserts; now one insert, at the finish.
 *   Every unfinished job sorts at -1, by id: the reader takes those from jobs_unfinished (id),
 *   whose columns no start writes, so a job costs it one insert at submit and one delete at its
 *   finish. A retry (back to queued, finished_at NULL again) moves the job back. */
/* Version 15: version 13's trigger replaced by one that compares integers (SQ_JOB_ID_FLOOR_TRIGGER
 * says why), and a floor it lowered raised again to the highest id anything still names: a
 * schedule's run (`aspen cron runs`) or a rerun's origin. Ids deleted with nothing left naming
 * them may have been handed out again before this; from here on none is. */
static int migrate_v15(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(
        s->db,
        "DROP TRIGGER IF EXISTS jobs_id_floor;" SQ_JOB_ID_FLOOR_TRIGGER
        "INSERT INTO settings (key, value) SELECT " SQ_JOB_ID_FLOOR_KEY ", m FROM"
        " (SELECT max(coalesce((SELECT max(job) FROM schedule_runs), 0),"
        "  coalesce((SELECT max(rerun_of) FROM jobs), 0)) AS m)"
        " WHERE m > coalesce((SELECT max(id) FROM jobs), 0)"
        " ON CONFLICT (key) DO UPDATE"
        " SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));",
        NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "keeping job ids unique after a purge (version 15)");
    return 0;
}

static int migrate_v14(struct sqlite_store *s, aspen_store_error *err)
{
    int rc = sqlite3_exec(s->db,
                          "DROP INDEX IF EXISTS jobs_succeeded;"
                          "DROP INDEX IF EXISTS jobs_failed;"
                          "DROP INDEX IF EXISTS jobs_cancelled;"
                          "CREATE INDEX IF NOT EXISTS jobs_final ON jobs (state)"
                          "  WHERE finished_at IS NOT NULL;"
                          "DROP INDEX IF EXISTS jobs_sort_duration;"
                          "CREATE INDEX jobs_sort_duration ON jobs (" STORE_DURATION_KEY ", id)"
                          "  WHERE finished_at IS NOT NULL;"
                          "CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (id)"
                          "  WHERE finished_at IS NULL;",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "narrowing the job indexes (version 14)");
    return 0;
}

/* Version 16 leaves room in PostgreSQL's sort indexes for a finished job's second entry
 * (pg_open.c). Nothing to do here: SQLite has no fill factor, and it writes these indexes only
 * when an UPDATE sets their columns, which no state change does. The version moves so one number
 * means one schema everywhere. */
static int migrate_v16(struct sqlite_store *s, aspen_store_error *err)
{
    (void)s;
    (void)err;
    return 0;
}

/* Version 17: what retry and rerun need to keep a unique job unique (issue 10, trial 10).
 * - job_unique keeps the rule's period and states beside the key (0, 0 on older rows: any age,
 *   the default states), so a retry checks the job's own rule and a rerun carries it on.
 * - jobs.submitted_max_attempts: the max attempts as submitted, noted by the first retry that
 *   raises max_attempts (NULL until then), so a rerun starts with what the job was submitted
 *   with rather than the retry's raise. A column nobody writes on the hot path: ADD COLUMN with
 *   no default rewrites nothing, and no index names it. */
static int migrate_v17(struct sqlite_store *s, aspen_store_error *err)
{
    static const struct {
        const char *table, *column, *sql;
    } add[] = {
        {"job_unique", "period_ms",
         "ALTER TABLE job_unique ADD COLUMN period_ms INTEGER NOT NULL DEFAULT 0"},
        {"job_unique", "states", "ALTER TABLE job_unique ADD COLUMN states INTEGER NOT NULL DEFAULT 0"},
        {"jobs", "submitted_max_attempts", "ALTER TABLE jobs ADD COLUMN submitted_max_attempts INTEGER"},
    };
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        /* idempotent, as version 12 is: a database whose version was set back keeps its columns */
        char q[200];
        snprintf(q, sizeof q, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
                 add[i].table, add[i].column);
        int64_t has = 0;
        int code = query_int(s, q, &has, "keeping unique rules and submitted attempts (version 17)",
                             err);
        if (code)
            return code;
        if (has)
            continue;
        int rc = sqlite3_exec(s->db, add[i].sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_err(s, err, rc,
                                    "keeping unique rules and submitted attempts (version 17)");
    }
    return 0;
}

/* Version 18: the queues an engine serves (the column in store/common.c, the same on PostgreSQL),
 * shown by aspen engines and the console's Engines pane. Idempotent as version 17 is. */
static int migrate_v18(struct sqlite_store *s, aspen_store_error *err)
{
    int64_t has = 0;
    int code = query_int(s, "SELECT count(*) FROM pragma_table_info('engines') WHERE name = 'queues'",
                         &has, "keeping the queues engines serve (version 18)", err);
    if (code || has)
        return code;
    char sql[160];
    snprintf(sql, sizeof sql, "ALTER TABLE engines ADD COLUMN %s", store_engine_v18_column);
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "keeping the queues engines serve (version 18)");
    return 0;
}

/* migrations[v] takes a database at version v to v + 1. */
static int (*const migrations[ASPEN_STORE_SCHEMA_VERSION])(struct sqlite_store *,
                                                           aspen_store_error *) = {
    migrate_v1,
    migrate_v2,
    migrate_v3,
    migrate_v4,
    migrate_v5,
    migrate_v6,
    migrate_v7,
    sq_migrate_queues, /* version 8: named queues (sqlite_queues.c) */
    migrate_v9,
    migrate_v10,
    migrate_v11,
    migrate_v12,
    migrate_v13,
    migrate_v14,
    migrate_v15,
    migrate_v16,
    migrate_v17,
    migrate_v18,
};

const char *store_stmt_sql(enum stmt_id id) { return stmt_sql[id]; }

/* ---- errors ------------------------------------------------------------------------------------ */

int store_sqlite_err(struct sqlite_store *s, aspen_store_error *err, int rc, const char *what)
{
    const char *path = s && s->base.name ? s->base.name : "(database)";
    const char *emsg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    int sys = s && s->db ? sqlite3_system_errno(s->db) : 0;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return store_err(err, ASPEN_STORE_EBUSY,
                         "database %s is locked: another connection kept it busy for more than "
                         "%d ms while %s. Nothing was written; try again, and if it persists find "
                         "the process holding it (fuser %s)",
                         path, s ? s->busy_timeout_ms : 0, what, path);
    case SQLITE_NOTADB:
        /* not an SQLite file at all: most likely --db names the wrong file (a typo, a config file),
         * so moving it aside would be harmful advice */
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "%s is not an SQLite database (SQLite: %s) while %s. It was left "
                         "untouched: check that --db or $ASPEN_DB names your Aspen database (a "
                         "new one is made with --create at a path that does not exist yet)",
                         path, emsg, what);
    case SQLITE_CORRUPT:
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "database %s is corrupt or not a database (SQLite: %s) while %s. It was "
                         "left untouched: restore it from a backup, or move it aside (mv %s %s.bad) "
                         "and let aspen create a new one",
                         path, emsg, what, path, path);
    case SQLITE_FULL:
        return store_err(err, ASPEN_STORE_EFULL,
                         "disk full while %s in %s (SQLite: %s): the transaction was rolled back "
                         "and everything committed before is intact. Free space on the disk that "
                         "holds the database and try again",
                         what, path, emsg);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return store_err(err, ASPEN_STORE_EPERM,
                         "cannot write database %s while %s (SQLite: %s): check the permissions "
                         "of the file, of %s-wal and %s-shm, and of its directory",
                         path, what, emsg, path, path);
    case SQLITE_CANTOPEN:
        return store_err(err, sys == EACCES || sys == EPERM ? ASPEN_STORE_EPERM : ASPEN_STORE_EIO,
                         "cannot open database %s while %s (SQLite: %s%s%s): check the path and "
                         "the permissions of the file and its directory, or pass --db",
                         path, what, emsg, sys ? ", " : "", sys ? strerror(sys) : "");
    case SQLITE_NOMEM:
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory while %s", what);
    case SQLITE_TOOBIG:
        return store_err(err, ASPEN_STORE_ETOOBIG, "value too large while %s (SQLite: %s)", what,
                         emsg);
    case SQLITE_CONSTRAINT:
        if (strstr(emsg, "illegal job state transition"))
            return store_err(err, ASPEN_STORE_ESTATE,
                             "the database refused an illegal job state transition while %s", what);
        if (strstr(emsg, "tags_array"))
            return store_err(err, ASPEN_STORE_EINVAL,
                             "tags must be a JSON array of strings like [\"a\",\"b\"] (while %s)",
                             what);
        if (strstr(emsg, "payload_json"))
            return store_err(err, ASPEN_STORE_EINVAL,
                             "payload is not valid JSON (while %s): fix it, e.g. {\"key\":\"value\"}",
                             what);
        if (strstr(emsg, "type_nonempty"))
            return store_err(err, ASPEN_STORE_EINVAL, "job type must not be empty (while %s)",
                             what);
        return store_err(err, ASPEN_STORE_EINVAL, "the database refused a value while %s: %s",
                         what, emsg);
    case SQLITE_IOERR:
        if (sys == ENOSPC || sys == EDQUOT)
            return store_err(err, ASPEN_STORE_EFULL,
                             "disk full while %s in %s (%s): the transaction was rolled back and "
                             "everything committed before is intact. Free space and try again",
                             what, path, strerror(sys));
        if (sys == EACCES || sys == EPERM || sys == EROFS)
            return store_err(err, ASPEN_STORE_EPERM,
                             "cannot write database %s while %s (%s): check its permissions", path,
                             what, strerror(sys));
        return store_err(err, ASPEN_STORE_EIO,
                         "I/O error on database %s while %s (SQLite: %s%s%s): check the disk "
                         "(dmesg); the last committed state is intact",
                         path, what, emsg, sys ? ", " : "", sys ? strerror(sys) : "");
    case SQLITE_ERROR:
        if (strstr(emsg, "no such table") || strstr(emsg, "no such column") ||
            strstr(emsg, "no such index")) {
            /* Someone changed the file under us: a newer aspen migrated it, or it was damaged. */
            int64_t version = 0;
            sqlite3_stmt *st = NULL;
            if (s && s->db &&
                sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
            if (version > ASPEN_STORE_SCHEMA_VERSION)
                return store_err(err, ASPEN_STORE_ENEWER,
                                 "database %s now has schema version %lld, newer than this aspen "
                                 "(%d) (SQLite: %s while %s): upgrade aspen, or use the aspen that "
                                 "wrote it",
                                 path, (long long)version, ASPEN_STORE_SCHEMA_VERSION, emsg, what);
            return store_err(err, ASPEN_STORE_ESCHEMA,
                             "database %s is missing part of Aspen's schema (SQLite: %s) while %s: "
                             "it was damaged or changed by another program. Restore it from a "
                             "backup, or move it aside (mv %s %s.bad) and let aspen create a new "
                             "one",
                             path, emsg, what, path, path);
        }
        return store_err(err, ASPEN_STORE_EIO, "SQLite failed on %s while %s: %s (code %d)", path,
                         what, emsg, rc);
    default:
        return store_err(err, ASPEN_STORE_EIO, "SQLite failed on %s while %s: %s (code %d)", path,
                         what, emsg, rc);
    }
}

/* ---- statements and transactions ---------------------------------------------------------------- */

sqlite3_stmt *store_stmt(struct sqlite_store *s, enum stmt_id id, aspen_store_error *err)
{
    sqlite3_stmt *st = s->st[id];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_err(s, err, rc, "preparing a statement");
        return NULL;
    }
    s->st[id] = st;
    return st;
}

static int run_simple(struct sqlite_store *s, enum stmt_id id, const char *what,
                      aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, id, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        int code = store_sqlite_err(s, err, rc, what);
        sqlite3_reset(st);
        return code;
    }
    sqlite3_reset(st);
    return 0;
}

void counts_note(struct sqlite_store *s, aspen_store_state from, aspen_store_state to, int64_t n)
{
    if (from >= 0 && from < ASPEN_STORE_STATE_COUNT)
        s->count_delta[from] -= n;
    if (to >= 0 && to < ASPEN_STORE_STATE_COUNT)
        s->count_delta[to] += n;
}

/* Writes the transaction's net state changes into job_counts (at most six small updates). */
static int counts_flush(struct sqlite_store *s, aspen_store_error *err)
{
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++) {
        if (!s->count_delta[i])
            continue;
        sqlite3_stmt *st = store_stmt(s, ST_COUNTS_ADD, err);
        if (!st)
            return err ? err->code : ASPEN_STORE_EIO;
        sqlite3_bind_text(st, 1, aspen_store_state_name((aspen_store_state)i), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, s->count_delta[i]);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return store_sqlite_err(s, err, rc, "updating job counts");
    }
    memset(s->count_delta, 0, sizeof s->count_delta);
    return 0;
}

int tx_begin(struct sqlite_store *s, aspen_store_error *err)
{
    memset(s->count_delta, 0, sizeof s->count_delta);
    if (s->read_only)
        return store_err(err, ASPEN_STORE_EPERM,
                         "database %s was opened read-only: open it without read-only to change it",
                         s->base.name);
    return run_simple(s, ST_BEGIN_IMMEDIATE, "starting a write transaction", err);
}

int tx_begin_read(struct sqlite_store *s, aspen_store_error *err)
{
    return run_simple(s, ST_BEGIN_DEFERRED, "starting a read transaction", err);
}

int tx_commit(struct sqlite_store *s, const char *what, aspen_store_error *err)
{
    int code = counts_flush(s, err);
    if (code) {
        tx_rollback(s);
        return code;
    }
    code = run_simple(s, ST_COMMIT, what, err);
    if (code)
        tx_rollback(s);
    return code;
}

void tx_rollback(struct sqlite_store *s)
{
    memset(s->count_delta, 0, sizeof s->count_delta);
    if (!sqlite3_get_autocommit(s->db))
        run_simple(s, ST_ROLLBACK, "rolling back", NULL);
}

/* ---- open --------------------------------------------------------------------------------------- */

/* One integer from a pragma or query; rc-mapped error on failure. */
static int query_int(struct sqlite_store *s, const char *sql, int64_t *out, const char *what,
                     aspen_store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK ? 0 : store_sqlite_err(s, err, rc, what);
    sqlite3_finalize(st);
    return code;
}

/* Checks made before SQLite opens anything, so the user hears about the directory or the file's
 * permissions rather than a bare "unable to open database file". */
static int check_path(const char *path, const aspen_store_options *o, aspen_store_error *err)
{
    if (!path || !*path)
        return store_err(err, ASPEN_STORE_EINVAL, "no database path given: pass --db PATH");
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return 0;
    char *copy = store_strdup(path);
    if (!copy)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    struct stat st;
    int code = 0;
    if (stat(dir, &st) != 0 && errno != ENOENT && errno != ENOTDIR) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "cannot reach database directory %s: %s: fix the permissions of the "
                         "directories on its path or pass --db with another path",
                         dir, strerror(errno));
        goto free_copy;
    }
    if (stat(dir, &st) != 0) {
        code = store_err(err, ASPEN_STORE_ENODIR,
                         "database directory %s does not exist: create it (mkdir -p %s) or pass "
                         "--db with another path",
                         dir, dir);
        goto free_copy;
    }
    if (!S_ISDIR(st.st_mode)) {
        code = store_err(err, ASPEN_STORE_ENODIR,
                         "%s is not a directory, so database %s cannot live there: pass --db "
                         "with another path",
                         dir, path);
        goto free_copy;
    }
    if (stat(path, &st) != 0 && errno != ENOENT) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "cannot reach database %s: %s: fix the permissions of directory %s "
                         "(it must be searchable) or pass --db with another path",
                         path, strerror(errno), dir);
        goto free_copy;
    }
    if (stat(path, &st) != 0) {
        if (o->read_only || o->no_create) {
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "database %s does not exist: check the path or pass --db", path);
            goto free_copy;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            code = store_err(err, ASPEN_STORE_EPERM,
                             "cannot create database %s: no write permission in directory %s: "
                             "fix its permissions or pass --db with another path",
                             path, dir);
            goto free_copy;
        }
        goto free_copy;
    }
    if (S_ISDIR(st.st_mode)) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "%s is a directory, not a database file: pass --db DIR/aspen.db", path);
        goto free_copy;
    }
    if (access(path, o->read_only ? R_OK : R_OK | W_OK) != 0) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "cannot %s database %s: permission denied (mode %04o, owner uid %u; you "
                         "are uid %u): fix its permissions (chmod u+rw %s) or pass --db",
                         o->read_only ? "read" : "read and write", path,
                         (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid(),
                         path);
        goto free_copy;
    }
    if (!o->read_only && access(dir, W_OK | X_OK) != 0) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "cannot write in directory %s, where SQLite keeps %s-wal and %s-shm "
                         "beside the database: fix its permissions or pass --db",
                         dir, path, path);
        goto free_copy;
    }
free_copy:
    free(copy);
    return code;
}

/* Reads the header and refuses anything that is not an Aspen database we understand. */
static int check_header(struct sqlite_store *s, int64_t *version, aspen_store_error *err)
{
    int64_t app = 0, objects = 0;
    int code = query_int(s, "PRAGMA application_id", &app, "reading the database header", err);
    if (code)
        return code;
    code = query_int(s, "PRAGMA user_version", version, "reading the schema version", err);
    if (code)
        return code;
    if (app != 0 && app != ASPEN_APPLICATION_ID)
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "%s is an SQLite database of another program (application_id 0x%08llx), "
                         "not an Aspen database. It was left untouched: pass --db with another "
                         "path",
                         s->base.name, (unsigned long long)app);
    if (app == 0) {
        code = query_int(s, "SELECT count(*) FROM sqlite_master", &objects,
                         "reading the database schema", err);
        if (code)
            return code;
        if (objects > 0 || *version != 0)
            return store_err(err, ASPEN_STORE_ECORRUPT,
                             "%s is an SQLite database but not an Aspen one (it has %lld schema "
                             "objects and no Aspen header). It was left untouched: pass --db "
                             "with another path",
                             s->base.name, (long long)objects);
    }
    if (*version > ASPEN_STORE_SCHEMA_VERSION)
        return store_err(err, ASPEN_STORE_ENEWER,
                         "database schema version %lld is newer than this aspen (%d): upgrade "
                         "aspen, or use the aspen that wrote %s",
                         (long long)*version, ASPEN_STORE_SCHEMA_VERSION, s->base.name);
    return 0;
}

static int migrate(struct sqlite_store *s, aspen_store_error *err)
{
    int code = tx_begin(s, err);
    if (code)
        return code;
    /* Read again under the write lock: another process may have migrated meanwhile. */
    int64_t version = 0;
    code = check_header(s, &version, err);
    if (code)
        goto rollback;
    for (int64_t v = version; v < ASPEN_STORE_SCHEMA_VERSION; v++) {
        code = migrations[v](s, err);
        if (code)
            goto rollback;
    }
    if (version < ASPEN_STORE_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 ASPEN_STORE_SCHEMA_VERSION, ASPEN_APPLICATION_ID);
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            code = store_sqlite_err(s, err, rc, "recording the schema version");
            goto rollback;
        }
    }
    return tx_commit(s, "committing the schema", err);
rollback:
    tx_rollback(s);
    return code;
}

/* SQLite keeps global malloc statistics behind a mutex by default: a lock per allocation on the
 * hot path that we never read. Turn it off once per process, before SQLite initialises (if some
 * other code initialised it already, the call is refused and nothing changes). */
static void sqlite_global_setup(void) { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int store_sqlite_open(const char *path, const aspen_store_options *opts, aspen_store **out,
                      aspen_store_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_setup);
    const aspen_store_options o = *opts;
    int code = check_path(path, &o, err);
    if (code)
        return code;

    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory opening %s", path);
    s->base.ops = &store_sqlite_ops;
    s->base.name = store_strdup(path);
    s->base.log_cap = o.log_cap > 0 ? o.log_cap : 1000;
    s->busy_timeout_ms = o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 5000;
    s->read_only = o.read_only;
    if (!s->base.name) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory opening %s", path);
        goto free_handle;
    }

    int flags = (o.read_only ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | (o.no_create ? 0 : SQLITE_OPEN_CREATE)) |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        code = store_sqlite_err(s, err, rc, "opening it");
        goto close_db;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sq_busy_install(s->db, &s->busy, s->busy_timeout_ms);

    int64_t version = 0;
    code = check_header(s, &version, err);
    if (code)
        goto close_db;

    if (o.read_only) {
        if (version < ASPEN_STORE_SCHEMA_VERSION) {
            code = store_err(err, ASPEN_STORE_EINVAL,
                             "database %s has schema version %lld, older than this aspen (%d): "
                             "open it once writable so it can be upgraded",
                             path, (long long)version, ASPEN_STORE_SCHEMA_VERSION);
            goto close_db;
        }
    } else {
        /* WAL: readers never block the writer and the writer never blocks readers. NORMAL
         * synchronous is durable across process crashes (only an OS crash can lose the last
         * commits, never corrupt the file). */
        rc = sqlite3_exec(s->db,
                          "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                          " PRAGMA foreign_keys = OFF; PRAGMA cache_size = -16384;"
                          " PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            code = store_sqlite_err(s, err, rc, "setting up WAL mode");
            goto close_db;
        }
        store_checkpointer_init(s); /* WAL checkpoints off this connection: sqlite_checkpoint.c */
        if (version < ASPEN_STORE_SCHEMA_VERSION) {
            code = migrate(s, err);
            if (code)
                goto close_db;
        }
    }
    *out = &s->base;
    return 0;

close_db:
    sqlite3_close_v2(s->db);
free_handle:
    free(s->base.name);
    free(s);
    return code;
}

void sq_close(aspen_store *base)
{
    struct sqlite_store *s = sq(base);
    if (!s)
        return;
    store_checkpointer_stop(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sq_queues_close(s);
    for (int k = 0; k < GROUP_KINDS; k++)
        for (int i = 0; i <= GROUP_LOG2_MAX; i++)
            sqlite3_finalize(s->group_st[k][i]);
    for (int k = 0; k < SQ_WRITE_SHAPES; k++)
        for (int i = 0; i <= GROUP_LOG2_MAX; i++)
            sqlite3_finalize(s->write_shape[k].st[i]);
    sqlite3_close_v2(s->db);
    free(s->base.name);
    free(s);
}

static int quick_check(struct sqlite_store *s, aspen_store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "checking the database");
    int code = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0)
            code = store_err(err, ASPEN_STORE_ECORRUPT,
                             "database %s is corrupt: restore it from a backup, or move it "
                             "aside (mv %s %s.bad) and let aspen create a new one (SQLite's "
                             "check: %.160s)",
                             s->base.name, s->base.name, s->base.name, r ? r : "?");
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "checking the database");
    }
    sqlite3_finalize(st);
    return code;
}

/* The real counts per state (full scan), into real[]. */
static int recount_into(struct sqlite_store *s, int64_t real[ASPEN_STORE_STATE_COUNT],
                        aspen_store_error *err)
{
    memset(real, 0, sizeof(int64_t) * ASPEN_STORE_STATE_COUNT);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT state, count(*) FROM jobs GROUP BY state", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "counting jobs");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = state_from_text(sqlite3_column_text(st, 0));
        if (state >= 0)
            real[state] = sqlite3_column_int64(st, 1);
    }
    int code = rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "counting jobs");
    sqlite3_finalize(st);
    return code;
}

int sq_check(aspen_store *base, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = quick_check(s, err);
    if (code)
        return code;
    int64_t kept[ASPEN_STORE_STATE_COUNT], real[ASPEN_STORE_STATE_COUNT];
    code = sq_counts(&s->base, kept, err);
    if (!code)
        code = recount_into(s, real, err);
    if (code)
        return code;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if (kept[i] != real[i])
            return store_err(
                err, ASPEN_STORE_EIO,
                "job counts drifted in %s (%s: kept %lld, actual %lld), probably after "
                "rows were changed by hand: run aspen_store_recount",
                s->base.name, aspen_store_state_name((aspen_store_state)i), (long long)kept[i],
                (long long)real[i]);
    return 0;
}

int sq_recount(aspen_store *base, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int64_t real[ASPEN_STORE_STATE_COUNT];
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = recount_into(s, real, err);
    if (code)
        goto rollback;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE job_counts SET n = %lld WHERE state = '%s'",
                 (long long)real[i], aspen_store_state_name((aspen_store_state)i));
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            code = store_sqlite_err(s, err, rc, "rewriting job counts");
            goto rollback;
        }
    }
    return tx_commit(s, "rewriting job counts", err);
rollback:
    tx_rollback(s);
    return code;
}

/* ---- settings and change detection -------------------------------------------------------------- */

int sq_setting_set(aspen_store *base, const char *key, const char *value, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st = store_stmt(s, value ? ST_SETTING_SET : ST_SETTING_DEL, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    if (s->read_only)
        return tx_begin(s, err); /* the read-only message */
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "writing a setting");
    sqlite3_reset(st);
    return code;
}

int sq_setting_get(aspen_store *base, const char *key, char **value, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *value = NULL;
    sqlite3_stmt *st = store_stmt(s, ST_SETTING_GET, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        *value = store_strdup((const char *)sqlite3_column_text(st, 0));
        if (!*value)
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a setting");
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "reading a setting");
    }
    sqlite3_reset(st);
    return code;
}

int sq_checkpoint(aspen_store *base, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    if (s->read_only)
        return 0;
    int busy = 0, log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc == SQLITE_BUSY)
        busy = 1; /* a reader still uses the log: what could be copied was copied */
    else if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "checkpointing the write-ahead log");
    (void)busy;
    return 0;
}

int sq_data_version(aspen_store *base, uint64_t *version, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st = store_stmt(s, ST_DATA_VERSION, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        *version = (uint64_t)sqlite3_column_int64(st, 0);
    else
        code = store_sqlite_err(s, err, rc, "reading the data version");
    sqlite3_reset(st);
    return code;
}

/* SQLite has no announcements of new work: a waiting engine polls PRAGMA data_version, which
 * reads shared memory and costs microseconds. */
static int sq_wait_fd(aspen_store *s, int *fd, aspen_store_error *err)
{
    (void)s, (void)err;
    *fd = -1;
    return 0;
}

static int sq_notified(aspen_store *s, bool *woken, aspen_store_error *err)
{
    (void)s, (void)err;
    *woken = false;
    return 0;
}

/* ---- the ops table ------------------------------------------------------------------------------ */

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .check = sq_check,
    .recount = sq_recount,
    .setting_set = sq_setting_set,
    .setting_get = sq_setting_get,
    .checkpoint = sq_checkpoint,
    .data_version = sq_data_version,
    .put_binary = sq_put_binary,
    .get_binary = sq_get_binary,
    .submit_batch = sq_submit_batch,
    .queue_set = sq_queue_set,
    .queues = sq_queues,
    .queue_remove = sq_queue_remove,
    .claim = sq_claim,
    .unclaim = sq_unclaim,
    .append_logs = sq_append_logs,
    .commit = sq_commit,
    .release = sq_release,
    .cancel = sq_cancel,
    .rerun = sq_rerun,
    .retry = sq_retry,
    .delete = sq_delete,
    .job_unique_rule = sq_job_unique_rule,
    .prune = sq_prune,
    .prune_count = sq_prune_count,
    .delete_jobs = sq_delete_jobs,
    .purge = sq_purge,
    .engine_register = sq_engine_register,
    .engine_renew = sq_engine_renew,
    .engine_unregister = sq_engine_unregister,
    .engine_heartbeat = sq_engine_heartbeat,
    .engines = sq_engines,
    .recover = sq_recover,
    .cancel_requests = sq_cancel_requests,
    .get = sq_get,
    .list = sq_list,
    .count = sq_count,
    .retry_failed = sq_retry_failed,
    .cancel_matching = sq_cancel_matching,
    .counts = sq_counts,
    .oldest_waiting = sq_oldest_waiting,
    .attempts = sq_attempts,
    .logs = sq_logs,
    .log_feed = sq_log_feed,
    .log_feed_end = sq_log_feed_end,
    .put_attempt_data = sq_put_attempt_data,
    .get_attempt_data = sq_get_attempt_data,
    .list_attempt_data = sq_list_attempt_data,
    .wait_fd = sq_wait_fd,
    .notified = sq_notified,
    .schedule = &store_sqlite_schedule_ops,
    .set_priority = sq_set_priority,
    .run_now = sq_run_now,
    .snooze = sq_snooze,
    .snooze_matching = sq_snooze_matching,
    .metrics_write = sq_metrics_write,
    .metrics_rows = sq_metrics_rows,
    .metrics_prune = sq_metrics_prune,
};
