/* tests/store/test_store_wal.c — the SQLite backend's write-ahead log checkpoints
 * (store/sqlite/sqlite_checkpoint.c): a handle that writes past the threshold has the log copied
 * into the database by its checkpointer thread, not inside its own COMMIT; the log stays bounded
 * while the handle writes without pause; the data survives close and reopen intact.
 *
 *   off the writer   writes past 1000 log pages: the checkpointer runs (its count moves) and the
 *                    main database file receives the pages while the handle goes on writing
 *   bounded          ~12,000 pages written back to back: the log never passes the inline limit
 *                    (4,000 pages) plus one transaction
 *   reopen           after close (the thread joined) a new handle sees every job, counts agree
 */
#include "helpers.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "sqlite_store.h"

#define PAGE_BYTES 4096
#define WAL_FRAME (PAGE_BYTES + 24)


static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* A payload of about 3 KB: stored in job_payloads, roughly one log page per job. */
static const char *big_payload(void)
{
    static char payload[3100];
    if (!payload[0]) {
        int len = snprintf(payload, sizeof payload, "{\"pad\":\"");
        memset(payload + len, 'w', 3000);
        snprintf(payload + len + 3000, sizeof payload - (size_t)len - 3000, "\"}");
    }
    return payload;
}

static void submit_big(aspen_store *s, int n)
{
    aspen_store_job_spec specs[50];
    for (int i = 0; i < 50; i++)
        specs[i] = (aspen_store_job_spec){.type = "t", .payload = big_payload()};
    aspen_store_error e = {0};
    for (int i = 0; i < n; i += 50)
        if (aspen_store_submit_batch(s, specs, 50, T0, NULL, &e) != 0)
            fail_msg("submit: %s", e.msg);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_checkpoint_off_the_writer(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    int64_t db_before = file_size(f->path);
    assert_int_equal(store_checkpointer_runs(sq(s)), 0); /* not started: nothing to copy yet */
    submit_big(s, 1500);                                  /* ~1,500 log pages */
    /* the writer only signalled; the copy happens on the checkpointer's own connection */
    for (int i = 0; i < 1000 && store_checkpointer_runs(sq(s)) == 0; i++)
        sleep_ms(10);
    assert_true(store_checkpointer_runs(sq(s)) >= 1);
    /* at least the ~1,000 log pages that set it off reached the main file (fewer distinct pages:
     * the indexes' were logged once per transaction) */
    assert_true(file_size(f->path) > db_before + 500 * PAGE_BYTES);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 1500);
    assert_int_equal(aspen_store_check(s, &e), 0);
}

static void test_log_bounded_under_steady_writes(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    char wal[sizeof f->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    /* one transaction of 50 jobs is ~60 pages; the log may hold the inline limit plus that */
    int64_t limit = (4000 + 200) * (int64_t)WAL_FRAME, most = 0;
    for (int round = 0; round < 240; round++) {
        submit_big(s, 50);
        int64_t n = file_size(wal);
        if (n > most)
            most = n;
    }
    if (most > limit)
        fail_msg("the write-ahead log grew to %lld bytes (limit %lld)", (long long)most,
                 (long long)limit);
    assert_true(store_checkpointer_runs(sq(s)) >= 1);
}

static void test_reopen_after_close(void **state)
{
    struct fixture *f = *state;
    submit_big(f->s, 2000);
    aspen_store_close(f->s); /* joins the checkpointer */
    f->s = open_or_fail(f->path, NULL);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 2000);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
    /* and a read-only handle never starts a checkpointer */
    aspen_store_options ro = {.read_only = true};
    aspen_store *r = open_or_fail(f->path, &ro);
    assert_int_equal(aspen_store_counts(r, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 2000);
    assert_false(sq(r)->ckpt.started);
    aspen_store_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_off_the_writer, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_log_bounded_under_steady_writes, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_close, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
