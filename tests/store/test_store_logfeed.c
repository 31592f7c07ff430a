/* test_store_logfeed.c — the log feed (schema version 12): every job's log lines after a cursor,
 * on both backends.
 *
 * Lines written live and with a completion come once each, in commit order, named with the engine
 * (and its host and pid) that ran the attempt; a cursor taken at the end sees only later lines;
 * small limits page through everything without a line twice or missed; a second handle on the
 * same database (another process's view) reads what the first wrote. On PostgreSQL a transaction
 * still open holds back the feed at its position, so its lines, committed after later ones, are
 * not skipped — the reason the feed orders by transaction id and not by a sequence. After the
 * newest lines are deleted, lines written later still reach a follower (SQLite numbers by a
 * stored counter, never by max + 1). */
#include "helpers.h"

#include <poll.h>

static void append(aspen_store *s, int64_t job, const char *line)
{
    aspen_store_log_line l = {.job_id = job, .time_ms = T0, .line = line};
    aspen_store_error e = {0};
    if (aspen_store_append_logs(s, &l, 1, &e) != 0)
        fail_msg("append: %s", e.msg);
}

/* A cursor at the feed's current end (what a follower starting now takes): no lines come with it. */
static aspen_store_log_cursor feed_end(aspen_store *s)
{
    aspen_store_log_cursor c = ASPEN_STORE_LOG_CURSOR_END;
    aspen_store_feed_line *l = NULL;
    size_t n = 99;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_log_feed(s, &c, 10, &l, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_true(c.tx >= 0);
    return c;
}

/* Reads the feed to its end in pages of `page`, the lines' text joined with '|' into out, until
 * `want` lines came or 10 s passed. On PostgreSQL a transaction open anywhere on the server (the
 * other tests' databases too: transaction ids are server-wide) holds the feed back until it
 * ends, so lines may take a moment. */
static size_t drain(aspen_store *s, aspen_store_log_cursor *c, size_t page, char *out, size_t cap,
                    int64_t want_engine, size_t want)
{
    size_t total = 0;
    out[0] = 0;
    for (int round = 0; round < 1000; round++) /* 10 s of 10 ms waits */ {
        aspen_store_feed_line *l = NULL;
        size_t n = 0;
        aspen_store_error e = {0};
        if (aspen_store_log_feed(s, c, page, &l, &n, &e) != 0)
            fail_msg("feed: %s", e.msg);
        for (size_t i = 0; i < n; i++) {
            size_t at = strlen(out);
            snprintf(out + at, cap - at, "%s%s", at ? "|" : "", l[i].line);
            if (want_engine) {
                assert_int_equal(l[i].engine_id, want_engine);
                assert_string_equal(l[i].host, "test");
                assert_int_equal(l[i].pid, getpid());
            }
        }
        aspen_store_log_feed_free(l, n);
        total += n;
        if (n < page && total >= want)
            return total;
        if (n < page)
            usleep(10000);
    }
    return total; /* fewer than wanted: the caller's assertion says so */
}

static void test_feed_live_and_completed(void **state)
{
    struct fixture *f = *state;
    int64_t a = submit_job(f->s, "t", 0, T0, 3, T0), b = submit_job(f->s, "t", 0, T0, 3, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, ids), 2);
    append(f->s, a, "before");
    aspen_store_log_cursor c = ASPEN_STORE_LOG_CURSOR_END;
    aspen_store_feed_line *l = NULL;
    size_t n = 99;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_log_feed(f->s, &c, 10, &l, &n, &e), 0);
    assert_int_equal(n, 0); /* the end: "before" is behind it */
    assert_true(c.tx >= 0);

    /* another handle, as another process on the same database */
    aspen_store *other = open_or_fail(f->path, NULL);
    append(other, b, "b1");
    append(other, a, "a1");
    append(other, b, "b2");
    char got[1024];
    size_t first = drain(f->s, &c, 10, got, sizeof got, f->engine, 3);
    if (test_on_pg() && first == 4) {
        /* The end is just before the server's oldest running transaction: while another test's
         * transaction (any database on the server) was open when the end was read, "before" was
         * still ahead of it and comes now — once, first, never lost (docs/STORE.md, log feed). */
        assert_string_equal(got, "before|b1|a1|b2");
    } else {
        assert_int_equal(first, 3);
        assert_string_equal(got, "b1|a1|b2");
    }
    assert_int_equal(drain(f->s, &c, 10, got, sizeof got, 0, 0), 0); /* nothing twice */

    /* lines written with the completion, then the attempt row names the engine */
    aspen_store_log_line done[2] = {{.time_ms = T0, .line = "last1"}, {.time_ms = T0, .line = "last2"}};
    aspen_store_completion comp = {.job_id = a, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                   .logs = done, .n_logs = 2};
    int status = -1;
    assert_int_equal(aspen_store_complete(other, f->engine, &comp, 1, T0 + 5, &status, NULL, &e), 0);
    assert_int_equal(status, 0);
    assert_int_equal(drain(f->s, &c, 1, got, sizeof got, f->engine, 2), 2);
    assert_string_equal(got, "last1|last2");

    /* from the start (a zeroed cursor): everything still kept, in pages of 2, each line once */
    aspen_store_log_cursor zero = {0};
    assert_int_equal(drain(other, &zero, 2, got, sizeof got, f->engine, 6), 6);
    assert_string_equal(got, "before|b1|a1|b2|last1|last2");
    aspen_store_close(other);
}

static void test_feed_bad_arguments(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    size_t n = 0;
    aspen_store_feed_line *l = NULL;
    assert_int_equal(aspen_store_log_feed(f->s, NULL, 1, &l, &n, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "cursor"));
    aspen_store_log_cursor c = {0};
    assert_int_equal(aspen_store_log_feed(NULL, &c, 1, &l, &n, &e), ASPEN_STORE_EINVAL);
    /* a cursor past everything (hostile or stale) reads nothing and is not an error */
    c = (aspen_store_log_cursor){.tx = INT64_MAX, .job = INT64_MAX, .seq = INT64_MAX};
    int64_t job = submit_job(f->s, "t", 0, T0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    append(f->s, job, "x");
    assert_int_equal(aspen_store_log_feed(f->s, &c, 0, &l, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(l);
}

/* The newest lines deleted (the job they belong to purged) after a follower read them: the next
 * lines still come. Numbering by max(tx) + 1 handed the deleted lines' number out again, and a
 * line of a lower job id under it sorted before the follower's cursor: missed for good. */
static void test_feed_after_purge(void **state)
{
    struct fixture *f = *state;
    int64_t a = submit_job(f->s, "t", 0, T0, 3, T0), b = submit_job(f->s, "t", 0, T0, 3, T0);
    assert_true(a < b);
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, NULL), 2);
    aspen_store_log_cursor c = feed_end(f->s);
    aspen_store_error e = {0};
    aspen_store *other = open_or_fail(f->path, NULL); /* the follower: another process */
    append(f->s, a, "a1");
    aspen_store_log_line done = {.time_ms = T0, .line = "b-last"};
    aspen_store_completion comp = {.job_id = b, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                   .logs = &done, .n_logs = 1};
    int status = -1;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &comp, 1, T0 + 5, &status, NULL, &e), 0);
    assert_int_equal(status, 0);
    char got[1024];
    assert_int_equal(drain(other, &c, 10, got, sizeof got, 0, 2), 2);
    assert_string_equal(got, "a1|b-last");
    /* a cursor taken at the end now, before the purge, must see what comes after it too */
    aspen_store_log_cursor end = feed_end(other);

    assert_int_equal(aspen_store_delete(f->s, b, &e), 0); /* the newest lines go */
    /* after the purge, a third cursor from the end: it must not start before lines to come */
    aspen_store_log_cursor after = feed_end(other);
    append(f->s, a, "a2");
    append(f->s, a, "a3");
    assert_int_equal(drain(other, &c, 10, got, sizeof got, 0, 2), 2);
    assert_string_equal(got, "a2|a3");
    assert_int_equal(drain(other, &end, 1, got, sizeof got, 0, 2), 2);
    assert_string_equal(got, "a2|a3");
    assert_int_equal(drain(other, &after, 10, got, sizeof got, 0, 2), 2);
    assert_string_equal(got, "a2|a3");
    /* and a database reopened (the counter is stored, not in memory) goes on from there */
    aspen_store_close(other);
    other = open_or_fail(f->path, NULL);
    append(other, a, "a4");
    assert_int_equal(drain(other, &c, 10, got, sizeof got, 0, 1), 1);
    assert_string_equal(got, "a4");
    assert_int_equal(drain(other, &c, 10, got, sizeof got, 0, 0), 0); /* nothing twice */
    aspen_store_close(other);
}

/* PostgreSQL: a writer whose transaction stays open while a later one commits. */
static void test_feed_waits_for_open_transaction(void **state)
{
    struct fixture *f = *state;
    if (!test_on_pg()) {
        /* SQLite writes one transaction at a time: there is no such interleaving to test */
        assert_false(test_on_pg());
        return;
    }
    int64_t a = submit_job(f->s, "t", 0, T0, 3, T0), b = submit_job(f->s, "t", 0, T0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, NULL), 2);
    aspen_store_log_cursor c = feed_end(f->s);
    PGconn *slow = PQconnectdb(f->path);
    assert_int_equal(PQstatus(slow), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "BEGIN; INSERT INTO logs (job, seq, attempt, time_ms, line)"
             " VALUES (%lld, 100, 1, 0, 'slow')",
             (long long)a);
    PQclear(PQexec(slow, sql));
    append(f->s, b, "fast"); /* a later transaction, committed first */
    char got[256];
    assert_int_equal(drain(f->s, &c, 10, got, sizeof got, 0, 0), 0); /* held back, not passed */
    PQclear(PQexec(slow, "COMMIT"));
    PQfinish(slow);
    assert_int_equal(drain(f->s, &c, 10, got, sizeof got, 0, 2), 2);
    assert_string_equal(got, "slow|fast");
}

/* Followers are woken, not left to their next read: on PostgreSQL a handle subscribed with
 * aspen_store_log_wait_fd gets a readable descriptor when another handle's lines commit, and one
 * notification per transaction however many jobs' lines it wrote (a group commit of two
 * completions here); a transaction with no lines announces none. SQLite has no descriptor. */
static void test_feed_wakes_followers(void **state)
{
    struct fixture *f = *state;
    aspen_store *follower = open_or_fail(f->path, NULL);
    aspen_store_error e = {0};
    int fd = 7;
    bool woken = true;
    assert_int_equal(aspen_store_log_wait_fd(follower, &fd, &e), 0);
    if (!test_on_pg()) {
        assert_int_equal(fd, -1);
        assert_int_equal(aspen_store_log_notified(follower, &woken, &e), 0);
        assert_false(woken);
        aspen_store_close(follower);
        return;
    }
    assert_true(fd >= 0);
    PGconn *raw = PQconnectdb(f->path); /* counts what is delivered */
    assert_int_equal(PQstatus(raw), CONNECTION_OK);
    PQclear(PQexec(raw, "LISTEN aspen_logs"));

    int64_t a = submit_job(f->s, "t", 0, T0, 3, T0), b = submit_job(f->s, "t", 0, T0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, NULL), 2);
    /* claims and submits are no log lines: nothing announced yet */
    assert_int_equal(aspen_store_log_notified(follower, &woken, &e), 0);
    assert_false(woken);

    aspen_store_log_line la[3] = {{.time_ms = T0, .line = "a1"}, {.time_ms = T0, .line = "a2"},
                                  {.time_ms = T0, .line = "a3"}};
    aspen_store_log_line lb[2] = {{.time_ms = T0, .line = "b1"}, {.time_ms = T0, .line = "b2"}};
    aspen_store_completion comp[2] = {
        {.job_id = a, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .logs = la, .n_logs = 3},
        {.job_id = b, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .logs = lb, .n_logs = 2},
    };
    int status[2] = {-1, -1};
    assert_int_equal(aspen_store_complete(f->s, f->engine, comp, 2, T0 + 5, status, NULL, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);

    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1); /* bounded: it comes at the commit */
    assert_int_equal(aspen_store_log_notified(follower, &woken, &e), 0);
    assert_true(woken);
    assert_int_equal(aspen_store_log_notified(follower, &woken, &e), 0);
    assert_false(woken); /* consumed */

    /* the raw listener: exactly one for the group commit's five lines */
    int got = 0;
    for (int round = 0; round < 200 && got == 0; round++) {
        PQconsumeInput(raw);
        PGnotify *n;
        while ((n = PQnotifies(raw)) != NULL) {
            got += strcmp(n->relname, "aspen_logs") == 0;
            PQfreemem(n);
        }
        if (!got)
            usleep(10000);
    }
    assert_int_equal(got, 1);
    /* and none more arrive: a NOTIFY per line or per job would have sent more at the same
     * commit; a round trip on the listener's connection comes after all of them. */
    PQclear(PQexec(raw, "SELECT 1"));
    PQconsumeInput(raw);
    PGnotify *more;
    while ((more = PQnotifies(raw)) != NULL) {
        got += strcmp(more->relname, "aspen_logs") == 0;
        PQfreemem(more);
    }
    assert_int_equal(got, 1);
    PQfinish(raw);
    aspen_store_close(follower);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_feed_live_and_completed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_feed_bad_arguments, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_feed_after_purge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_feed_wakes_followers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_feed_waits_for_open_transaction, fx_setup,
                                        fx_teardown),
    };
    const struct CMUnitTest sqlite_only[] = {};
    return RUN_STORE_TESTS(both, sqlite_only);
}
