/* postgres/pg_attempt_data.c — the PostgreSQL side of attempt data (schema version 6): the blobs a
 * finished attempt keeps beside its row (an ELF core, a replay record) in their own table, so the
 * attempts table stays narrow and the group commit never touches it. The engine writes them in a
 * transaction of their own after the attempt's commit. The table's foreign key to jobs deletes
 * them with their job (ON DELETE CASCADE), so delete, purge and retention need not know them. A
 * replay record comes with its completion, in the group commit (pg_commit_replay); cores, which
 * can be megabytes, in a transaction of their own after it. */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int code_of(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

int pg_commit_replay(struct pg_store *s, const aspen_store_completion *c, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, c->job_id);
    pg_p_int(&p, c->replay_attempt);
    pg_p_int(&p, (int64_t)c->replay_size);
    pg_p_bytes(&p, c->replay, c->replay_size);
    PGresult *r = pg_exec(s, "aspen_attempt_data_commit",
                          "INSERT INTO attempt_data (job, attempt, kind, size, bytes)"
                          " VALUES ($1::bigint, $2::integer, 2, $3::bigint, $4)"
                          " ON CONFLICT (job, attempt, kind)"
                          " DO UPDATE SET size = EXCLUDED.size, bytes = EXCLUDED.bytes",
                          &p, "storing a replay record", err);
    if (!r)
        return code_of(err);
    PQclear(r);
    return 0;
}

int pg_put_attempt_data(aspen_store *base, const aspen_store_attempt_data *items, size_t n,
                        aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    const char *what = "storing an attempt's core or replay record";
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    for (size_t i = 0; i < n; i++) {
        const aspen_store_attempt_data *d = &items[i];
        struct pg_params p = {0};
        pg_p_int(&p, d->job_id);
        pg_p_int(&p, d->attempt);
        pg_p_int(&p, (int64_t)d->kind);
        pg_p_int(&p, (int64_t)d->size);
        pg_p_bytes(&p, d->bytes, d->size);
        PGresult *r = pg_exec(s, "aspen_attempt_data_put",
                              "INSERT INTO attempt_data (job, attempt, kind, size, bytes)"
                              " SELECT $1::bigint, $2::integer, $3::integer, $4::bigint, $5"
                              " WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1::bigint)"
                              " ON CONFLICT (job, attempt, kind)"
                              " DO UPDATE SET size = EXCLUDED.size, bytes = EXCLUDED.bytes",
                              &p, what, err);
        if (!r) {
            code = code_of(err);
            break;
        }
        bool none = strcmp(PQcmdTuples(r), "0") == 0;
        PQclear(r);
        if (none) {
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "job %lld is not in %s (deleted meanwhile?): its %s was not kept",
                             (long long)d->job_id, s->shown, aspen_store_data_kind_name(d->kind));
            break;
        }
    }
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    return pg_tx_commit(s, what, err);
}

int pg_get_attempt_data(aspen_store *base, int64_t job_id, int attempt, int kind, void **bytes,
                        size_t *size, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct pg_params p = {0};
    pg_p_int(&p, job_id);
    pg_p_int(&p, attempt);
    pg_p_int(&p, kind);
    PGresult *r = pg_exec(s, "aspen_attempt_data_get",
                          "SELECT bytes FROM attempt_data WHERE job = $1::bigint"
                          " AND attempt = $2::integer AND kind = $3::integer",
                          &p, "reading an attempt's core or replay record", err);
    if (!r)
        return code_of(err);
    int code = 0;
    if (PQntuples(r) == 1) {
        bool oom = false;
        size_t len = 0;
        void *b = pg_get_bytes(r, 0, 0, &len, &oom);
        if (!oom && !b)
            oom = !(b = calloc(1, 1));
        if (oom) {
            free(b);
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading attempt data");
        } else {
            *bytes = b;
            *size = len;
        }
        PQclear(r);
        return code;
    }
    PQclear(r);
    /* Say which attempts do keep one. */
    struct pg_params q = {0};
    pg_p_int(&q, job_id);
    pg_p_int(&q, kind);
    r = pg_exec(s, "aspen_attempt_data_which",
                "SELECT attempt FROM attempt_data WHERE job = $1::bigint AND kind = $2::integer"
                " ORDER BY attempt LIMIT 20",
                &q, "listing attempt data", err);
    char which[200] = "";
    size_t used = 0;
    int found = r ? PQntuples(r) : 0;
    for (int i = 0; i < found && used + 16 < sizeof which; i++) {
        int w = snprintf(which + used, sizeof which - used, "%s%lld", i ? ", " : "",
                         (long long)pg_get_int(r, i, 0));
        used += w > 0 ? (size_t)w : 0;
    }
    if (r)
        PQclear(r);
    const char *k = aspen_store_data_kind_name((aspen_store_data_kind)kind);
    if (found)
        return store_err(err, ASPEN_STORE_ENOTFOUND,
                         "attempt %d of job %lld keeps no %s (attempt%s %s of job %lld keep%s a "
                         "%s)",
                         attempt, (long long)job_id, k, found > 1 ? "s" : "", which,
                         (long long)job_id, found > 1 ? "" : "s", k);
    return store_err(err, ASPEN_STORE_ENOTFOUND,
                     "attempt %d of job %lld keeps no %s (no attempt of job %lld keeps a %s)",
                     attempt, (long long)job_id, k, (long long)job_id, k);
}

int pg_list_attempt_data(aspen_store *base, int64_t job_id, aspen_store_attempt_data **out,
                         size_t *n, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct pg_params p = {0};
    pg_p_int(&p, job_id);
    PGresult *r = pg_exec(s, "aspen_attempt_data_list",
                          "SELECT attempt, kind, size FROM attempt_data WHERE job = $1::bigint"
                          " ORDER BY attempt, kind",
                          &p, "listing attempt data", err);
    if (!r)
        return code_of(err);
    int rows = PQntuples(r);
    aspen_store_attempt_data *list = rows ? calloc((size_t)rows, sizeof *list) : NULL;
    if (rows && !list) {
        PQclear(r);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing attempt data");
    }
    for (int i = 0; i < rows; i++)
        list[i] = (aspen_store_attempt_data){
            .job_id = job_id, .attempt = (int)pg_get_int(r, i, 0),
            .kind = (aspen_store_data_kind)pg_get_int(r, i, 1), .size = (size_t)pg_get_int(r, i, 2)};
    PQclear(r);
    *out = list;
    *n = (size_t)rows;
    return 0;
}
