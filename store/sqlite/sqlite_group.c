/* sqlite_group.c — the group commit's writes in batches (SQLite backend). sq_commit (sqlite_jobs.c)
 * reads each job, takes its reservation and decides what it becomes one job at a time, as before;
 * what it then writes — the attempt row, the log lines and the job row — waits here, and goes to
 * SQLite GROUP_ROWS rows at a time: multi-row INSERTs for the attempts and the log lines and one
 * UPDATE … FROM (VALUES …) for the job rows, instead of a statement per row. A claim's
 * reservations (claims rows) go the same way (group_reserve).
 *
 * Why: SQLite's cost per statement (step, halt, reset, opening and closing a cursor on the table
 * and each index the UPDATE may change — seven for a state change) is paid once per batch instead
 * of once per job. Measured with callgrind (docs/BENCHMARKS.md): the job row's UPDATE 32,100 ->
 * 26,700 instructions per job, the attempt's INSERT 12,200 -> 8,500, in batches of 32.
 *
 * Rules that keep it equal to writing each job at once:
 *   - a job is read at most once per batch: sq_commit flushes before reading a job that has a
 *     write waiting (a start mark and the completion of the same job in one commit), so every
 *     read sees the writes before it and every UPDATE's WHERE state = <state read> still holds;
 *   - the order per job stays attempt, log lines, job row: an attempt row SQLite refuses
 *     (a constraint: that (job, number) exists) refuses that job alone, as before — the batch is
 *     redone row by row to find it, and its log lines and row are not written; a log line it
 *     refuses undoes the batched lines (a savepoint) and they are written job by job;
 *   - counts and final states are noted only once the row is written. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The batched statements for n rows (n a power of two up to GROUP_ROWS; a single attempt or
 * reservation uses the cached single-row statement, a single job row its shape's). */
/* The job-row UPDATE names only the columns its rows change (group_write_sql): SQLite maintains
 * an index on an UPDATE only when the SET list names one of the index's columns or a column of its
 * WHERE, binds and copies every VALUES column twice, and evaluates every SET term per row. A
 * completion changes state, attempts, started_at, finished_at, owner and result; the full list
 * also wrote run_at, max_attempts, cancel_requested, the log counts and the CASEs for error and
 * result (measured: 1,150 instructions per job, docs/BENCHMARKS.md). Rows are batched per set of
 * columns. */
enum {
    WRITE_STATE = 1u << 0,
    WRITE_RUN_AT = 1u << 1,
    WRITE_ATTEMPTS = 1u << 2,
    WRITE_MAX_ATTEMPTS = 1u << 3,
    WRITE_STARTED = 1u << 4,
    WRITE_FINISHED = 1u << 5,
    WRITE_OWNER = 1u << 6,
    WRITE_CANCEL = 1u << 7,
    WRITE_LOG_COUNT = 1u << 8,
    WRITE_LOG_DROPPED = 1u << 9,
    WRITE_ERROR = 1u << 10,
    WRITE_RESULT = 1u << 11,
    WRITE_COLUMNS = 12,
    WRITE_ALL = (1u << WRITE_COLUMNS) - 1,
};
static const char *const write_column[WRITE_COLUMNS] = {
    "state",  "run_at",           "attempts",  "max_attempts", "started_at", "finished_at",
    "owner",  "cancel_requested", "log_count", "log_dropped",  "error",      "result"};
#define ATTEMPT_HEAD                                                                               \
    "INSERT INTO attempts (job, number, engine, started_at, finished_at, wall_us, exits,"          \
    " host_calls, pages_dirtied, bytes_in, bytes_out, outcome, error, recovered) VALUES "
#define ATTEMPT_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define ATTEMPT_PARAMS 14
#define LOG_HEAD "INSERT INTO logs (job, seq, attempt, time_ms, line, tx) VALUES "
#define LOG_ROW "(?,?,?,?,?," SQ_LOG_TX ")"
#define LOG_PARAMS 5
/* Reservations, inserted by a claim GROUP_ROWS at a time (the start still takes each with its own
 * DELETE: one DELETE … WHERE job IN (…) per batch measured 300 instructions per job more). */
#define CLAIM_HEAD "INSERT INTO claims (job, engine, claimed_at) VALUES "
#define CLAIM_ROW "(?,?,?)"
#define CLAIM_PARAMS 3

static int popcount(unsigned v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

char *group_write_sql(unsigned columns, size_t rows)
{
    columns &= WRITE_ALL;
    if (!columns)
        columns = WRITE_STATE; /* SET needs a term; the row's state is bound to itself */
    int ncols = popcount(columns);
    /* "col = v.columnNN," per column, "(?,…)," per row, and the fixed text */
    size_t len = 128 + (size_t)ncols * 48 + rows * (2 * (size_t)ncols + 8);
    char *sql = malloc(len);
    if (!sql)
        return NULL;
    size_t at = (size_t)snprintf(sql, len, "UPDATE jobs SET ");
    int v = 2; /* v.column1 is the id */
    for (int c = 0; c < WRITE_COLUMNS; c++)
        if (columns & (1u << c))
            at += (size_t)snprintf(sql + at, len - at, "%s%s = v.column%d", v > 2 ? ", " : "",
                                   write_column[c], v), v++;
    at += (size_t)snprintf(sql + at, len - at, " FROM (VALUES ");
    for (size_t r = 0; r < rows; r++) {
        at += (size_t)snprintf(sql + at, len - at, "%s(?", r ? "," : "");
        for (int k = 0; k < ncols + 1; k++) /* the columns and the state the row must be in */
            at += (size_t)snprintf(sql + at, len - at, ",?");
        at += (size_t)snprintf(sql + at, len - at, ")");
    }
    snprintf(sql + at, len - at, ") AS v WHERE jobs.id = v.column1 AND jobs.state = v.column%d", v);
    return sql;
}

char *group_sql(enum group_stmt kind, size_t rows)
{
    if (kind == GROUP_WRITE)
        return group_write_sql(WRITE_ALL, rows);
    static const char *const heads[GROUP_KINDS] = {NULL, ATTEMPT_HEAD, LOG_HEAD, CLAIM_HEAD};
    static const char *const row_sql[GROUP_KINDS] = {NULL, ATTEMPT_ROW, LOG_ROW, CLAIM_ROW};
    if ((unsigned)kind >= GROUP_KINDS)
        return NULL;
    const char *head = heads[kind], *row = row_sql[kind];
    size_t len = strlen(head) + rows * (strlen(row) + 1) + 1;
    char *sql = malloc(len);
    if (!sql)
        return NULL;
    size_t at = (size_t)snprintf(sql, len, "%s", head);
    for (size_t i = 0; i < rows; i++)
        at += (size_t)snprintf(sql + at, len - at, "%s%s", i ? "," : "", row);
    return sql;
}

/* Prepares `sql` (generated text, freed here; NULL when generating it ran out of memory) into
 * the cache slot, which is left NULL on failure. */
static sqlite3_stmt *group_prepare(struct sqlite_store *s, sqlite3_stmt **slot, char *sql,
                                   aspen_store_error *err)
{
    if (!sql) {
        store_err(err, ASPEN_STORE_ENOMEM, "out of memory preparing a group commit");
        return NULL;
    }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    free(sql);
    if (rc != SQLITE_OK) {
        store_sqlite_err(s, err, rc, "preparing a group commit's statement");
        *slot = NULL;
        return NULL;
    }
    return *slot;
}

/* The cached batch statement of `kind` for 2^log2 rows (log2 >= 1), reset. Its parameters keep
 * their last values: every one is bound again before each step (clearing 500 bindings cost
 * more than a row). */
static sqlite3_stmt *group_stmt(struct sqlite_store *s, enum group_stmt kind, int log2,
                                aspen_store_error *err)
{
    sqlite3_stmt **slot = &s->group_st[kind][log2];
    if (*slot) {
        sqlite3_reset(*slot);
        return *slot;
    }
    return group_prepare(s, slot, group_sql(kind, (size_t)1 << log2), err);
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* The columns an item's write changes: those whose value differs from the row as read (or that
 * the completion sets: error, result). */
static unsigned write_columns(const struct group_item *it)
{
    const struct store_job_row *b = &it->before, *a = &it->after;
    unsigned c = 0;
    c |= a->state != b->state ? WRITE_STATE : 0;
    c |= a->run_at != b->run_at ? WRITE_RUN_AT : 0;
    c |= a->attempts != b->attempts ? WRITE_ATTEMPTS : 0;
    c |= a->max_attempts != b->max_attempts ? WRITE_MAX_ATTEMPTS : 0;
    c |= a->started_at != b->started_at ? WRITE_STARTED : 0;
    c |= a->finished_at != b->finished_at ? WRITE_FINISHED : 0;
    c |= a->owner != b->owner ? WRITE_OWNER : 0;
    c |= a->cancel_requested != b->cancel_requested ? WRITE_CANCEL : 0;
    c |= a->log_count != b->log_count ? WRITE_LOG_COUNT : 0;
    c |= a->log_dropped != b->log_dropped ? WRITE_LOG_DROPPED : 0;
    c |= a->set_error ? WRITE_ERROR : 0;
    c |= a->set_result ? WRITE_RESULT : 0;
    return c ? c : WRITE_STATE;
}

/* Binds one row of a write that sets `columns`, from parameter b + 1 on; returns the next b. */
static int bind_write(sqlite3_stmt *st, int b, unsigned columns, const struct group_item *it)
{
    const struct store_job_row *a = &it->after;
    sqlite3_bind_int64(st, ++b, it->before.id);
    if (columns & WRITE_STATE)
        sqlite3_bind_text(st, ++b, aspen_store_state_name(a->state), -1, SQLITE_STATIC);
    if (columns & WRITE_RUN_AT)
        sqlite3_bind_int64(st, ++b, a->run_at);
    if (columns & WRITE_ATTEMPTS)
        sqlite3_bind_int(st, ++b, a->attempts);
    if (columns & WRITE_MAX_ATTEMPTS)
        sqlite3_bind_int(st, ++b, a->max_attempts);
    if (columns & WRITE_STARTED)
        bind_opt(st, ++b, a->started_at);
    if (columns & WRITE_FINISHED)
        bind_opt(st, ++b, a->finished_at);
    if (columns & WRITE_OWNER)
        bind_opt(st, ++b, a->owner);
    if (columns & WRITE_CANCEL)
        sqlite3_bind_int(st, ++b, a->cancel_requested);
    if (columns & WRITE_LOG_COUNT)
        sqlite3_bind_int(st, ++b, a->log_count);
    if (columns & WRITE_LOG_DROPPED)
        sqlite3_bind_int64(st, ++b, a->log_dropped);
    if (columns & WRITE_ERROR) {
        if (a->error)
            sqlite3_bind_text(st, ++b, a->error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, ++b);
    }
    if (columns & WRITE_RESULT) {
        if (a->result)
            sqlite3_bind_blob64(st, ++b, a->result, a->result_size, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, ++b);
    }
    sqlite3_bind_text(st, ++b, aspen_store_state_name(it->before.state), -1, SQLITE_STATIC);
    return b;
}

/* The cached write statement for `columns` and 2^log2 rows, reset (its bindings are all bound
 * again before each step). */
static sqlite3_stmt *write_stmt(struct sqlite_store *s, unsigned columns, int log2,
                                aspen_store_error *err)
{
    struct sq_write_shape *shape = NULL;
    for (int i = 0; i < SQ_WRITE_SHAPES && !shape; i++)
        if (s->write_shape[i].columns == columns)
            shape = &s->write_shape[i];
    if (!shape) { /* a new set of columns takes the next slot, dropping what it held */
        shape = &s->write_shape[s->write_shape_next++ % SQ_WRITE_SHAPES];
        for (int i = 0; i <= GROUP_LOG2_MAX; i++) {
            sqlite3_finalize(shape->st[i]);
            shape->st[i] = NULL;
        }
        shape->columns = columns;
    }
    sqlite3_stmt **slot = &shape->st[log2];
    if (*slot) {
        sqlite3_reset(*slot);
        return *slot;
    }
    return group_prepare(s, slot, group_write_sql(columns, (size_t)1 << log2), err);
}

static void bind_attempt(sqlite3_stmt *st, int b, const struct group_item *it)
{
    static const aspen_store_attempt_stats zero;
    const aspen_store_attempt_stats *x = it->stats ? it->stats : &zero;
    sqlite3_bind_int64(st, b + 1, it->before.id);
    sqlite3_bind_int(st, b + 2, it->number);
    bind_opt(st, b + 3, it->engine);
    bind_opt(st, b + 4, it->started);
    bind_opt(st, b + 5, it->finished);
    sqlite3_bind_int64(st, b + 6, x->wall_us);
    sqlite3_bind_int64(st, b + 7, (int64_t)x->exits);
    sqlite3_bind_int64(st, b + 8, (int64_t)x->host_calls);
    sqlite3_bind_int64(st, b + 9, (int64_t)x->pages_dirtied);
    sqlite3_bind_int64(st, b + 10, (int64_t)x->bytes_in);
    sqlite3_bind_int64(st, b + 11, (int64_t)x->bytes_out);
    sqlite3_bind_text(st, b + 12, it->outcome, -1, SQLITE_STATIC);
    if (it->after.error)
        sqlite3_bind_text(st, b + 13, it->after.error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, b + 13);
    sqlite3_bind_int(st, b + 14, 0);
}

void group_init(struct sq_group *g, struct sqlite_store *s, size_t *refused,
                aspen_store_error *first_refusal)
{
    g->s = s;
    g->n = 0;
    g->bytes = 0;
    g->refused = refused;
    g->first_refusal = first_refusal;
}

bool group_holds(const struct sq_group *g, int64_t id)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->it[i].before.id == id)
            return true;
    return false;
}

struct group_item *group_next(struct sq_group *g)
{
    struct group_item *it = &g->it[g->n];
    memset(it, 0, sizeof *it);
    return it;
}

static void refuse(struct sq_group *g, struct group_item *it, int code, const aspen_store_error *e)
{
    it->refused = true;
    if (it->status)
        *it->status = code;
    if (it->final_state)
        *it->final_state = it->before.state;
    if (g->refused && ++*g->refused == 1 && g->first_refusal && e)
        *g->first_refusal = *e;
}

static bool refusal_code(int code)
{
    return code == ASPEN_STORE_ESTATE || code == ASPEN_STORE_ENOTFOUND ||
           code == ASPEN_STORE_ELEASE || code == ASPEN_STORE_EINVAL;
}

/* Inserts the attempt rows of items [from, from + k) (k a power of two), in one statement. */
static int attempts_chunk(struct sq_group *g, struct group_item **items, size_t k,
                          aspen_store_error *err)
{
    struct sqlite_store *s = g->s;
    if (k == 1) {
        struct group_item *it = items[0];
        return store_insert_attempt(s, it->before.id, it->number, it->engine, it->started,
                                    it->finished, it->stats, it->outcome, it->after.error, false,
                                    err);
    }
    int log2 = 0;
    while (((size_t)1 << log2) < k)
        log2++;
    sqlite3_stmt *st = group_stmt(s, GROUP_ATTEMPT, log2, err);
    if (!st)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    for (size_t i = 0; i < k; i++)
        bind_attempt(st, (int)i * ATTEMPT_PARAMS, items[i]);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        return store_sqlite_err(s, err, rc, "writing attempts");
    /* One of them exists already (the statement was undone as a whole): find it, one by one. */
    for (size_t i = 0; i < k; i++) {
        aspen_store_error e = {0};
        struct group_item *it = items[i];
        int code = store_insert_attempt(s, it->before.id, it->number, it->engine, it->started,
                                        it->finished, it->stats, it->outcome, it->after.error,
                                        false, &e);
        if (code && !refusal_code(code)) {
            if (err)
                *err = e;
            return code;
        }
        if (code)
            refuse(g, it, code, &e);
    }
    return 0;
}

/* Writes the job rows of items (k a power of two, all changing the same columns) in one
 * statement; every row must change. */
static int writes_chunk(struct sq_group *g, struct group_item **items, size_t k,
                        aspen_store_error *err)
{
    struct sqlite_store *s = g->s;
    int log2 = 0;
    while (((size_t)1 << log2) < k)
        log2++;
    unsigned columns = items[0]->columns;
    sqlite3_stmt *st = write_stmt(s, columns, log2, err);
    if (!st)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    for (size_t i = 0, b = 0; i < k; i++)
        b = (size_t)bind_write(st, (int)b, columns, items[i]);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_sqlite_err(s, err, rc, "writing jobs' states");
    if ((size_t)sqlite3_changes(s->db) != k)
        /* Cannot happen inside this transaction (each job is read once per batch, and nobody
         * else writes): refuse the whole commit rather than guess which row moved. */
        return store_err(err, ASPEN_STORE_EBUSY,
                         "%zu of %zu jobs changed state while a group commit wrote them: "
                         "nothing of the group was written; try again",
                         k - (size_t)sqlite3_changes(s->db), k);
    for (size_t i = 0; i < k; i++)
        if (items[i]->before.state != items[i]->after.state)
            counts_note(s, items[i]->before.state, items[i]->after.state, 1);
    return 0;
}

static int log2_of(size_t k)
{
    int log2 = 0;
    while (((size_t)1 << log2) < k)
        log2++;
    return log2;
}

int group_reserve(struct sqlite_store *s, const aspen_store_job *jobs, size_t n, int64_t engine,
                  int64_t now_ms, aspen_store_error *err)
{
    for (size_t at = 0, k = GROUP_ROWS; at < n; at += k) {
        while (k > n - at)
            k /= 2;
        sqlite3_stmt *st = k == 1 ? store_stmt(s, ST_CLAIM_INSERT, err)
                                  : group_stmt(s, GROUP_CLAIM, log2_of(k), err);
        if (!st)
            return err && err->code ? err->code : ASPEN_STORE_EIO;
        for (size_t i = 0; i < k; i++) {
            int b = (int)i * CLAIM_PARAMS;
            sqlite3_bind_int64(st, b + 1, jobs[at + i].id);
            sqlite3_bind_int64(st, b + 2, engine);
            sqlite3_bind_int64(st, b + 3, now_ms);
        }
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return store_sqlite_err(s, err, rc, "reserving claimed jobs");
    }
    return 0;
}

/* One log line to insert, as logs_insert would (seq, attempt 0 for the marker). */
struct log_row {
    int64_t job, seq, time_ms;
    int attempt;
    const char *text;
};

/* What logs_insert does for one job's lines, without writing: the rows go to out (at most n, plus
 * nothing for lines past the cap), the counts into it->after. */
static size_t plan_logs(const struct sqlite_store *s, struct group_item *it, struct log_row *out)
{
    struct store_job_row *row = &it->after;
    size_t k = 0;
    for (size_t i = 0; i < it->n_logs; i++) {
        const aspen_store_log_line *l = &it->logs[i];
        if (l->dropped > 0) { /* counted by the writer, never sent */
            row->log_dropped = l->dropped > INT64_MAX - row->log_dropped ? INT64_MAX
                                                                         : row->log_dropped + l->dropped;
            if (!l->line)
                continue;
        }
        if (row->log_count > s->base.log_cap) { /* cap reached and marker written */
            row->log_dropped++;
            continue;
        }
        const char *text = l->line ? l->line : "";
        bool marker = row->log_count == s->base.log_cap;
        if (marker) {
            snprintf(it->marker, sizeof it->marker,
                     "[aspen] log truncated: this job wrote more than %d lines; later lines are "
                     "not kept",
                     s->base.log_cap);
            text = it->marker;
            row->log_dropped++;
        }
        out[k++] = (struct log_row){.job = row->id,
                                    .seq = row->log_count + 1,
                                    .time_ms = l->time_ms,
                                    .attempt = marker ? 0 : it->log_attempt,
                                    .text = text};
        row->log_count++;
    }
    return k;
}

/* Inserts rows[0..k) (k a power of two) in one statement. */
static int logs_chunk(struct sqlite_store *s, const struct log_row *rows, size_t k,
                      aspen_store_error *err)
{
    int log2 = 0;
    while (((size_t)1 << log2) < k)
        log2++;
    sqlite3_stmt *st = group_stmt(s, GROUP_LOG, log2, err);
    if (!st)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    for (size_t i = 0; i < k; i++) {
        int b = (int)i * LOG_PARAMS;
        sqlite3_bind_int64(st, b + 1, rows[i].job);
        sqlite3_bind_int64(st, b + 2, rows[i].seq);
        sqlite3_bind_int(st, b + 3, rows[i].attempt);
        sqlite3_bind_int64(st, b + 4, rows[i].time_ms);
        sqlite3_bind_text(st, b + 5, rows[i].text, -1, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* The log lines of the items not refused, in batches. They are written under a savepoint: if
 * SQLite refuses one (a constraint: that (job, seq) exists), the savepoint is undone and every
 * job's lines are written the old way, one job at a time, so that only the job whose line was
 * refused is refused. Returns 0, or a failure that aborts the commit. */
static int group_logs(struct sq_group *g, aspen_store_error *err)
{
    struct sqlite_store *s = g->s;
    size_t total = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!g->it[i].refused)
            total += g->it[i].n_logs;
    if (total == 0)
        return 0;
    struct log_row *rows = malloc(total * sizeof *rows);
    int saved_count[GROUP_ROWS];
    int64_t saved_dropped[GROUP_ROWS];
    if (!rows)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing log lines");
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        saved_count[i] = g->it[i].after.log_count;
        saved_dropped[i] = g->it[i].after.log_dropped;
        if (!g->it[i].refused && g->it[i].n_logs)
            k += plan_logs(s, &g->it[i], rows + k);
    }
    int rc = sqlite3_exec(s->db, "SAVEPOINT group_logs", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        free(rows);
        return store_sqlite_err(s, err, rc, "writing log lines");
    }
    /* one feed number for the whole group's lines (SQ_LOG_TX in LOG_ROW) */
    int bump = logs_tx_bump(s, err);
    if (bump) {
        free(rows);
        sqlite3_exec(s->db, "ROLLBACK TO group_logs; RELEASE group_logs", NULL, NULL, NULL);
        return bump;
    }
    size_t at = 0;
    for (size_t c = GROUP_ROWS; c > 0 && rc == 0 && at < k; c /= 2)
        while (rc == 0 && k - at >= c) {
            rc = logs_chunk(s, rows + at, c, err);
            at += c;
        }
    free(rows);
    if (rc == 0) {
        rc = sqlite3_exec(s->db, "RELEASE group_logs", NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : store_sqlite_err(s, err, rc, "writing log lines");
    }
    if (rc < 0) /* an Aspen code from preparing the statement; the transaction is rolled back */
        return rc;
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        return store_sqlite_err(s, err, rc, "writing log lines");
    /* One of them exists already: undo the batch and write job by job, as logs_insert always did. */
    rc = sqlite3_exec(s->db, "ROLLBACK TO group_logs; RELEASE group_logs", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "writing log lines");
    for (size_t i = 0; i < g->n; i++) {
        struct group_item *it = &g->it[i];
        it->after.log_count = saved_count[i];
        it->after.log_dropped = saved_dropped[i];
        if (it->refused || !it->n_logs)
            continue;
        aspen_store_error e = {0};
        int code = logs_insert(s, &it->after, it->log_attempt, it->logs, it->n_logs, &e);
        if (code && !refusal_code(code)) {
            if (err)
                *err = e;
            return code;
        }
        if (code)
            refuse(g, it, code, &e);
    }
    return 0;
}

/* Splits list[0..n) into power-of-two chunks (32, 16, …, 1) for fn. */
static int by_chunks(struct sq_group *g, struct group_item **list, size_t n,
                     int (*fn)(struct sq_group *, struct group_item **, size_t,
                               aspen_store_error *),
                     aspen_store_error *err)
{
    size_t at = 0;
    for (size_t k = GROUP_ROWS; k > 0 && at < n; k /= 2)
        while (n - at >= k) {
            int code = fn(g, list + at, k, err);
            if (code)
                return code;
            at += k;
        }
    return 0;
}

#define GROUP_FLUSH_BYTES (1u << 20)

int group_flush(struct sq_group *g, aspen_store_error *err)
{
    struct group_item *list[GROUP_ROWS];
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->it[i].has_attempt)
            list[n++] = &g->it[i];
    int code = by_chunks(g, list, n, attempts_chunk, err);
    if (code)
        goto out;
    code = group_logs(g, err);
    if (code)
        goto out;
    n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!g->it[i].refused) {
            g->it[i].columns = write_columns(&g->it[i]); /* after group_logs: the log counts */
            list[n++] = &g->it[i];
        }
    /* one batch per set of columns changed, in the order each set first appears */
    bool written[GROUP_ROWS] = {false};
    for (size_t i = 0; i < n && !code; i++) {
        if (written[i])
            continue;
        struct group_item *same[GROUP_ROWS];
        size_t m = 0;
        for (size_t j = i; j < n; j++)
            if (!written[j] && list[j]->columns == list[i]->columns) {
                same[m++] = list[j];
                written[j] = true;
            }
        code = by_chunks(g, same, m, writes_chunk, err);
    }
    if (code)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->final_state)
            *list[i]->final_state = list[i]->after.state;
        if (list[i]->replay) { /* only an accepted completion keeps its replay record */
            code = sq_commit_replay(g->s, list[i]->replay, err);
            if (code)
                goto out;
        }
    }
out:
    g->n = 0;
    g->bytes = 0;
    return code;
}

int group_add(struct sq_group *g, aspen_store_error *err)
{
    /* Big results flush early: SQLite materialises a batch's VALUES, so 32 results of 15 MB
     * would be copied at once (test_engine_bounds' peak-memory bound). */
    const struct group_item *it = &g->it[g->n];
    if (it->after.set_result)
        g->bytes += it->after.result_size;
    g->n++;
    return g->n == GROUP_ROWS || g->bytes >= GROUP_FLUSH_BYTES ? group_flush(g, err) : 0;
}
