/* sqlite/sqlite_attempt_data.c — the SQLite side of attempt data (schema version 6): the blobs a
 * finished attempt keeps beside its row (an ELF core, a replay record), in their own table so that
 * the attempts table stays narrow and the group commit of successful jobs never touches it. The
 * engine writes them in a transaction of their own after the attempt's commit; a trigger on jobs
 * deletes them with their job (sqlite_open.c's migrate_v6), so delete, purge and retention need
 * not know about them. A replay record comes with its completion and is written in the group
 * commit's transaction (sq_commit_replay, a cached statement); cores, which can be megabytes, in a
 * transaction of their own after it, so they never slow a group of successes. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sq_commit_replay(struct sqlite_store *s, const aspen_store_completion *c,
                     aspen_store_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_ATTEMPT_DATA_PUT, err);
    if (!st)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, c->job_id);
    sqlite3_bind_int(st, 2, c->replay_attempt);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->replay_size);
    sqlite3_bind_blob64(st, 4, c->replay, (sqlite3_uint64)c->replay_size, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "storing a replay record");
}

static int prep(struct sqlite_store *s, const char *sql, sqlite3_stmt **st, const char *what,
                aspen_store_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : store_sqlite_err(s, err, rc, what);
}

int sq_put_attempt_data(aspen_store *base, const aspen_store_attempt_data *items, size_t n,
                        aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    const char *what = "storing an attempt's core or replay record";
    sqlite3_stmt *job = NULL, *ins = NULL;
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = prep(s, "SELECT 1 FROM jobs WHERE id = ?1", &job, what, err);
    if (!code)
        code = prep(s,
                    "INSERT OR REPLACE INTO attempt_data (job, attempt, kind, size, bytes)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
                    &ins, what, err);
    for (size_t i = 0; !code && i < n; i++) {
        const aspen_store_attempt_data *d = &items[i];
        sqlite3_bind_int64(job, 1, d->job_id);
        int rc = sqlite3_step(job);
        sqlite3_reset(job);
        if (rc == SQLITE_DONE) {
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "job %lld is not in %s (deleted meanwhile?): its %s was not kept",
                             (long long)d->job_id, s->base.name,
                             aspen_store_data_kind_name(d->kind));
            break;
        }
        if (rc != SQLITE_ROW) {
            code = store_sqlite_err(s, err, rc, what);
            break;
        }
        sqlite3_bind_int64(ins, 1, d->job_id);
        sqlite3_bind_int(ins, 2, d->attempt);
        sqlite3_bind_int(ins, 3, (int)d->kind);
        sqlite3_bind_int64(ins, 4, (sqlite3_int64)d->size);
        sqlite3_bind_blob64(ins, 5, d->bytes, (sqlite3_uint64)d->size, SQLITE_STATIC);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
        if (rc != SQLITE_DONE)
            code = store_sqlite_err(s, err, rc, what);
    }
    sqlite3_finalize(job);
    sqlite3_finalize(ins);
    if (code) {
        tx_rollback(s);
        return code;
    }
    return tx_commit(s, what, err);
}

/* "attempts 1, 3 of job 7 keep a core" or "no attempt of job 7 keeps a core", for ENOTFOUND. */
static void which_keep(struct sqlite_store *s, int64_t job_id, int kind, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    char list[160] = "";
    size_t used = 0;
    int found = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT attempt FROM attempt_data WHERE job = ?1 AND kind = ?2"
                           " ORDER BY attempt LIMIT 20",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, kind);
        while (sqlite3_step(st) == SQLITE_ROW && used + 16 < sizeof list) {
            int w = snprintf(list + used, sizeof list - used, "%s%d", found ? ", " : "",
                             sqlite3_column_int(st, 0));
            used += w > 0 ? (size_t)w : 0;
            found++;
        }
    }
    sqlite3_finalize(st);
    const char *k = aspen_store_data_kind_name((aspen_store_data_kind)kind);
    if (!found)
        snprintf(out, size, "no attempt of job %lld keeps a %s", (long long)job_id, k);
    else
        snprintf(out, size, "attempt%s %s of job %lld keep%s a %s", found > 1 ? "s" : "", list,
                 (long long)job_id, found > 1 ? "" : "s", k);
}

int sq_get_attempt_data(aspen_store *base, int64_t job_id, int attempt, int kind, void **bytes,
                        size_t *size, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    const char *what = "reading an attempt's core or replay record";
    sqlite3_stmt *st = NULL;
    int code = prep(s,
                    "SELECT bytes FROM attempt_data WHERE job = ?1 AND attempt = ?2 AND kind = ?3",
                    &st, what, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    sqlite3_bind_int(st, 3, kind);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *b = sqlite3_column_blob(st, 0);
        void *copy = malloc(n ? n : 1);
        if (!copy) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading %zu bytes", n);
        } else {
            if (n)
                memcpy(copy, b, n);
            *bytes = copy;
            *size = n;
        }
    } else if (rc == SQLITE_DONE) {
        char which[256];
        sqlite3_finalize(st);
        st = NULL;
        which_keep(s, job_id, kind, which, sizeof which);
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "attempt %d of job %lld keeps no %s (%s)",
                         attempt, (long long)job_id,
                         aspen_store_data_kind_name((aspen_store_data_kind)kind), which);
    } else {
        code = store_sqlite_err(s, err, rc, what);
    }
    sqlite3_finalize(st);
    return code;
}

int sq_list_attempt_data(aspen_store *base, int64_t job_id, aspen_store_attempt_data **out,
                         size_t *n, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    const char *what = "listing an attempt's core and replay record";
    sqlite3_stmt *st = NULL;
    int code = prep(s,
                    "SELECT attempt, kind, size FROM attempt_data WHERE job = ?1"
                    " ORDER BY attempt, kind",
                    &st, what, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, job_id);
    aspen_store_attempt_data *list = NULL;
    size_t cap = 0, count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_attempt_data *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing attempt data");
            break;
        }
        list = grown;
        list[count++] = (aspen_store_attempt_data){
            .job_id = job_id, .attempt = sqlite3_column_int(st, 0),
            .kind = (aspen_store_data_kind)sqlite3_column_int(st, 1),
            .size = (size_t)sqlite3_column_int64(st, 2)};
    }
    if (!code && rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, what);
    sqlite3_finalize(st);
    if (code) {
        free(list);
        return code;
    }
    *out = list;
    *n = count;
    return 0;
}
