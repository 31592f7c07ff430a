/* sqlite_query.c — the SQLite backend's read side for the CLI and the console: one job, filtered
 * lists and counts, counts per state, the age of the oldest waiting job, attempts, log tails. The
 * filter language itself is parsed once for every backend (filter.c); here a parsed filter
 * becomes SQL. Also the filtered bulk actions (retry every failed job
 * that matches, cancel everything that matches), which reuse the filter's SQL.
 *
 * Filters become one parameterised SELECT; payload fields go through json_extract, tags through
 * json_each. Values are always bound, never pasted into SQL. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rows into structs ------------------------------------------------------------------------- */

static char *col_dup(sqlite3_stmt *st, int i, bool *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    char *copy = store_strdup((const char *)t);
    if (!copy)
        *oom = true;
    return copy;
}

int job_from_row(sqlite3_stmt *st, aspen_store_job *job, aspen_store_error *err)
{
    bool oom = false;
    memset(job, 0, sizeof *job);
    job->id = sqlite3_column_int64(st, 0);
    job->type = col_dup(st, 1, &oom);
    job->binary_sha256 = col_dup(st, 2, &oom);
    job->binary_name = col_dup(st, 3, &oom);
    job->payload = col_dup(st, 4, &oom);
    job->state = (aspen_store_state)state_from_text(sqlite3_column_text(st, 5));
    job->priority = sqlite3_column_int(st, 6);
    job->run_at_ms = sqlite3_column_int64(st, 7);
    job->attempts = sqlite3_column_int(st, 8);
    job->max_attempts = sqlite3_column_int(st, 9);
    job->timeout_ms = sqlite3_column_int64(st, 10);
    job->memory_bytes = sqlite3_column_int64(st, 11);
    job->isolation = sqlite3_column_int(st, 12) != 0;
    job->tags = col_dup(st, 13, &oom);
    job->created_at_ms = sqlite3_column_int64(st, 14);
    job->started_at_ms = sqlite3_column_int64(st, 15);
    job->finished_at_ms = sqlite3_column_int64(st, 16);
    if (sqlite3_column_type(st, 17) != SQLITE_NULL) {
        const void *b = sqlite3_column_blob(st, 17);
        size_t n = (size_t)sqlite3_column_bytes(st, 17);
        job->result = malloc(n + 1); /* + NUL so text output can be printed as is */
        if (job->result) {
            if (n)
                memcpy(job->result, b, n);
            ((char *)job->result)[n] = '\0';
            job->result_size = n;
        } else {
            oom = true;
        }
    }
    job->error = col_dup(st, 18, &oom);
    job->rerun_of = sqlite3_column_int64(st, 19);
    job->owner = sqlite3_column_int64(st, 20);
    job->cancel_requested = sqlite3_column_int(st, 21) != 0;
    job->source_dir = col_dup(st, 22, &oom);
    job->log_count = sqlite3_column_int(st, 23);
    job->log_dropped = sqlite3_column_int64(st, 24);
    const unsigned char *queue = sqlite3_column_text(st, 25);
    snprintf(job->queue, sizeof job->queue, "%s", queue ? (const char *)queue : "default");
    if (oom) {
        aspen_store_job_clear(job);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a job");
    }
    return 0;
}

int sq_get(aspen_store *base, int64_t id, aspen_store_job *out, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(s, ST_JOB_GET, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), code;
    if (rc == SQLITE_ROW)
        code = job_from_row(st, out, err);
    else if (rc == SQLITE_DONE)
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld in %s: check the id (aspen jobs%s)",
                         (long long)id, s->base.name, store_cmd(&s->base));
    else
        code = store_sqlite_err(s, err, rc, "reading a job");
    sqlite3_reset(st);
    return code;
}

/* ---- filtered queries ---------------------------------------------------------------------------- */

/* A duration page's pieces repeat the filter once per index they read (sq_list_by_duration). */
#define MAX_BINDS 40

struct query {
    char sql[4096];
    size_t len;
    int nbind;
    struct {
        bool is_int;
        int64_t i;
        const char *t;
    } bind[MAX_BINDS];
    char paths[ASPEN_STORE_FILTER_MAX_FIELDS][256];
};

static void q_add(struct query *q, const char *fmt, const char *arg)
{
    q->len += (size_t)snprintf(q->sql + q->len, sizeof q->sql - q->len, fmt, arg);
    if (q->len >= sizeof q->sql)
        q->len = sizeof q->sql - 1;
}

static void q_text(struct query *q, const char *t)
{
    if (q->nbind < MAX_BINDS) {
        q->bind[q->nbind].is_int = false;
        q->bind[q->nbind++].t = t;
    }
}

static void q_int(struct query *q, int64_t v)
{
    if (q->nbind < MAX_BINDS) {
        q->bind[q->nbind].is_int = true;
        q->bind[q->nbind++].i = v;
    }
}

/* Appends the filter's terms, the first after `glue` (" WHERE ", or " AND " behind terms of the
 * caller's own); `states` overrides filter->states (after intersecting). */
static int q_where_after(struct query *q, const aspen_store_filter *f, unsigned states,
                         const char *glue, aspen_store_error *err)
{
    if (states && (states & (states - 1)) == 0) {
        /* One state: `state = 'x'`, the form SQLite matches against the partial index of that
         * state (it does not for `state IN ('x')`, and scanned every job instead). */
        for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
            if (states == (1u << i)) {
                q_add(q, "%sstate = ", glue);
                q_add(q, "'%s'", aspen_store_state_name((aspen_store_state)i));
            }
        glue = " AND ";
    } else if (states && states != (1u << ASPEN_STORE_STATE_COUNT) - 1) {
        q_add(q, "%sstate IN (", glue);
        bool first = true;
        for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
            if (states & (1u << i)) {
                q_add(q, first ? "'%s'" : ", '%s'", aspen_store_state_name((aspen_store_state)i));
                first = false;
            }
        q_add(q, "%s)", "");
        glue = " AND ";
    }
    if (states && (states & (states - 1)) == 0 && store_states_final_only(states)) {
        /* A final state's jobs are listed by jobs_final (state) WHERE finished_at IS NOT NULL
         * (version 14); SQLite uses a partial index only when the query names its WHERE, and
         * every job of a final state has finished_at (store/state.c), so this term selects
         * nothing less. Several states stay as they were (`state IN` matches no partial index,
         * and a newest-first page walks the primary key backwards). */
        q_add(q, "%sfinished_at IS NOT NULL", " AND ");
    }
    if (!f)
        return 0;
    if (f->id) {
        q_add(q, "%sid = ?", glue);
        q_int(q, f->id);
        glue = " AND ";
    }
    if (f->type) {
        q_add(q, "%stype = ?", glue);
        q_text(q, f->type);
        glue = " AND ";
    }
    if (f->binary_name) {
        q_add(q, "%sbinary_name = ?", glue);
        q_text(q, f->binary_name);
        glue = " AND ";
    }
    if (f->tag) {
        q_add(q, "%sEXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = ?)", glue);
        q_text(q, f->tag);
        glue = " AND ";
    }
    if (f->queue) {
        q_add(q, "%squeue = ?", glue);
        q_text(q, f->queue);
        glue = " AND ";
    }
    if (f->rerun_of) {
        q_add(q, "%srerun_of = ?", glue);
        q_int(q, f->rerun_of);
        glue = " AND ";
    }
    if (f->n_fields > ASPEN_STORE_FILTER_MAX_FIELDS)
        return store_err(err, ASPEN_STORE_EINVAL, "at most %d payload fields per filter",
                         ASPEN_STORE_FILTER_MAX_FIELDS);
    for (size_t i = 0; i < f->n_fields; i++) {
        const char *p = f->fields[i].path, *v = f->fields[i].value;
        if (!p || !*p || !v)
            return store_err(err, ASPEN_STORE_EINVAL, "payload field %zu has no path or value",
                             i + 1);
        snprintf(q->paths[i], sizeof q->paths[i], "%s%s", p[0] == '$' ? "" : "$.", p);
        if (strcmp(v, "true") == 0)
            v = "1";
        else if (strcmp(v, "false") == 0)
            v = "0";
        q_add(q, "%sCAST(json_extract(" PAYLOAD_EXPR ", ?) AS TEXT) = ?", glue);
        q_text(q, q->paths[i]);
        q_text(q, v);
        glue = " AND ";
    }
    if (q->nbind >= MAX_BINDS || q->len >= sizeof q->sql - 1)
        return store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
    return 0;
}

/* Appends " WHERE …" for the filter (nothing when it matches every job). */
static int q_where(struct query *q, const aspen_store_filter *f, unsigned states,
                   aspen_store_error *err)
{
    return q_where_after(q, f, states, " WHERE ", err);
}

static int q_prepare(struct sqlite_store *s, struct query *q, sqlite3_stmt **st,
                     aspen_store_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, q->sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "preparing a job query");
    for (int i = 0; i < q->nbind; i++) {
        if (q->bind[i].is_int)
            sqlite3_bind_int64(*st, i + 1, q->bind[i].i);
        else
            sqlite3_bind_text(*st, i + 1, q->bind[i].t, -1, SQLITE_STATIC);
    }
    return 0;
}

/* A step failure of a filtered query: a bad JSON path is the user's, the rest the database's. */
static int q_step_err(struct sqlite_store *s, int rc, aspen_store_error *err)
{
    if ((rc & 0xff) == SQLITE_ERROR && strstr(sqlite3_errmsg(s->db), "JSON path"))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "bad payload field path (%s): write it like payload.user or "
                         "payload.items[0].name",
                         sqlite3_errmsg(s->db));
    return store_sqlite_err(s, err, rc, "listing jobs");
}

/* ---- the whole-store sort ------------------------------------------------------------------------
 * A sorted page is read from the sort's index (INDEXED BY: the planner never falls back to sorting
 * every match). After an anchor job it is two index ranges: the jobs with the anchor's key and an
 * id past it, then the jobs with a key past the anchor's. Row-value comparisons ((key, id) > (?, ?))
 * would say the same in one statement, but SQLite scans an expression index from its start for
 * them instead of seeking. */

/* Runs q and appends its rows to *list (count, cap). */
static int q_collect(struct sqlite_store *s, struct query *q, aspen_store_job **list, size_t *count,
                     size_t *cap, aspen_store_error *err)
{
    sqlite3_stmt *st = NULL;
    int code = q_prepare(s, q, &st, err);
    if (code)
        return code;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_job *grown = store_grow(*list, cap, *count, sizeof **list);
        if (!grown) {
            sqlite3_finalize(st);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
        }
        *list = grown;
        code = job_from_row(st, &(*list)[*count], err);
        if (code) {
            sqlite3_finalize(st);
            return code;
        }
        (*count)++;
    }
    code = rc == SQLITE_DONE ? 0 : q_step_err(s, rc, err);
    sqlite3_finalize(st);
    return code;
}

/* The filter's WHERE after "SELECT … FROM jobs INDEXED BY …", and the glue for one more term. */
static int q_sorted_head(struct query *q, const aspen_store_filter *f, const char **glue,
                         aspen_store_error *err)
{
    const char *idx = store_sort_index_name(f->sort);
    q_add(q, "SELECT %s FROM jobs", JOB_COLUMNS);
    if (idx)
        q_add(q, " INDEXED BY %s", idx);
    size_t before = q->len;
    int code = q_where(q, f, f->states, err);
    *glue = q->len == before ? " WHERE " : " AND ";
    /* A filter that fixes the key's range says so in the key's own terms, so the index range is
     * only the matching block (not a scan past every other state's or guest's jobs). */
    int lo, hi;
    if (!code && store_sort_key_range(f, &lo, &hi)) {
        char range[64];
        snprintf(range, sizeof range, " BETWEEN %d AND %d", lo, hi);
        q_add(q, "%s", *glue);
        q_add(q, "%s", store_sort_key_sql(f->sort, false));
        q_add(q, "%s", range);
        *glue = " AND ";
    } else if (!code && f->sort == ASPEN_STORE_SORT_GUEST && f->binary_name) {
        q_add(q, "%s", *glue);
        q_add(q, "%s = ?", store_sort_key_sql(f->sort, false));
        q_text(q, f->binary_name);
        *glue = " AND ";
    }
    return code;
}

/* ---- the duration sort (version 14) ----------------------------------------------------------
 * jobs_sort_duration covers finished jobs only, so that a job's start writes no entry of it (the
 * key changed at the start and again at the finish: two deletes and two inserts per job). The
 * order stays what it was over every job: by (key, id), key = finished - started, and -1 for a
 * job with no finished run. So the order has three blocks: finished jobs with a key below -1 (a
 * clock stepped back), the key -1 (finished jobs that never ran, from jobs_sort_duration, merged by
 * id with every unfinished job, from jobs_unfinished (id)), and finished jobs above -1. Each piece
 * below is one index range, read in order (a UNION ALL of two id-ordered ranges is merged by
 * SQLite without a sort), and a page takes pieces until it is full. */
enum dur_piece { DUR_BELOW, DUR_MINUS1, DUR_ABOVE };

/* Which of the two indexes a filter can match: a state filter of unfinished states only never
 * reads the finished jobs' index, and one of final states only never reads jobs_unfinished. */
static void dur_sources(const aspen_store_filter *f, bool *finished, bool *unfinished)
{
    unsigned all = (1u << ASPEN_STORE_STATE_COUNT) - 1, st = f->states & all;
    *finished = *unfinished = true;
    if (!st || st == all)
        return;
    *finished = false;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if ((st & (1u << i)) && aspen_store_state_is_final((aspen_store_state)i))
            *finished = true;
    *unfinished = !store_states_final_only(st);
}

/* One arm: the filter's matches in one index, plus the piece's range. `key_op` compares the key
 * with `key` ("" for none; a second bound in key_op2/key2), `id_op` the id with `id`. */
static int dur_arm(struct query *q, const aspen_store_filter *f, const char *cols, bool unfinished,
                   const char *key_op, int64_t key, const char *key_op2, int64_t key2,
                   const char *id_op, int64_t id, aspen_store_error *err)
{
    q_add(q, "SELECT %s FROM jobs", cols);
    q_add(q, " INDEXED BY %s", unfinished ? "jobs_unfinished" : "jobs_sort_duration");
    size_t before = q->len;
    int code = q_where(q, f, f->states, err);
    if (code)
        return code;
    q_add(q, q->len == before ? " WHERE %s" : " AND %s",
          unfinished ? "finished_at IS NULL" : "finished_at IS NOT NULL");
    if (!unfinished && *key_op) {
        q_add(q, " AND " STORE_DURATION_KEY " %s ?", key_op);
        q_int(q, key);
    }
    if (!unfinished && *key_op2) {
        q_add(q, " AND " STORE_DURATION_KEY " %s ?", key_op2);
        q_int(q, key2);
    }
    if (*id_op) {
        q_add(q, " AND id %s ?", id_op);
        q_int(q, id);
    }
    return 0;
}

/* A piece's SELECT (its arms) into q: DUR_MINUS1 is both indexes at the key -1, ordered by id;
 * the others the finished jobs' index between the bounds, by (key, id). */
static int dur_piece_sql(struct query *q, const aspen_store_filter *f, const char *cols,
                         enum dur_piece piece, const char *key_op, int64_t key,
                         const char *id_op, int64_t id, bool *any, aspen_store_error *err)
{
    bool fin, unf;
    dur_sources(f, &fin, &unf);
    int code = 0;
    *any = false;
    if (piece == DUR_MINUS1) {
        if (fin) {
            code = dur_arm(q, f, cols, false, "=", -1, "", 0, id_op, id, err);
            *any = true;
        }
        if (!code && unf) {
            if (*any)
                q_add(q, " UNION ALL %s", "");
            code = dur_arm(q, f, cols, true, "", 0, "", 0, id_op, id, err);
            *any = true;
        }
        return code;
    }
    if (!fin)
        return 0;
    *any = true;
    if (strcmp(key_op, "=") == 0) /* one key: its ids in order (a block bound too costs a sort) */
        return dur_arm(q, f, cols, false, "=", key, "", 0, id_op, id, err);
    return dur_arm(q, f, cols, false, piece == DUR_BELOW ? "<" : ">", -1, key_op, key, id_op, id,
                   err);
}

/* Reads one piece into the list: at most *limit rows (< 0: all) after skipping *offset, which
 * both go down by what the piece used. */
static int dur_piece_read(struct sqlite_store *s, const aspen_store_filter *f, enum dur_piece piece,
                          const char *key_op, int64_t key, const char *id_op, int64_t id,
                          int64_t *limit, int64_t *offset, aspen_store_job **list, size_t *count,
                          size_t *cap, aspen_store_error *err)
{
    bool desc = f->sort_desc, any = false;
    struct query q = {0};
    int code = dur_piece_sql(&q, f, JOB_COLUMNS, piece, key_op, key, id_op, id, &any, err);
    if (code || !any)
        return code;
    if (piece == DUR_MINUS1 || strcmp(key_op, "=") == 0)
        q_add(&q, desc ? " ORDER BY id DESC%s" : " ORDER BY id%s", "");
    else
        q_add(&q, desc ? " ORDER BY " STORE_DURATION_KEY " DESC, id DESC%s"
                       : " ORDER BY " STORE_DURATION_KEY ", id%s", "");
    q_add(&q, " LIMIT ? OFFSET ?%s", "");
    q_int(&q, *limit);
    q_int(&q, *offset);
    if (q.nbind >= MAX_BINDS || q.len >= sizeof q.sql - 1)
        return store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
    size_t was = *count;
    code = q_collect(s, &q, list, count, cap, err);
    if (code)
        return code;
    int64_t got = (int64_t)(*count - was);
    if (*limit > 0)
        *limit -= got;
    if (got > 0 || *offset == 0) {
        *offset = 0; /* rows came back: the offset ended inside this piece */
        return 0;
    }
    /* Nothing came back: the offset went past the whole piece, so it skips what the piece has. */
    struct query c = {0};
    q_add(&c, "SELECT count(*) FROM (%s", "");
    code = dur_piece_sql(&c, f, "1", piece, key_op, key, id_op, id, &any, err);
    if (code)
        return code;
    q_add(&c, ")%s", "");
    if (c.nbind >= MAX_BINDS || c.len >= sizeof c.sql - 1)
        return store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
    sqlite3_stmt *st = NULL;
    code = q_prepare(s, &c, &st, err);
    if (code)
        return code;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        *offset = n >= *offset ? 0 : *offset - n;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : q_step_err(s, rc, err);
}

/* The page: after the anchor (its key `ak`, id) when there is one, else from the top. */
static int sq_list_by_duration(struct sqlite_store *s, const aspen_store_filter *f, bool anchored,
                               int64_t ak, aspen_store_job **list, size_t *count, size_t *cap,
                               aspen_store_error *err)
{
    bool desc = f->sort_desc;
    int64_t limit = f->limit ? f->limit : 100, offset = f->offset > 0 ? f->offset : 0;
    /* the blocks in the page's direction */
    static const enum dur_piece up[] = {DUR_BELOW, DUR_MINUS1, DUR_ABOVE};
    static const enum dur_piece down[] = {DUR_ABOVE, DUR_MINUS1, DUR_BELOW};
    const enum dur_piece *order = desc ? down : up;
    int code = 0;
    int first = 0; /* the first block past the anchor's key */
    const char *past = desc ? "<" : ">";
    if (anchored) {
        /* 1: the anchor's own key, ids past the anchor */
        const char *id_op = desc ? (f->after_inclusive ? "<=" : "<")
                                 : (f->after_inclusive ? ">=" : ">");
        enum dur_piece at = ak < -1 ? DUR_BELOW : ak == -1 ? DUR_MINUS1 : DUR_ABOVE;
        code = dur_piece_read(s, f, at, at == DUR_MINUS1 ? "" : "=", ak, id_op, f->after_id,
                              &limit, &offset, list, count, cap, err);
        if (code || limit == 0)
            return code;
        /* 2: keys past the anchor's in its own block, then the blocks after it */
        if (at != DUR_MINUS1) {
            code = dur_piece_read(s, f, at, past, ak, "", 0, &limit, &offset, list, count, cap,
                                  err);
            if (code || limit == 0)
                return code;
        }
        while (order[first] != at)
            first++;
        first++;
    }
    for (int i = first; i < 3; i++) {
        code = dur_piece_read(s, f, order[i], "", 0, "", 0, &limit, &offset, list, count, cap,
                              err);
        if (code || limit == 0)
            return code;
    }
    return 0;
}

static int sq_list_sorted(struct sqlite_store *s, const aspen_store_filter *f,
                          aspen_store_job **jobs, size_t *n, aspen_store_error *err)
{
    const char *key = store_sort_key_sql(f->sort, false);
    bool desc = f->sort_desc, text = store_sort_key_is_text(f->sort);
    int64_t limit = f->limit ? f->limit : 100;
    if (f->after_id && f->offset > 0)
        return store_err(err, ASPEN_STORE_EINVAL, "a sorted page starts after a job or at an "
                                                  "offset, not both");
    /* the anchor's key, as the store has it now */
    int64_t anchor_i = 0;
    char *anchor_t = NULL;
    if (f->after_id) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE id = ?", key);
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_err(s, err, rc, "preparing a sorted job query");
        sqlite3_bind_int64(st, 1, f->after_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            anchor_i = sqlite3_column_int64(st, 0);
            if (text && !(anchor_t = store_strdup((const char *)sqlite3_column_text(st, 0)))) {
                sqlite3_finalize(st);
                return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
            }
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return store_err(err, ASPEN_STORE_ENOTFOUND,
                             "job %lld, where the page was to start, is gone (deleted): start "
                             "from the top of the list",
                             (long long)f->after_id);
        if (rc != SQLITE_ROW)
            return store_sqlite_err(s, err, rc, "reading a job's sort key");
    }
    aspen_store_job *list = NULL;
    size_t count = 0, cap = 0;
    int code = 0;
    const char *glue;
    if (f->sort == ASPEN_STORE_SORT_DURATION) {
        code = sq_list_by_duration(s, f, f->after_id != 0, anchor_i, &list, &count, &cap, err);
        goto done;
    }
    if (f->after_id && f->sort != ASPEN_STORE_SORT_ID) {
        /* 1: the anchor's key, ids past the anchor */
        struct query q = {0};
        code = q_sorted_head(&q, f, &glue, err);
        if (code)
            goto done;
        q_add(&q, "%s", glue);
        q_add(&q, "%s = ?", key);
        if (text)
            q_text(&q, anchor_t);
        else
            q_int(&q, anchor_i);
        q_add(&q, desc ? (f->after_inclusive ? " AND id <= ?" : " AND id < ?")
                       : (f->after_inclusive ? " AND id >= ?" : " AND id > ?"), "");
        q_int(&q, f->after_id);
        q_add(&q, desc ? " ORDER BY id DESC LIMIT ?" : " ORDER BY id LIMIT ?", "");
        q_int(&q, limit);
        if (q.nbind >= MAX_BINDS || q.len >= sizeof q.sql - 1) {
            code = store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
            goto done;
        }
        code = q_collect(s, &q, &list, &count, &cap, err);
        if (code)
            goto done;
        if (limit >= 0 && (int64_t)count >= limit)
            goto done;
    }
    /* 2: keys past the anchor's (or from the start) */
    struct query q = {0};
    code = q_sorted_head(&q, f, &glue, err);
    if (code)
        goto done;
    if (f->after_id) {
        bool by_id = f->sort == ASPEN_STORE_SORT_ID;
        q_add(&q, "%s", glue);
        q_add(&q, "%s", key);
        q_add(&q, desc ? (by_id && f->after_inclusive ? " <= ?" : " < ?")
                       : (by_id && f->after_inclusive ? " >= ?" : " > ?"), "");
        if (text)
            q_text(&q, anchor_t);
        else
            q_int(&q, anchor_i);
    }
    q_add(&q, " ORDER BY %s", key);
    q_add(&q, desc ? " DESC%s" : "%s", f->sort == ASPEN_STORE_SORT_ID ? "" : ", id");
    if (f->sort != ASPEN_STORE_SORT_ID && desc)
        q_add(&q, " DESC%s", "");
    q_add(&q, " LIMIT ? OFFSET ?%s", "");
    q_int(&q, limit < 0 ? -1 : limit - (int64_t)count);
    q_int(&q, f->offset > 0 ? f->offset : 0);
    if (q.nbind >= MAX_BINDS || q.len >= sizeof q.sql - 1) {
        code = store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
        goto done;
    }
    code = q_collect(s, &q, &list, &count, &cap, err);
done:
    free(anchor_t);
    if (code) {
        aspen_store_jobs_free(list, count);
        return code;
    }
    *jobs = list;
    *n = count;
    return 0;
}

int sq_list(aspen_store *base, const aspen_store_filter *filter, aspen_store_job **jobs, size_t *n,
            aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *jobs = NULL;
    *n = 0;
    if (filter && (filter->sort != ASPEN_STORE_SORT_NONE || filter->after_id)) {
        if ((unsigned)filter->sort >= ASPEN_STORE_SORT_COUNT)
            return store_err(err, ASPEN_STORE_EINVAL, "unknown sort %d", (int)filter->sort);
        aspen_store_filter f = *filter;
        if (f.sort == ASPEN_STORE_SORT_NONE) /* paging by id in the order's direction */
            f.sort = ASPEN_STORE_SORT_ID, f.sort_desc = f.order != ASPEN_STORE_ORDER_OLDEST;
        return sq_list_sorted(s, &f, jobs, n, err);
    }
    struct query q = {0};
    q_add(&q, "SELECT %s FROM jobs", JOB_COLUMNS);
    int code = q_where(&q, filter, filter ? filter->states : 0, err);
    if (code)
        return code;
    aspen_store_order order = filter ? filter->order : ASPEN_STORE_ORDER_NEWEST;
    q_add(&q, " ORDER BY %s",
          order == ASPEN_STORE_ORDER_OLDEST  ? "id"
          : order == ASPEN_STORE_ORDER_QUEUE ? "priority DESC, run_at, id"
                                             : "id DESC");
    int64_t limit = filter && filter->limit ? filter->limit : 100;
    q_add(&q, " LIMIT ? OFFSET ?%s", "");
    q_int(&q, limit);
    q_int(&q, filter && filter->offset > 0 ? filter->offset : 0);

    sqlite3_stmt *st = NULL;
    code = q_prepare(s, &q, &st, err);
    if (code)
        return code;
    aspen_store_job *list = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_job *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
            goto free_list;
        }
        list = grown;
        code = job_from_row(st, &list[count], err);
        if (code)
            goto free_list;
        count++;
    }
    if (rc != SQLITE_DONE) {
        code = q_step_err(s, rc, err);
        goto free_list;
    }
    sqlite3_finalize(st);
    *jobs = list;
    *n = count;
    return 0;
free_list:
    sqlite3_finalize(st);
    aspen_store_jobs_free(list, count);
    return code;
}

int sq_count(aspen_store *base, const aspen_store_filter *filter, int64_t *count,
             aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *count = 0;
    struct query q = {0};
    q_add(&q, "SELECT count(*) FROM jobs%s", "");
    int code = q_where(&q, filter, filter ? filter->states : 0, err);
    if (code)
        return code;
    sqlite3_stmt *st = NULL;
    code = q_prepare(s, &q, &st, err);
    if (code)
        return code;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        code = q_step_err(s, rc, err);
    sqlite3_finalize(st);
    return code;
}

/* Ids matching filter restricted to `states`, in id order. */
/* The ids of the matching jobs in `states`, ascending; with `limit` (> 0) only the first `limit`
 * of those with after < id <= through (a bulk action's next batch, store_backend.h). */
static int matching_ids_range(struct sqlite_store *s, const aspen_store_filter *f, unsigned states,
                              int64_t after, int64_t through, int64_t limit, int64_t **ids,
                              size_t *n, aspen_store_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!states)
        return 0;
    struct query q = {0};
    int code;
    if (limit > 0) {
        q_add(&q, "SELECT id FROM jobs WHERE id > ? AND id <= ?%s", "");
        q_int(&q, after);
        q_int(&q, through);
        code = q_where_after(&q, f, states, " AND ", err);
    } else {
        q_add(&q, "SELECT id FROM jobs%s", "");
        code = q_where(&q, f, states, err);
    }
    if (code)
        return code;
    q_add(&q, " ORDER BY id%s", "");
    if (limit > 0) {
        q_add(&q, " LIMIT ?%s", "");
        q_int(&q, limit);
    }
    sqlite3_stmt *st = NULL;
    code = q_prepare(s, &q, &st, err);
    if (code)
        return code;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *grown = store_grow(*ids, &cap, *n, sizeof **ids);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory selecting jobs");
            goto free_ids;
        }
        *ids = grown;
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        code = q_step_err(s, rc, err);
        goto free_ids;
    }
    sqlite3_finalize(st);
    return 0;
free_ids:
    sqlite3_finalize(st);
    free(*ids);
    *ids = NULL;
    *n = 0;
    return code;
}

static int matching_ids(struct sqlite_store *s, const aspen_store_filter *f, unsigned states,
                        int64_t **ids, size_t *n, aspen_store_error *err)
{
    return matching_ids_range(s, f, states, 0, 0, 0, ids, n, err);
}

static unsigned restrict_states(const aspen_store_filter *f, unsigned allowed)
{
    return f && f->states ? f->states & allowed : allowed;
}

int sq_bulk_batches(struct sqlite_store *s, const aspen_store_filter *filter, unsigned states,
                    const char *what, sq_bulk_fn fn, void *ctx, int64_t totals[2],
                    aspen_store_error *err)
{
    int64_t after = 0, through = 0;
    totals[0] = totals[1] = 0;
    int code = 0;
    for (bool first = true; states; first = false) {
        code = tx_begin(s, err);
        if (code)
            break;
        if (first) { /* the newest job now: one submitted meanwhile is not taken */
            sqlite3_stmt *st = NULL;
            int rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM jobs", -1, &st,
                                        NULL);
            if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
                through = sqlite3_column_int64(st, 0);
            else
                code = store_sqlite_err(s, err, rc, what);
            sqlite3_finalize(st);
        }
        int64_t *ids = NULL, got[2] = {0, 0};
        size_t n = 0;
        if (!code)
            code = matching_ids_range(s, filter, states, after, through, STORE_BULK_BATCH, &ids,
                                      &n, err);
        if (!code && n)
            code = fn(s, ids, n, ctx, got, err);
        if (n)
            after = ids[n - 1];
        free(ids);
        if (code) {
            tx_rollback(s);
            break;
        }
        code = tx_commit(s, what, err);
        if (code)
            break;
        totals[0] += got[0]; /* counted once its batch committed */
        totals[1] += got[1];
        if (n < STORE_BULK_BATCH)
            break;
        store_bulk_pause();
    }
    return code;
}

/* Every matching failed job retried in one transaction, except those whose unique key another
 * job holds (listed in *skipped): in id order, so of two failed jobs of one key the first is
 * retried and then holds the key against the second. */
int sq_retry_failed(aspen_store *base, const aspen_store_filter *filter, int64_t now_ms,
                    int64_t *retried, aspen_store_retry_skip **skipped, size_t *n_skipped,
                    aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    if (retried)
        *retried = 0;
    int64_t *ids = NULL, done = 0;
    size_t n = 0, cap = 0;
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = matching_ids(s, filter, restrict_states(filter, 1u << ASPEN_STORE_FAILED), &ids, &n, err);
    if (code)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        aspen_store_retry_skip held;
        bool was_held = false;
        code = store_retry_one(s, ids[i], now_ms, &held, &was_held, err);
        if (was_held) {
            if (err)
                *err = (aspen_store_error){0}; /* a skip, not the call's failure */
            code = store_retry_skip_add(skipped, n_skipped, &cap, ids[i], held.key, &held.holder,
                                        err);
        } else if (!code)
            done++;
        if (code)
            goto free_ids;
    }
    free(ids);
    code = tx_commit(s, "retrying failed jobs", err);
    if (!code && retried)
        *retried = done;
    return code;
free_ids:
    free(ids);
rollback:
    tx_rollback(s);
    return code;
}

/* One batch of cancel_matching: counts[0] cancelled, counts[1] running ones asked to stop. */
static int cancel_batch(struct sqlite_store *s, const int64_t *ids, size_t n, void *ctx,
                        int64_t counts[2], aspen_store_error *err)
{
    const int64_t now_ms = *(const int64_t *)ctx;
    for (size_t i = 0; i < n; i++) {
        aspen_store_cancel_result r = ASPEN_STORE_CANCEL_DONE;
        int code = store_cancel_one(s, ids[i], now_ms, &r, err);
        if (code)
            return code;
        counts[r == ASPEN_STORE_CANCEL_DONE ? 0 : 1]++;
    }
    return 0;
}

/* In batches (sq_bulk_batches, store_backend.h): one transaction for a million jobs held the
 * write lock ~9 s, and every engine's claims and commits waited for it. */
int sq_cancel_matching(aspen_store *base, const aspen_store_filter *filter, int64_t now_ms,
                       int64_t *cancelled, int64_t *requested, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    unsigned live = 1u << ASPEN_STORE_QUEUED | 1u << ASPEN_STORE_SCHEDULED | 1u << ASPEN_STORE_RUNNING;
    int64_t totals[2];
    int code = sq_bulk_batches(s, filter, restrict_states(filter, live), "cancelling jobs",
                               cancel_batch, &now_ms, totals, err);
    if (cancelled)
        *cancelled = totals[0];
    if (requested)
        *requested = totals[1];
    if (code)
        store_bulk_partial(err, "cancelled", totals[0] + totals[1]);
    return code;
}

/* ---- counters ------------------------------------------------------------------------------------ */

int sq_counts(aspen_store *base, int64_t counts[ASPEN_STORE_STATE_COUNT], aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    memset(counts, 0, sizeof(int64_t) * ASPEN_STORE_STATE_COUNT);
    sqlite3_stmt *st = store_stmt(s, ST_COUNTS, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = state_from_text(sqlite3_column_text(st, 0));
        if (state >= 0)
            counts[state] = sqlite3_column_int64(st, 1);
    }
    int code = rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "counting jobs");
    sqlite3_reset(st);
    return code;
}

static int min_of(struct sqlite_store *s, enum stmt_id id, int64_t now_ms, int64_t *out,
                  bool *found, aspen_store_error *err)
{
    *found = false;
    sqlite3_stmt *st = store_stmt(s, id, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    if (id == ST_OLDEST_DUE)
        sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            *out = sqlite3_column_int64(st, 0);
            *found = true;
        }
    } else {
        code = store_sqlite_err(s, err, rc, "finding the oldest waiting job");
    }
    sqlite3_reset(st);
    return code;
}

int sq_oldest_waiting(aspen_store *base, int64_t now_ms, int64_t *age_ms, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *age_ms = 0;
    int64_t a = 0, b = 0;
    bool fa = false, fb = false;
    int code = min_of(s, ST_OLDEST_QUEUED, now_ms, &a, &fa, err);
    if (!code)
        code = min_of(s, ST_OLDEST_DUE, now_ms, &b, &fb, err);
    if (code)
        return code;
    if (fa || fb) {
        int64_t oldest = fa && fb ? (a < b ? a : b) : fa ? a : b;
        *age_ms = now_ms > oldest ? now_ms - oldest : 0;
    }
    return 0;
}

/* ---- attempts and logs --------------------------------------------------------------------------- */

int sq_attempts(aspen_store *base, int64_t job_id, aspen_store_attempt **out, size_t *n,
                aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_ATTEMPTS_GET, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, job_id);
    aspen_store_attempt *list = NULL;
    size_t count = 0, cap = 0;
    int rc, code = 0;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_attempt *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            oom = true;
            break;
        }
        list = grown;
        aspen_store_attempt *a = &list[count++];
        memset(a, 0, sizeof *a);
        a->job_id = sqlite3_column_int64(st, 0);
        a->number = sqlite3_column_int(st, 1);
        a->engine_id = sqlite3_column_int64(st, 2);
        a->started_at_ms = sqlite3_column_int64(st, 3);
        a->finished_at_ms = sqlite3_column_int64(st, 4);
        a->wall_us = sqlite3_column_int64(st, 5);
        a->exits = (uint64_t)sqlite3_column_int64(st, 6);
        a->host_calls = (uint64_t)sqlite3_column_int64(st, 7);
        a->pages_dirtied = (uint64_t)sqlite3_column_int64(st, 8);
        a->bytes_in = (uint64_t)sqlite3_column_int64(st, 9);
        a->bytes_out = (uint64_t)sqlite3_column_int64(st, 10);
        snprintf(a->outcome, sizeof a->outcome, "%s", (const char *)sqlite3_column_text(st, 11));
        a->error = col_dup(st, 12, &oom);
        a->recovered = sqlite3_column_int(st, 13) != 0;
        if (oom)
            break;
    }
    if (oom)
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading attempts");
    else if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading attempts");
    sqlite3_reset(st);
    if (code) {
        aspen_store_attempts_free(list, count);
        return code;
    }
    *out = list;
    *n = count;
    return 0;
}

int sq_logs(aspen_store *base, int64_t job_id, int64_t after_seq, size_t limit,
            aspen_store_log **out, size_t *n, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_LOGS_GET, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, after_seq);
    sqlite3_bind_int64(st, 3, limit ? (int64_t)limit : -1);
    aspen_store_log *list = NULL;
    size_t count = 0, cap = 0;
    int rc, code = 0;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_log *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            oom = true;
            break;
        }
        list = grown;
        aspen_store_log *l = &list[count++];
        memset(l, 0, sizeof *l);
        l->seq = sqlite3_column_int64(st, 0);
        l->attempt = sqlite3_column_int(st, 1);
        l->time_ms = sqlite3_column_int64(st, 2);
        l->line = col_dup(st, 3, &oom);
        l->marker = l->attempt == 0; /* real lines belong to attempt 1 or later */
        if (oom)
            break;
    }
    if (oom)
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading logs");
    else if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading logs");
    sqlite3_reset(st);
    if (code) {
        aspen_store_logs_free(list, count);
        return code;
    }
    *out = list;
    *n = count;
    return 0;
}

/* ---- the log feed (schema version 12) ------------------------------------------------------------ */

int sq_log_feed_end(aspen_store *base, aspen_store_log_cursor *cursor, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st = store_stmt(s, ST_LOG_FEED_END, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    int rc = sqlite3_step(st);
    int64_t tx = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(s, err, rc, "reading the end of the log feed");
    /* past every line of the highest number: the next INSERT numbers its lines tx + 1 */
    *cursor = (aspen_store_log_cursor){.tx = tx, .job = INT64_MAX, .seq = INT64_MAX};
    return 0;
}

int sq_log_feed(aspen_store *base, aspen_store_log_cursor *cursor, size_t limit,
                aspen_store_feed_line **out, size_t *n, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st = store_stmt(s, ST_LOG_FEED, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, cursor->tx);
    sqlite3_bind_int64(st, 2, cursor->job);
    sqlite3_bind_int64(st, 3, cursor->seq);
    sqlite3_bind_int64(st, 4, (int64_t)limit);
    aspen_store_feed_line *list = NULL;
    size_t count = 0, cap = 0;
    aspen_store_log_cursor last = *cursor;
    int rc, code = 0;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_feed_line *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            oom = true;
            break;
        }
        list = grown;
        aspen_store_feed_line *l = &list[count++];
        memset(l, 0, sizeof *l);
        last.tx = sqlite3_column_int64(st, 0);
        l->job_id = last.job = sqlite3_column_int64(st, 1);
        l->seq = last.seq = sqlite3_column_int64(st, 2);
        l->attempt = sqlite3_column_int(st, 3);
        l->time_ms = sqlite3_column_int64(st, 4);
        l->line = col_dup(st, 5, &oom);
        l->engine_id = sqlite3_column_int64(st, 6);
        const unsigned char *host = sqlite3_column_text(st, 7);
        snprintf(l->host, sizeof l->host, "%s", host ? (const char *)host : "");
        l->pid = sqlite3_column_int64(st, 8);
        l->marker = l->attempt == 0; /* real lines belong to attempt 1 or later */
        if (oom)
            break;
    }
    if (oom)
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading the log feed");
    else if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading the log feed");
    sqlite3_reset(st);
    if (code) {
        aspen_store_log_feed_free(list, count);
        return code;
    }
    *cursor = last;
    *out = list;
    *n = count;
    return 0;
}
