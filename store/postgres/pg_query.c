/* pg_query.c — the PostgreSQL backend's read side for the CLI and the console: one job, filtered
 * lists and counts, counts per state, the age of the oldest waiting job, attempts, log tails; and
 * the filtered bulk actions (retry every failed job that matches, cancel everything that
 * matches), which reuse the filter's WHERE clause.
 *
 * A parsed filter (filter.c) becomes one statement whose values are all bound parameters: the SQL
 * text holds only column names, state names from the store's own table and $N placeholders, so a
 * filter value is always data. Payload fields are read with json_extract_path_text, with the
 * same text comparison as SQLite's CAST(json_extract(…) AS TEXT) (a JSON true compares as "1"). */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int code_of(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

/* ---- rows into structs ------------------------------------------------------------------------- */

int pg_job_from_row(const PGresult *r, int row, int c, aspen_store_job *job, aspen_store_error *err)
{
    bool oom = false;
    memset(job, 0, sizeof *job);
    job->id = pg_get_int(r, row, c + 0);
    job->type = pg_get_text(r, row, c + 1, &oom);
    job->binary_sha256 = pg_get_text(r, row, c + 2, &oom);
    job->binary_name = pg_get_text(r, row, c + 3, &oom);
    job->payload = pg_get_text(r, row, c + 4, &oom);
    job->state = (aspen_store_state)state_from_text((const unsigned char *)PQgetvalue(r, row, c + 5));
    job->priority = (int)pg_get_int(r, row, c + 6);
    job->run_at_ms = pg_get_int(r, row, c + 7);
    job->attempts = (int)pg_get_int(r, row, c + 8);
    job->max_attempts = (int)pg_get_int(r, row, c + 9);
    job->timeout_ms = pg_get_int(r, row, c + 10);
    job->memory_bytes = pg_get_int(r, row, c + 11);
    job->isolation = pg_get_int(r, row, c + 12) != 0;
    job->tags = pg_get_text(r, row, c + 13, &oom);
    job->created_at_ms = pg_get_int(r, row, c + 14);
    job->started_at_ms = pg_get_int(r, row, c + 15);
    job->finished_at_ms = pg_get_int(r, row, c + 16);
    job->result = pg_get_bytes(r, row, c + 17, &job->result_size, &oom);
    job->error = pg_get_text(r, row, c + 18, &oom);
    job->rerun_of = pg_get_int(r, row, c + 19);
    job->owner = pg_get_int(r, row, c + 20);
    job->cancel_requested = pg_get_bool(r, row, c + 21);
    job->source_dir = pg_get_text(r, row, c + 22, &oom);
    job->log_count = (int)pg_get_int(r, row, c + 23);
    job->log_dropped = pg_get_int(r, row, c + 24);
    snprintf(job->queue, sizeof job->queue, "%s",
             PQgetisnull(r, row, c + 25) ? "default" : PQgetvalue(r, row, c + 25));
    if (oom) {
        aspen_store_job_clear(job);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a job");
    }
    return 0;
}

int pg_get(aspen_store *base, int64_t id, aspen_store_job *out, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    memset(out, 0, sizeof *out);
    struct pg_params p = {0};
    pg_p_int(&p, id);
    PGresult *r = pg_exec(s, "aspen_job_get",
                          "SELECT " PG_JOB_COLUMNS " FROM jobs WHERE id = $1::bigint", &p,
                          "reading a job", err);
    if (!r)
        return code_of(err);
    int code;
    if (PQntuples(r) == 1)
        code = pg_job_from_row(r, 0, 0, out, err);
    else
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "no job %lld in %s: check the id (aspen jobs%s)",
                         (long long)id, s->shown, store_cmd(&s->base));
    PQclear(r);
    return code;
}

/* ---- SQL text ------------------------------------------------------------------------------------ */

void pg_sql_add(struct pg_sql *q, const char *text)
{
    if (q->oom || !text)
        return;
    size_t n = strlen(text);
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *grown = realloc(q->text, cap);
        if (!grown) {
            q->oom = true;
            return;
        }
        q->text = grown;
        q->cap = cap;
    }
    memcpy(q->text + q->len, text, n + 1);
    q->len += n;
}

void pg_sql_free(struct pg_sql *q)
{
    free(q->text);
    memset(q, 0, sizeof *q);
}

/* "$N" of the parameter about to be added. */
static void add_placeholder(struct pg_sql *q, const struct pg_params *p, const char *cast)
{
    char ph[32];
    snprintf(ph, sizeof ph, "$%d%s", p->n + 1, cast);
    pg_sql_add(q, ph);
}

/* ---- filters -------------------------------------------------------------------------------------- */

/* The text[] literal of a payload path ("user.name", "$.items[0].id") for json_extract_path:
 * {"user","name"}. Every element is double-quoted with " and \ escaped, so a key can hold any
 * character; the literal is a bound value, never SQL. EINVAL for a path that is not one. */
static int path_literal(const char *path, char *out, size_t size, aspen_store_error *err)
{
    size_t n = 0;
    bool ok = size > 2, any = false;
    const char *p = path;
    if (*p == '$')
        p++;
    if (*p == '.')
        p++;
    if (ok)
        out[n++] = '{';
    while (ok && *p) {
        const char *start, *end;
        if (*p == '[') {
            start = p + 1;
            end = strchr(start, ']');
            if (!end || end == start)
                ok = false;
            for (const char *d = start; ok && d < end; d++)
                if (*d < '0' || *d > '9')
                    ok = false;
            if (!ok)
                break;
            p = end + 1;
        } else {
            start = p;
            end = p + strcspn(p, ".[");
            if (end == start)
                ok = false;
            p = end;
        }
        if (!ok)
            break;
        if (any)
            out[n++] = ',';
        if (n + 1 >= size) {
            ok = false;
            break;
        }
        out[n++] = '"';
        for (const char *c = start; ok && c < end; c++) {
            if (n + 4 >= size) {
                ok = false;
                break;
            }
            if (*c == '"' || *c == '\\')
                out[n++] = '\\';
            out[n++] = *c;
        }
        if (!ok || n + 3 >= size) {
            ok = false;
            break;
        }
        out[n++] = '"';
        any = true;
        if (*p == '.') {
            p++;
            if (!*p)
                ok = false; /* a trailing dot */
        }
    }
    if (!ok || !any)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "bad payload field path '%.100s': write it like payload.user or "
                         "payload.items[0].name",
                         path);
    out[n++] = '}';
    out[n] = '\0';
    return 0;
}

/* The paths' literals live as long as the statement: pg_params points at them. */
struct filter_buf {
    char paths[ASPEN_STORE_FILTER_MAX_FIELDS][600];
};

/* Appends the filter's terms, the first after `glue` (" WHERE ", or " AND " behind the caller's
 * own terms); `states` (0: the filter's) overrides filter->states. */
static int filter_where_after(const aspen_store_filter *f, unsigned states, struct pg_sql *q,
                              struct pg_params *p, struct filter_buf *fb, const char *glue,
                              aspen_store_error *err)
{
    if (!states && f)
        states = f->states;
    unsigned all = (1u << ASPEN_STORE_STATE_COUNT) - 1;
    if (states && (states & all) != all) {
        /* One state: `state = 'x'`, which matches that state's partial index. */
        int n = 0;
        for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
            n += (states >> i) & 1;
        pg_sql_add(q, glue);
        pg_sql_add(q, n == 1 ? "state = " : "state IN (");
        bool first = true;
        for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
            if (states & (1u << i)) {
                pg_sql_add(q, first ? "'" : ", '");
                pg_sql_add(q, aspen_store_state_name((aspen_store_state)i));
                pg_sql_add(q, "'");
                first = false;
            }
        if (first)
            pg_sql_add(q, "NULL"); /* only bits past the known states: nothing matches */
        if (n != 1)
            pg_sql_add(q, ")");
        glue = " AND ";
        /* Final states only: the term jobs_finished's predicate needs before the planner may read
         * it (version 14); every job in a final state has finished_at (store/state.c). */
        if (store_states_final_only(states))
            pg_sql_add(q, " AND finished_at IS NOT NULL");
    }
    if (!f)
        return 0;
    if (f->id) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "id = ");
        add_placeholder(q, p, "::bigint");
        pg_p_int(p, f->id);
        glue = " AND ";
    }
    if (f->type) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "type = ");
        add_placeholder(q, p, "::text");
        pg_p_text(p, f->type);
        glue = " AND ";
    }
    if (f->binary_name) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "binary_name = ");
        add_placeholder(q, p, "::text");
        pg_p_text(p, f->binary_name);
        glue = " AND ";
    }
    if (f->tag) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "EXISTS (SELECT 1 FROM json_array_elements_text(jobs.tags) t WHERE t = ");
        add_placeholder(q, p, "::text)");
        pg_p_text(p, f->tag);
        glue = " AND ";
    }
    if (f->queue) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "queue = ");
        add_placeholder(q, p, "::text");
        pg_p_text(p, f->queue);
        glue = " AND ";
    }
    if (f->rerun_of) {
        pg_sql_add(q, glue);
        pg_sql_add(q, "rerun_of = ");
        add_placeholder(q, p, "::bigint");
        pg_p_int(p, f->rerun_of);
        glue = " AND ";
    }
    if (f->n_fields > ASPEN_STORE_FILTER_MAX_FIELDS)
        return store_err(err, ASPEN_STORE_EINVAL, "at most %d payload fields per filter",
                         ASPEN_STORE_FILTER_MAX_FIELDS);
    for (size_t i = 0; i < f->n_fields; i++) {
        const char *path = f->fields[i].path, *v = f->fields[i].value;
        if (!path || !*path || !v)
            return store_err(err, ASPEN_STORE_EINVAL, "payload field %zu has no path or value",
                             i + 1);
        int code = path_literal(path, fb->paths[i], sizeof fb->paths[i], err);
        if (code)
            return code;
        if (strcmp(v, "true") == 0)
            v = "1";
        else if (strcmp(v, "false") == 0)
            v = "0";
        char ph[16];
        snprintf(ph, sizeof ph, "$%d", p->n + 1);
        pg_sql_add(q, glue);
        /* A JSON boolean reads as "1"/"0", as SQLite's json_extract gives it. */
        pg_sql_add(q, "(CASE WHEN json_typeof(json_extract_path(payload, VARIADIC ");
        pg_sql_add(q, ph);
        pg_sql_add(q, "::text[])) = 'boolean' THEN CASE json_extract_path_text(payload, VARIADIC ");
        pg_sql_add(q, ph);
        pg_sql_add(q, "::text[]) WHEN 'true' THEN '1' ELSE '0' END"
                      " ELSE json_extract_path_text(payload, VARIADIC ");
        pg_sql_add(q, ph);
        pg_sql_add(q, "::text[]) END) = ");
        pg_p_text(p, fb->paths[i]);
        add_placeholder(q, p, "::text");
        pg_p_text(p, v);
        glue = " AND ";
    }
    if (p->overflow)
        return store_err(err, ASPEN_STORE_EINVAL, "filter too complex");
    if (q->oom)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory building a job query");
    return 0;
}

static int filter_where(const aspen_store_filter *f, unsigned states, struct pg_sql *q,
                        struct pg_params *p, struct filter_buf *fb, aspen_store_error *err)
{
    return filter_where_after(f, states, q, p, fb, " WHERE ", err);
}

int pg_filter_where(const aspen_store_filter *f, unsigned states, struct pg_sql *q,
                    struct pg_params *p, aspen_store_error *err)
{
    /* Payload paths become text[] literals that p points at: here they live in a per-thread
     * buffer, valid until this thread's next call (the queries below keep their own). */
    static _Thread_local struct filter_buf fb;
    return filter_where(f, states, q, p, &fb, err);
}

/* ---- filtered queries ---------------------------------------------------------------------------- */

int pg_list(aspen_store *base, const aspen_store_filter *filter, aspen_store_job **jobs, size_t *n,
            aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *jobs = NULL;
    *n = 0;
    if (filter && (filter->sort != ASPEN_STORE_SORT_NONE || filter->after_id)) {
        if ((unsigned)filter->sort >= ASPEN_STORE_SORT_COUNT)
            return store_err(err, ASPEN_STORE_EINVAL, "unknown sort %d", (int)filter->sort);
        aspen_store_filter f = *filter;
        if (f.sort == ASPEN_STORE_SORT_NONE) /* paging by id in the order's direction */
            f.sort = ASPEN_STORE_SORT_ID, f.sort_desc = f.order != ASPEN_STORE_ORDER_OLDEST;
        return pg_list_sorted(s, &f, jobs, n, err); /* pg_sort.c */
    }
    struct pg_sql q = {0};
    struct pg_params p = {0};
    struct filter_buf fb;
    pg_sql_add(&q, "SELECT " PG_JOB_COLUMNS " FROM jobs");
    int code = filter_where(filter, 0, &q, &p, &fb, err);
    if (code)
        goto done;
    aspen_store_order order = filter ? filter->order : ASPEN_STORE_ORDER_NEWEST;
    pg_sql_add(&q, order == ASPEN_STORE_ORDER_OLDEST  ? " ORDER BY id"
                   : order == ASPEN_STORE_ORDER_QUEUE ? " ORDER BY priority DESC, run_at, id"
                                                      : " ORDER BY id DESC");
    int64_t limit = filter && filter->limit ? filter->limit : 100;
    pg_sql_add(&q, " LIMIT ");
    add_placeholder(&q, &p, "::bigint");
    if (limit < 0)
        pg_p_text(&p, NULL); /* LIMIT NULL: no limit */
    else
        pg_p_int(&p, limit);
    pg_sql_add(&q, " OFFSET ");
    add_placeholder(&q, &p, "::bigint");
    pg_p_int(&p, filter && filter->offset > 0 ? filter->offset : 0);
    if (q.oom) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory building a job query");
        goto done;
    }
    PGresult *r = pg_exec_dynamic(s, q.text, &p, "listing jobs", err);
    if (!r) {
        code = code_of(err);
        goto done;
    }
    size_t count = (size_t)PQntuples(r);
    aspen_store_job *list = count ? calloc(count, sizeof *list) : NULL;
    if (count && !list) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
        PQclear(r);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        code = pg_job_from_row(r, (int)i, 0, &list[i], err);
        if (code) {
            aspen_store_jobs_free(list, i);
            PQclear(r);
            goto done;
        }
    }
    PQclear(r);
    *jobs = list;
    *n = count;
done:
    pg_sql_free(&q);
    return code;
}

int pg_count(aspen_store *base, const aspen_store_filter *filter, int64_t *count,
             aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *count = 0;
    struct pg_sql q = {0};
    struct pg_params p = {0};
    struct filter_buf fb;
    pg_sql_add(&q, "SELECT count(*) FROM jobs");
    int code = filter_where(filter, 0, &q, &p, &fb, err);
    if (!code) {
        PGresult *r = pg_exec_dynamic(s, q.text, &p, "counting jobs", err);
        if (r) {
            *count = pg_get_int(r, 0, 0);
            PQclear(r);
        } else {
            code = code_of(err);
        }
    }
    pg_sql_free(&q);
    return code;
}

/* Ids matching f restricted to `states`, in id order, locked (FOR UPDATE) for the caller's
 * transaction: a row another host changes meanwhile is re-checked against the filter by the
 * server and left out if it no longer matches. */
/* The ids of the matching jobs in `states`, ascending, locked; with `limit` (> 0) only the first
 * `limit` of those with after < id <= through (a bulk action's next batch, store_backend.h). */
static int matching_ids_range(struct pg_store *s, const aspen_store_filter *f, unsigned states,
                              int64_t after, int64_t through, int64_t limit, int64_t **ids,
                              size_t *n, aspen_store_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!states)
        return 0;
    struct pg_sql q = {0};
    struct pg_params p = {0};
    struct filter_buf fb;
    int code;
    if (limit > 0) {
        pg_sql_add(&q, "SELECT id FROM jobs WHERE id > ");
        add_placeholder(&q, &p, "::bigint");
        pg_p_int(&p, after);
        pg_sql_add(&q, " AND id <= ");
        add_placeholder(&q, &p, "::bigint");
        pg_p_int(&p, through);
        code = filter_where_after(f, states, &q, &p, &fb, " AND ", err);
    } else {
        pg_sql_add(&q, "SELECT id FROM jobs");
        code = filter_where(f, states, &q, &p, &fb, err);
    }
    if (code)
        goto done;
    pg_sql_add(&q, " ORDER BY id");
    if (limit > 0) {
        pg_sql_add(&q, " LIMIT ");
        add_placeholder(&q, &p, "::bigint");
        pg_p_int(&p, limit);
    }
    pg_sql_add(&q, " FOR UPDATE");
    PGresult *r = q.oom ? NULL : pg_exec_dynamic(s, q.text, &p, "selecting jobs", err);
    if (!r) {
        code = q.oom ? store_err(err, ASPEN_STORE_ENOMEM, "out of memory selecting jobs")
                     : code_of(err);
        goto done;
    }
    size_t count = (size_t)PQntuples(r);
    if (count) {
        *ids = malloc(count * sizeof **ids);
        if (!*ids) {
            PQclear(r);
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory selecting jobs");
            goto done;
        }
        for (size_t i = 0; i < count; i++)
            (*ids)[i] = pg_get_int(r, (int)i, 0);
    }
    *n = count;
    PQclear(r);
done:
    pg_sql_free(&q);
    return code;
}

static int matching_ids(struct pg_store *s, const aspen_store_filter *f, unsigned states,
                        int64_t **ids, size_t *n, aspen_store_error *err)
{
    return matching_ids_range(s, f, states, 0, 0, 0, ids, n, err);
}

static unsigned restrict_states(const aspen_store_filter *f, unsigned allowed)
{
    return f && f->states ? f->states & allowed : allowed;
}

int pg_bulk_batches(struct pg_store *s, const aspen_store_filter *filter, unsigned states,
                    const char *what, pg_bulk_fn fn, void *ctx, int64_t totals[2],
                    aspen_store_error *err)
{
    int64_t after = 0, through = 0;
    totals[0] = totals[1] = 0;
    int code = 0;
    for (bool first = true; states; first = false) {
        code = pg_tx_begin(s, err);
        if (code)
            break;
        if (first) { /* the newest job now: one submitted meanwhile is not taken */
            PGresult *r = pg_exec(s, "pgq_max_id", "SELECT coalesce(max(id), 0) FROM jobs", NULL,
                                  what, err);
            if (!r)
                code = code_of(err);
            else {
                through = pg_get_int(r, 0, 0);
                PQclear(r);
            }
        }
        int64_t *ids = NULL, got[2] = {0, 0};
        size_t n = 0;
        if (!code) /* locked, in id order */
            code = matching_ids_range(s, filter, states, after, through, STORE_BULK_BATCH, &ids,
                                      &n, err);
        if (!code && n)
            code = fn(s, ids, n, ctx, got, err);
        if (n)
            after = ids[n - 1];
        free(ids);
        if (code) {
            pg_tx_rollback(s);
            break;
        }
        code = pg_tx_commit(s, what, err);
        if (code)
            break;
        totals[0] += got[0]; /* counted once its batch committed */
        totals[1] += got[1];
        if (n < STORE_BULK_BATCH)
            break;
    }
    return code;
}

/* A per-job refusal the bulk action steps over (the job moved or went since it was selected)
 * when the transaction is still usable: pg_job_write decides those on the client. */
static bool skippable(struct pg_store *s, int code)
{
    return (code == ASPEN_STORE_ESTATE || code == ASPEN_STORE_ENOTFOUND) && s->in_tx &&
           PQtransactionStatus(s->conn) == PQTRANS_INTRANS;
}

/* Every matching failed job retried in one transaction, except those whose unique key another
 * job holds (listed in *skipped). Locks: the rows (matching_ids, id order), then every key of the
 * selection at once in ascending hash order, then per job; a single retry takes its row, then its
 * key, and a submit only keys, so no two of them wait on each other in a cycle. */
int pg_retry_failed(aspen_store *base, const aspen_store_filter *filter, int64_t now_ms,
                    int64_t *retried, aspen_store_retry_skip **skipped, size_t *n_skipped,
                    aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    if (retried)
        *retried = 0;
    int64_t *ids = NULL, done = 0;
    size_t n = 0, cap = 0;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = matching_ids(s, filter, restrict_states(filter, 1u << ASPEN_STORE_FAILED), &ids, &n, err);
    if (!code)
        code = pg_unique_lock_jobs(s, ids, n, err);
    for (size_t i = 0; !code && i < n; i++) {
        aspen_store_retry_skip held;
        bool was_held = false;
        code = pg_retry_one(s, ids[i], now_ms, &held, &was_held, err);
        if (was_held) {
            if (err)
                *err = (aspen_store_error){0}; /* a skip, not the call's failure */
            code = store_retry_skip_add(skipped, n_skipped, &cap, ids[i], held.key, &held.holder,
                                        err);
        } else if (!code)
            done++;
        else if (skippable(s, code))
            code = 0;
    }
    free(ids);
    if (!code && done)
        code = pg_notify_work(s, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    code = pg_tx_commit(s, "retrying failed jobs", err);
    if (!code && retried)
        *retried = done;
    return code;
}

/* One batch of cancel_matching, the locked rows in a few statements (one job at a time took
 * three round trips each, 18 s for 100,000 jobs: trial 23): counts[0] cancelled, counts[1]
 * running ones asked to stop. */
static int cancel_batch(struct pg_store *s, const int64_t *ids, size_t n, void *ctx,
                        int64_t counts[2], aspen_store_error *err)
{
    return pg_cancel_ids(s, ids, n, *(const int64_t *)ctx, &counts[0], &counts[1], err);
}

/* In batches (pg_bulk_batches, store_backend.h): a million in one transaction took ~15-27 s,
 * holding the job_counts rows every completion of every engine updates. */
int pg_cancel_matching(aspen_store *base, const aspen_store_filter *filter, int64_t now_ms,
                       int64_t *cancelled, int64_t *requested, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    unsigned live = 1u << ASPEN_STORE_QUEUED | 1u << ASPEN_STORE_SCHEDULED | 1u << ASPEN_STORE_RUNNING;
    int64_t totals[2];
    int code = pg_bulk_batches(s, filter, restrict_states(filter, live), "cancelling jobs",
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

int pg_counts(aspen_store *base, int64_t counts[ASPEN_STORE_STATE_COUNT], aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    memset(counts, 0, sizeof(int64_t) * ASPEN_STORE_STATE_COUNT);
    PGresult *r = pg_exec(s, "aspen_counts", "SELECT state, n FROM job_counts", NULL,
                          "counting jobs", err);
    if (!r)
        return code_of(err);
    for (int i = 0; i < PQntuples(r); i++) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, i, 0));
        if (state >= 0)
            counts[state] = pg_get_int(r, i, 1);
    }
    PQclear(r);
    return 0;
}

int pg_oldest_waiting(aspen_store *base, int64_t now_ms, int64_t *age_ms, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *age_ms = 0;
    struct pg_params p = {0};
    pg_p_now(&p, now_ms);
    /* min(run_at) of the queued jobs hops from one distinct priority to the next over the queue
     * index (a few index probes per priority in use, not one row per queued job), as on SQLite.
     * "now" is the server's clock with the caller's offset, the clock run_at is written in. */
    PGresult *r = pg_exec(
        s, "aspen_oldest_waiting",
        "WITH RECURSIVE p(pr) AS ("
        " SELECT (SELECT priority FROM jobs WHERE state = 'queued' ORDER BY priority DESC LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT priority FROM jobs WHERE state = 'queued' AND priority < p.pr"
        "         ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pr IS NOT NULL),"
        " n(now) AS (SELECT " PG_NOW(1) ")"
        " SELECT n.now - least("
        "  (SELECT min((SELECT run_at FROM jobs WHERE state = 'queued' AND priority = p.pr"
        "               ORDER BY priority DESC, run_at LIMIT 1)) FROM p WHERE p.pr IS NOT NULL),"
        "  (SELECT min(run_at) FROM jobs WHERE state = 'scheduled' AND run_at <= n.now))"
        " FROM n",
        &p, "finding the oldest waiting job", err);
    if (!r)
        return code_of(err);
    int64_t age = pg_get_int(r, 0, 0); /* NULL (nothing waits) → 0 */
    *age_ms = age > 0 ? age : 0;
    PQclear(r);
    return 0;
}

/* ---- attempts and logs --------------------------------------------------------------------------- */

int pg_attempts(aspen_store *base, int64_t job_id, aspen_store_attempt **out, size_t *n,
                aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *out = NULL;
    *n = 0;
    struct pg_params p = {0};
    pg_p_int(&p, job_id);
    PGresult *r = pg_exec(s, "aspen_attempts_get",
                          "SELECT job, number, engine, started_at, finished_at, wall_us, exits,"
                          " host_calls, pages_dirtied, bytes_in, bytes_out, outcome, error,"
                          " recovered FROM attempts WHERE job = $1::bigint ORDER BY number",
                          &p, "reading attempts", err);
    if (!r)
        return code_of(err);
    size_t count = (size_t)PQntuples(r);
    aspen_store_attempt *list = count ? calloc(count, sizeof *list) : NULL;
    bool oom = count && !list;
    for (size_t i = 0; !oom && i < count; i++) {
        aspen_store_attempt *a = &list[i];
        int row = (int)i;
        a->job_id = pg_get_int(r, row, 0);
        a->number = (int)pg_get_int(r, row, 1);
        a->engine_id = pg_get_int(r, row, 2);
        a->started_at_ms = pg_get_int(r, row, 3);
        a->finished_at_ms = pg_get_int(r, row, 4);
        a->wall_us = pg_get_int(r, row, 5);
        a->exits = (uint64_t)pg_get_int(r, row, 6);
        a->host_calls = (uint64_t)pg_get_int(r, row, 7);
        a->pages_dirtied = (uint64_t)pg_get_int(r, row, 8);
        a->bytes_in = (uint64_t)pg_get_int(r, row, 9);
        a->bytes_out = (uint64_t)pg_get_int(r, row, 10);
        snprintf(a->outcome, sizeof a->outcome, "%s", PQgetvalue(r, row, 11));
        a->error = pg_get_text(r, row, 12, &oom);
        a->recovered = pg_get_bool(r, row, 13);
    }
    PQclear(r);
    if (oom) {
        aspen_store_attempts_free(list, count);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading attempts");
    }
    *out = list;
    *n = count;
    return 0;
}

int pg_logs(aspen_store *base, int64_t job_id, int64_t after_seq, size_t limit,
            aspen_store_log **out, size_t *n, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *out = NULL;
    *n = 0;
    struct pg_params p = {0};
    pg_p_int(&p, job_id);
    pg_p_int(&p, after_seq);
    if (limit)
        pg_p_int(&p, (int64_t)limit);
    else
        pg_p_text(&p, NULL); /* LIMIT NULL: all */
    PGresult *r = pg_exec(s, "aspen_logs_get",
                          "SELECT seq, attempt, time_ms, line FROM logs WHERE job = $1::bigint"
                          " AND seq > $2::bigint ORDER BY seq LIMIT $3::bigint",
                          &p, "reading logs", err);
    if (!r)
        return code_of(err);
    size_t count = (size_t)PQntuples(r);
    aspen_store_log *list = count ? calloc(count, sizeof *list) : NULL;
    bool oom = count && !list;
    for (size_t i = 0; !oom && i < count; i++) {
        aspen_store_log *l = &list[i];
        int row = (int)i;
        l->seq = pg_get_int(r, row, 0);
        l->attempt = (int)pg_get_int(r, row, 1);
        l->time_ms = pg_get_int(r, row, 2);
        l->line = pg_get_text(r, row, 3, &oom);
        l->marker = l->attempt == 0; /* real lines belong to attempt 1 or later */
    }
    PQclear(r);
    if (oom) {
        aspen_store_logs_free(list, count);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading logs");
    }
    *out = list;
    *n = count;
    return 0;
}

/* ---- the log feed (schema version 12, pg_migrate_v12) ------------------------------------------- */

int pg_log_feed_end(aspen_store *base, aspen_store_log_cursor *cursor, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    /* Just before the oldest transaction still running: everything older is final, and what
     * that one and later ones write comes after the cursor. */
    PGresult *r = pg_exec(s, "aspen_log_feed_end",
                          "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1",
                          NULL, "reading the end of the log feed", err);
    if (!r)
        return code_of(err);
    *cursor = (aspen_store_log_cursor){.tx = pg_get_int(r, 0, 0), .job = INT64_MAX,
                                       .seq = INT64_MAX};
    PQclear(r);
    return 0;
}

int pg_log_feed(aspen_store *base, aspen_store_log_cursor *cursor, size_t limit,
                aspen_store_feed_line **out, size_t *n, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct pg_params p = {0};
    pg_p_int(&p, cursor->tx);
    pg_p_int(&p, cursor->job);
    pg_p_int(&p, cursor->seq);
    pg_p_int(&p, (int64_t)limit);
    PGresult *r = pg_exec(
        s, "aspen_log_feed",
        "SELECT l.xid::text::bigint, l.job, l.seq, l.attempt, l.time_ms, l.line,"
        " coalesce(a.engine, j.owner, 0), e.host, e.pid FROM logs l"
        " LEFT JOIN attempts a ON a.job = l.job AND a.number = l.attempt"
        " LEFT JOIN jobs j ON j.id = l.job"
        " LEFT JOIN engines e ON e.id = coalesce(a.engine, j.owner)"
        " WHERE (l.xid, l.job, l.seq) > ($1::bigint::text::xid8, $2::bigint, $3::bigint)"
        " AND l.xid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY l.xid, l.job, l.seq LIMIT $4::bigint",
        &p, "reading the log feed", err);
    if (!r)
        return code_of(err);
    size_t count = (size_t)PQntuples(r);
    aspen_store_feed_line *list = count ? calloc(count, sizeof *list) : NULL;
    bool oom = count && !list;
    aspen_store_log_cursor last = *cursor;
    for (size_t i = 0; !oom && i < count; i++) {
        aspen_store_feed_line *l = &list[i];
        int row = (int)i;
        last.tx = pg_get_int(r, row, 0);
        l->job_id = last.job = pg_get_int(r, row, 1);
        l->seq = last.seq = pg_get_int(r, row, 2);
        l->attempt = (int)pg_get_int(r, row, 3);
        l->time_ms = pg_get_int(r, row, 4);
        l->line = pg_get_text(r, row, 5, &oom);
        l->engine_id = pg_get_int(r, row, 6);
        snprintf(l->host, sizeof l->host, "%s", PQgetvalue(r, row, 7));
        l->pid = pg_get_int(r, row, 8);
        l->marker = l->attempt == 0; /* real lines belong to attempt 1 or later */
    }
    PQclear(r);
    if (oom) {
        aspen_store_log_feed_free(list, count);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading the log feed");
    }
    *cursor = last;
    *out = list;
    *n = count;
    return 0;
}
