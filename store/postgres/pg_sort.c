/* pg_sort.c — the PostgreSQL backend's whole-store sort: a sorted page of jobs read from the
 * sort key's index (store/sort.c has the keys and the indexes of schema version 6), paged by key
 * after an anchor job. The same two ranges as SQLite's (sqlite_query.c): the anchor's key with ids
 * past it, then keys past the anchor's; each is one index range scan, whatever the table's size.
 */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void placeholder(struct pg_sql *q, const struct pg_params *p, const char *cast)
{
    char ph[32];
    snprintf(ph, sizeof ph, "$%d%s", p->n + 1, cast);
    pg_sql_add(q, ph);
}

/* Runs q and appends its rows to *list (count, cap). */
static int collect(struct pg_store *s, struct pg_sql *q, struct pg_params *p,
                   aspen_store_job **list, size_t *count, size_t *cap, aspen_store_error *err)
{
    if (q->oom)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory building a job query");
    PGresult *r = pg_exec_dynamic(s, q->text, p, "listing jobs", err);
    if (!r)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    int rows = PQntuples(r), code = 0;
    for (int i = 0; i < rows; i++) {
        aspen_store_job *grown = store_grow(*list, cap, *count, sizeof **list);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
            break;
        }
        *list = grown;
        code = pg_job_from_row(r, i, 0, &(*list)[*count], err);
        if (code)
            break;
        (*count)++;
    }
    PQclear(r);
    return code;
}

/* "SELECT … FROM jobs WHERE <filter>", and the glue for one more term. */
static int head(struct pg_sql *q, struct pg_params *p, const aspen_store_filter *f,
                const char **glue, aspen_store_error *err)
{
    pg_sql_add(q, "SELECT " PG_JOB_COLUMNS " FROM jobs");
    size_t before = q->len;
    int code = pg_filter_where(f, 0, q, p, err);
    *glue = q->len == before ? " WHERE " : " AND ";
    /* a filter that fixes the key's range, said in the key's terms (as on SQLite) */
    int lo, hi;
    if (!code && store_sort_key_range(f, &lo, &hi)) {
        char range[64];
        snprintf(range, sizeof range, " BETWEEN %d AND %d", lo, hi);
        pg_sql_add(q, *glue);
        pg_sql_add(q, store_sort_key_sql(f->sort, true));
        pg_sql_add(q, range);
        *glue = " AND ";
    } else if (!code && f->sort == ASPEN_STORE_SORT_GUEST && f->binary_name) {
        pg_sql_add(q, *glue);
        pg_sql_add(q, store_sort_key_sql(f->sort, true));
        pg_sql_add(q, " = ");
        placeholder(q, p, "::text");
        pg_p_text(p, f->binary_name);
        *glue = " AND ";
    }
    return code;
}

static void bind_key(struct pg_sql *q, struct pg_params *p, bool text, const char *t, int64_t i)
{
    placeholder(q, p, text ? "::text" : "::bigint");
    if (text)
        pg_p_text(p, t);
    else
        pg_p_int(p, i);
}

int pg_list_sorted(struct pg_store *s, const aspen_store_filter *f, aspen_store_job **jobs,
                   size_t *n, aspen_store_error *err)
{
    *jobs = NULL;
    *n = 0;
    const char *key = store_sort_key_sql(f->sort, true);
    bool desc = f->sort_desc, text = store_sort_key_is_text(f->sort);
    bool by_id = f->sort == ASPEN_STORE_SORT_ID;
    int64_t limit = f->limit ? f->limit : 100;
    if (f->after_id && f->offset > 0)
        return store_err(err, ASPEN_STORE_EINVAL, "a sorted page starts after a job or at an "
                                                  "offset, not both");
    char *anchor_t = NULL;
    int64_t anchor_i = 0;
    if (f->after_id) {
        struct pg_sql q = {0};
        struct pg_params p = {0};
        pg_sql_add(&q, "SELECT ");
        pg_sql_add(&q, key);
        pg_sql_add(&q, " FROM jobs WHERE id = $1::bigint");
        pg_p_int(&p, f->after_id);
        if (q.oom) {
            pg_sql_free(&q);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory building a job query");
        }
        PGresult *r = pg_exec_dynamic(s, q.text, &p, "reading a job's sort key", err);
        pg_sql_free(&q);
        if (!r)
            return err && err->code ? err->code : ASPEN_STORE_EIO;
        if (PQntuples(r) == 0) {
            PQclear(r);
            return store_err(err, ASPEN_STORE_ENOTFOUND,
                             "job %lld, where the page was to start, is gone (deleted): start "
                             "from the top of the list",
                             (long long)f->after_id);
        }
        const char *v = PQgetvalue(r, 0, 0);
        anchor_i = strtoll(v, NULL, 10);
        anchor_t = text ? store_strdup(v) : NULL;
        PQclear(r);
        if (text && !anchor_t)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing jobs");
    }
    aspen_store_job *list = NULL;
    size_t count = 0, cap = 0;
    int code = 0;
    const char *glue;
    if (f->after_id && !by_id) {
        /* 1: the anchor's key, ids past the anchor */
        struct pg_sql q = {0};
        struct pg_params p = {0};
        code = head(&q, &p, f, &glue, err);
        if (!code) {
            pg_sql_add(&q, glue);
            pg_sql_add(&q, key);
            pg_sql_add(&q, " = ");
            bind_key(&q, &p, text, anchor_t, anchor_i);
            pg_sql_add(&q, desc ? (f->after_inclusive ? " AND id <= " : " AND id < ")
                                : (f->after_inclusive ? " AND id >= " : " AND id > "));
            placeholder(&q, &p, "::bigint");
            pg_p_int(&p, f->after_id);
            pg_sql_add(&q, desc ? " ORDER BY id DESC LIMIT " : " ORDER BY id LIMIT ");
            placeholder(&q, &p, "::bigint");
            if (limit < 0)
                pg_p_text(&p, NULL);
            else
                pg_p_int(&p, limit);
            code = collect(s, &q, &p, &list, &count, &cap, err);
        }
        pg_sql_free(&q);
        if (code || (limit >= 0 && (int64_t)count >= limit))
            goto done;
    }
    /* 2: keys past the anchor's (or from the start) */
    struct pg_sql q = {0};
    struct pg_params p = {0};
    code = head(&q, &p, f, &glue, err);
    if (!code) {
        if (f->after_id) {
            pg_sql_add(&q, glue);
            pg_sql_add(&q, key);
            pg_sql_add(&q, desc ? (by_id && f->after_inclusive ? " <= " : " < ")
                                : (by_id && f->after_inclusive ? " >= " : " > "));
            bind_key(&q, &p, text, anchor_t, anchor_i);
        }
        pg_sql_add(&q, " ORDER BY ");
        pg_sql_add(&q, key);
        if (desc)
            pg_sql_add(&q, " DESC");
        if (!by_id)
            pg_sql_add(&q, desc ? ", id DESC" : ", id");
        pg_sql_add(&q, " LIMIT ");
        placeholder(&q, &p, "::bigint");
        if (limit < 0)
            pg_p_text(&p, NULL);
        else
            pg_p_int(&p, limit - (int64_t)count);
        pg_sql_add(&q, " OFFSET ");
        placeholder(&q, &p, "::bigint");
        pg_p_int(&p, f->offset > 0 ? f->offset : 0);
        code = collect(s, &q, &p, &list, &count, &cap, err);
    }
    pg_sql_free(&q);
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
