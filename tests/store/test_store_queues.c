/* test_store_queues.c — named queues in the store, on both backends (ctest runs it as is and as
 * test_store_queues_pg): a job's queue through submit, get, rerun and the filter; the listing;
 * names, rates and limits refused with clear words; and what the claim honours — a concurrency
 * limit counting running and reserved jobs across engines, per-queue pause beside the global one,
 * a rate limit whose shares last one period after each start (on PostgreSQL also when the job was
 * claimed on another handle than the one that starts it), and a handle serving only some
 * queues; removing a queue (refusals, its finished jobs kept, a retry or rerun into it making it
 * again, and a removal racing a submit not yet committed waits for it and counts its job; refused
 * while a schedule's jobs go to it, naming the schedules; a schedule added while the queue is
 * removed, on two handles at once, never left pointing at a queue that is gone). Time is
 * injected: no test sleeps, but the race's child holds its transaction 300 ms. */
#include "helpers.h"

#include <pthread.h>
#include <sys/wait.h>

static int64_t submit_q(aspen_store *s, const char *queue, int priority, int64_t now)
{
    aspen_store_job_spec spec = {.type = "echo", .priority = priority, .queue = queue};
    int64_t id = 0;
    aspen_store_error e = {0};
    if (aspen_store_submit(s, &spec, now, &id, &e) != 0)
        fail_msg("submit to %s: %s", queue ? queue : "(default)", e.msg);
    return id;
}

static void set_limit(aspen_store *s, const char *q, int64_t limit)
{
    aspen_store_error e = {0};
    if (aspen_store_queue_set(s, q, ASPEN_STORE_QUEUE_SET_LIMIT, limit, 0, 0, T0, &e) != 0)
        fail_msg("queue set %s: %s", q, e.msg);
}

/* How many of the claimed jobs (ids) are in queue q. */
static size_t in_queue(aspen_store *s, const int64_t *ids, size_t n, const char *q)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        aspen_store_job j;
        aspen_store_error e = {0};
        if (aspen_store_get(s, ids[i], &j, &e) != 0)
            fail_msg("get: %s", e.msg);
        k += strcmp(j.queue, q) == 0;
        aspen_store_job_clear(&j);
    }
    return k;
}

static void test_submit_and_read_back(void **state)
{
    struct fixture *f = *state;
    int64_t a = submit_q(f->s, NULL, 0, T0), b = submit_q(f->s, "emails", 0, T0);
    int64_t c = submit_q(f->s, "", 0, T0);
    aspen_store_job j;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_get(f->s, a, &j, &e), 0);
    assert_string_equal(j.queue, "default");
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_get(f->s, c, &j, &e), 0);
    assert_string_equal(j.queue, "default");
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_get(f->s, b, &j, &e), 0);
    assert_string_equal(j.queue, "emails");
    aspen_store_job_clear(&j);

    /* A rerun stays in its queue. */
    int64_t again = 0;
    assert_int_equal(aspen_store_rerun(f->s, b, T0, &again, &e), 0);
    assert_int_equal(aspen_store_get(f->s, again, &j, &e), 0);
    assert_string_equal(j.queue, "emails");
    aspen_store_job_clear(&j);

    /* A batch with several queues: each job in its own. */
    aspen_store_job_spec batch[3] = {{.type = "echo", .queue = "x"},
                                     {.type = "echo", .queue = "y"},
                                     {.type = "echo", .queue = "x"}};
    int64_t ids[3];
    assert_int_equal(aspen_store_submit_batch(f->s, batch, 3, T0, ids, &e), 0);
    assert_int_equal(aspen_store_get(f->s, ids[1], &j, &e), 0);
    assert_string_equal(j.queue, "y");
    aspen_store_job_clear(&j);

    /* queue: in the filter language. */
    char buf[256];
    aspen_store_filter flt;
    assert_int_equal(aspen_store_filter_parse("queue:x", &flt, buf, sizeof buf, &e), 0);
    assert_string_equal(flt.queue, "x");
    int64_t count = 0;
    assert_int_equal(aspen_store_count(f->s, &flt, &count, &e), 0);
    assert_int_equal(count, 2);
    assert_int_equal(aspen_store_filter_parse("queue:default", &flt, buf, sizeof buf, &e), 0);
    assert_int_equal(aspen_store_count(f->s, &flt, &count, &e), 0);
    assert_int_equal(count, 2);
    assert_int_equal(aspen_store_filter_parse("queue:\"a b\"", &flt, buf, sizeof buf, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "not valid"));
    assert_int_equal(aspen_store_filter_parse("queu:x", &flt, buf, sizeof buf, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "did you mean 'queue:'"));
}

static void test_names_rates_limits_refused(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec bad = {.type = "echo", .queue = "no spaces"};
    assert_int_equal(aspen_store_submit(f->s, &bad, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "queue name \"no spaces\" is not valid"));
    bad.queue = "-dash-first";
    assert_int_equal(aspen_store_submit(f->s, &bad, T0, NULL, &e), ASPEN_STORE_EINVAL);
    char longname[100];
    memset(longname, 'q', 65);
    longname[65] = '\0';
    bad.queue = longname;
    assert_int_equal(aspen_store_submit(f->s, &bad, T0, NULL, &e), ASPEN_STORE_EINVAL);
    bad.queue = "bad\x1b[31m";
    assert_int_equal(aspen_store_submit(f->s, &bad, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_null(strchr(e.msg, '\x1b')); /* the message shows it escaped */
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0); /* nothing was submitted */

    assert_int_equal(aspen_store_queue_set(f->s, "q", ASPEN_STORE_QUEUE_SET_LIMIT, -1, 0, 0, T0, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "positive number"));
    assert_int_equal(aspen_store_queue_set(f->s, "q", ASPEN_STORE_QUEUE_SET_RATE, 0, 5, 0, T0, &e),
                     ASPEN_STORE_EINVAL);

    int64_t n = 0, period = 0;
    assert_int_equal(aspen_store_rate_parse("100/s", &n, &period, &e), 0);
    assert_int_equal(n, 100);
    assert_int_equal(period, 1000);
    assert_int_equal(aspen_store_rate_parse("5/10s", &n, &period, &e), 0);
    assert_int_equal(period, 10000);
    assert_int_equal(aspen_store_rate_parse("3/250ms", &n, &period, &e), 0);
    assert_int_equal(period, 250);
    assert_int_equal(aspen_store_rate_parse("1000/m", &n, &period, &e), 0);
    assert_int_equal(period, 60000);
    const char *bad_rates[] = {"", "/s", "0/s", "-1/s", "10", "10/", "10/x", "10/0s",
                               "99999999999999999999/s", "1/99999999999999h", "10/8d"};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        e = (aspen_store_error){0};
        assert_int_equal(aspen_store_rate_parse(bad_rates[i], &n, &period, &e), ASPEN_STORE_EINVAL);
        assert_non_null(strstr(e.msg, "N/PERIOD"));
    }
    /* a count too large says so (it said "not a positive number" for INT64_MAX, trial 22) */
    assert_int_equal(aspen_store_rate_parse("9223372036854775807/s", &n, &period, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "is too large: at most 1,000,000,000 jobs a period"));
    assert_int_equal(aspen_store_rate_parse("100000000000000000/s", &n, &period, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_rate_parse("1000000000/s", &n, &period, &e), 0);
    /* a unit is named whole as typed (it used to be cut at 8: "millisec"), control bytes shown
     * as \xNN (store_shown) */
    assert_int_equal(aspen_store_rate_parse("5/milliseconds", &n, &period, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "the period \"milliseconds\" is not a duration"));
    assert_int_equal(aspen_store_rate_parse("5/10sec\x1b[2J", &n, &period, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "period \"10sec\\x1b[2J\""));
    /* the period is the CLI's one duration grammar (trial 10: d and 1h30m were refused), a unit
     * alone one of it; a bare number has no unit and is refused, saying so */
    assert_int_equal(aspen_store_rate_parse("50/1h30m", &n, &period, &e), 0);
    assert_int_equal(period, 90 * 60000);
    assert_int_equal(aspen_store_rate_parse("2000/d", &n, &period, &e), 0);
    assert_int_equal(period, 86400000);
    assert_int_equal(aspen_store_rate_parse("7/2d", &n, &period, &e), 0);
    assert_int_equal(period, 2 * 86400000);
    assert_int_equal(aspen_store_rate_parse("1/w", &n, &period, &e), 0);
    assert_int_equal(period, 7 * 86400000);
    assert_int_equal(aspen_store_rate_parse("5/10", &n, &period, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "the period \"10\" is not a duration (it has no unit)"));
    assert_non_null(strstr(e.msg, "1h30m"));
    assert_null(strchr(e.msg, '\x1b'));
    char text[32];
    aspen_store_rate_format(100, 1000, text, sizeof text);
    assert_string_equal(text, "100/s");
    aspen_store_rate_format(5, 10000, text, sizeof text);
    assert_string_equal(text, "5/10s");
    aspen_store_rate_format(3, 250, text, sizeof text);
    assert_string_equal(text, "3/250ms");
    aspen_store_rate_format(2000, 86400000, text, sizeof text);
    assert_string_equal(text, "2000/d");
    aspen_store_rate_format(50, 90 * 60000, text, sizeof text);
    assert_string_equal(text, "50/90m");

    /* Pausing a queue nobody made: a did-you-mean. */
    submit_q(f->s, "emails", 0, T0);
    assert_int_equal(aspen_store_queue_pause(f->s, "emials", true, T0, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "did you mean emails?"));
    assert_int_equal(aspen_store_queue_exists(f->s, "emails", &e), 0);
    assert_int_equal(aspen_store_queue_exists(f->s, "default", &e), 0);
}

static void test_listing(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    for (int i = 0; i < 3; i++)
        submit_q(f->s, "b-queue", 0, T0 - 1000);
    submit_q(f->s, NULL, 0, T0 - 5000);
    submit_q(f->s, NULL, 0, T0);
    aspen_store_job_spec later = {.type = "echo", .queue = "b-queue", .run_at_ms = T0 + 60000};
    assert_int_equal(aspen_store_submit(f->s, &later, T0, NULL, &e), 0);
    assert_int_equal(aspen_store_queue_set(f->s, "a-queue", ASPEN_STORE_QUEUE_SET_LIMIT |
                                           ASPEN_STORE_QUEUE_SET_RATE, 4, 10, 1000, T0, &e), 0);
    int64_t ids[8];
    /* Settings exist, so this claim goes queue by queue: it reserves 2, starts nothing. */
    assert_int_equal(reserve_ids(f->s, f->engine, 2, T0, ids), 2);
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_queues(f->s, T0, &qs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(qs[0].name, "default");
    assert_string_equal(qs[1].name, "a-queue");
    assert_string_equal(qs[2].name, "b-queue");
    assert_int_equal(qs[0].queued, 2);
    assert_int_equal(qs[0].oldest_waiting_ms, 5000);
    assert_int_equal(qs[1].limit, 4);
    assert_int_equal(qs[1].rate_n, 10);
    assert_int_equal(qs[1].rate_period_ms, 1000);
    assert_int_equal(qs[1].queued, 0);
    assert_int_equal(qs[2].queued, 3);
    assert_int_equal(qs[2].scheduled, 1);
    assert_int_equal(qs[2].oldest_waiting_ms, 1000);
    assert_int_equal(qs[0].reserved + qs[2].reserved, 2);
    aspen_store_queues_free(qs);

    /* Finished runs count toward the queue's throughput; a cancellation does not (X over
     * 100,000 waiting jobs read >=100000 a minute: trial 24). */
    aspen_store_start st[2] = {{ids[0], T0}, {ids[1], T0}};
    int status[2];
    assert_int_equal(aspen_store_start_jobs(f->s, f->engine, st, 2, T0, status, &e), 0);
    assert_int_equal(complete_one(f->s, f->engine, ids[0], ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 10), 0);
    int64_t extra = submit_q(f->s, "b-queue", 0, T0 + 11);
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(f->s, extra, T0 + 12, &cr, &e), 0);
    assert_int_equal(cr, ASPEN_STORE_CANCEL_DONE);
    assert_int_equal(aspen_store_queues(f->s, T0 + 20, &qs, &n, &e), 0);
    int64_t running = 0, finished = 0;
    for (size_t i = 0; i < n; i++) {
        running += qs[i].running;
        finished += qs[i].finished_last_min;
        assert_false(qs[i].throughput_capped);
    }
    assert_int_equal(running, 1);
    assert_int_equal(finished, 1);
    aspen_store_queues_free(qs);
}

/* A limit of 2 holds across two engines, counting reservations as well as running jobs; the
 * default queue and the others are untouched by it. */
static void test_limit_across_engines(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 1, "other", 5000, T0, &other, &e), 0);
    aspen_store *s2 = open_or_fail(f->path, NULL);
    set_limit(f->s, "lim", 2);
    for (int i = 0; i < 6; i++)
        submit_q(f->s, "lim", 10, T0); /* ahead of the default queue's jobs by priority */
    for (int i = 0; i < 3; i++)
        submit_q(f->s, NULL, 0, T0);
    int64_t a[16], b[16];
    size_t na = reserve_ids(f->s, f->engine, 1, T0, a);
    assert_int_equal(na, 1);
    assert_int_equal(in_queue(f->s, a, na, "lim"), 1);
    size_t nb = reserve_ids(s2, other, 16, T0, b);
    assert_int_equal(in_queue(f->s, b, nb, "lim"), 1); /* 1 reserved by the first: 1 left */
    assert_int_equal(nb, 4);                           /* and the 3 of the default queue */
    /* Both reservations start; still 2: nothing more of lim for anyone. */
    aspen_store_start st = {a[0], T0};
    int status = 0;
    assert_int_equal(aspen_store_start_jobs(f->s, f->engine, &st, 1, T0, &status, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 1, a), 0);
    assert_int_equal(reserve_ids(s2, other, 16, T0 + 1, b), 0);
    /* One finishes: exactly one more. */
    assert_int_equal(complete_one(f->s, f->engine, a[0], ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 2), 0);
    assert_int_equal(reserve_ids(s2, other, 16, T0 + 3, b), 1);
    assert_int_equal(in_queue(f->s, b, 1, "lim"), 1);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 3, a), 0);
    /* Raising the limit lets more through at once; removing it lets all the rest. */
    set_limit(f->s, "lim", 3);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 4, a), 1);
    set_limit(f->s, "lim", 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 5, a), 2);
    aspen_store_close(s2);
}

static void test_pause_one_queue(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t p1 = submit_q(f->s, "slow", 5, T0);
    int64_t d1 = submit_q(f->s, NULL, 0, T0);
    assert_int_equal(aspen_store_queue_pause(f->s, "slow", true, T0, &e), 0);
    int64_t ids[4];
    bool paused = true;
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 4, T0, &jobs, &n, &paused, &e), 0);
    assert_false(paused); /* the global pause is another thing */
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, d1);
    aspen_store_jobs_free(jobs, n);
    aspen_store_queue_info *qs = NULL;
    assert_int_equal(aspen_store_queues(f->s, T0, &qs, &n, &e), 0);
    assert_true(qs[1].paused);
    aspen_store_queues_free(qs);
    assert_int_equal(aspen_store_queue_pause(f->s, "slow", false, T0, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0, ids), 1);
    assert_int_equal(ids[0], p1);
    /* The global pause still stops everything. */
    submit_q(f->s, NULL, 0, T0);
    assert_int_equal(aspen_store_set_paused(f->s, true, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0, ids), 0);
}

/* 3 per second: a job holds its share from its reservation until a second after its start. */
static void test_rate_window(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(f->s, "r", ASPEN_STORE_QUEUE_SET_RATE, 0, 3, 1000, T0,
                                           &e), 0);
    for (int i = 0; i < 12; i++)
        submit_q(f->s, "r", 0, T0);
    int64_t ids[16];
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0, ids), 3);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 100, ids + 3), 0);
    /* They start late, at T0 + 400: their shares last until T0 + 1400 (a window of a second
     * holding T0 + 400 ends before T0 + 1400). */
    aspen_store_start st[3] = {{ids[0], T0 + 400}, {ids[1], T0 + 400}, {ids[2], T0 + 400}};
    int status[3];
    assert_int_equal(aspen_store_start_jobs(f->s, f->engine, st, 3, T0 + 410, status, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 1100, ids), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 1399, ids), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 1400, ids), 3);
    /* Given back unstarted, the shares come back at once. */
    assert_int_equal(aspen_store_unclaim(f->s, f->engine, ids, 3, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 2, T0 + 1402, ids), 2);
    /* A completion that starts a reserved job in the same commit takes its share too. */
    aspen_store_completion c = {.job_id = ids[0], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                .stats = {.started_at_ms = T0 + 1500}};
    int st1 = 0;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, T0 + 1501, &st1, NULL, &e), 0);
    assert_int_equal(st1, 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 2000, ids + 5), 1); /* 1 reserved + 1 share */
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 2501, ids + 6), 1); /* share over */
    /* Removing the rate frees the queue. */
    assert_int_equal(aspen_store_queue_set(f->s, "r", ASPEN_STORE_QUEUE_SET_RATE, 0, 0, 0, T0, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 2502, ids), 5);
}

/* PostgreSQL: claimed on one handle, started and finished on another that never claimed (the engine
 * claims on a connection of its own there: engine.c, claimer_main): the starts still take their
 * shares of the rate. They did not once: the committing handle wrote shares only after a claim
 * of its own had seen a rate, and a rate of 10/s let 30 jobs start within 51 ms. */
static void test_rate_claimed_on_another_handle(void **state)
{
    struct fixture *f = *state;
    if (!test_on_pg()) {
        /* SQLite's engine claims and commits on one handle (one writer thread): a handle there
         * still writes shares only after a claim of its own saw a rate. */
        print_message("skipped on SQLite: its engine claims and starts on one handle\n");
        skip();
    }
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(f->s, "r", ASPEN_STORE_QUEUE_SET_RATE, 0, 3, 1000, T0,
                                           &e), 0);
    for (int i = 0; i < 8; i++)
        submit_q(f->s, "r", 0, T0);
    aspen_store *claims = open_or_fail(f->path, NULL), *commits = open_or_fail(f->path, NULL);
    int64_t ids[16];
    assert_int_equal(reserve_ids(claims, f->engine, 16, T0, ids), 3);
    aspen_store_start st[3] = {{ids[0], T0 + 400}, {ids[1], T0 + 400}, {ids[2], T0 + 400}};
    int status[3] = {-1, -1, -1};
    assert_int_equal(aspen_store_start_jobs(commits, f->engine, st, 3, T0 + 410, status, &e), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(status[i], 0);
    /* the reservations became running jobs, and each holds its share until T0 + 1400 */
    assert_int_equal(reserve_ids(claims, f->engine, 16, T0 + 1100, ids + 3), 0);
    assert_int_equal(reserve_ids(claims, f->engine, 16, T0 + 1400, ids + 3), 3);
    /* a completion that starts a reserved job takes its share in the same commit */
    aspen_store_completion c = {.job_id = ids[3], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                .stats = {.started_at_ms = T0 + 1500}};
    int st1 = -1;
    assert_int_equal(aspen_store_complete(commits, f->engine, &c, 1, T0 + 1501, &st1, NULL, &e), 0);
    assert_int_equal(st1, 0);
    assert_int_equal(reserve_ids(claims, f->engine, 16, T0 + 2000, ids + 6), 0); /* 2 + 1 share */
    assert_int_equal(reserve_ids(claims, f->engine, 16, T0 + 2501, ids + 6), 1); /* share over */
    aspen_store_close(commits);
    aspen_store_close(claims);
}

static void test_serve_some_queues(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t a = submit_q(f->s, "a", 0, T0);
    submit_q(f->s, "b", 9, T0);
    submit_q(f->s, NULL, 9, T0);
    int64_t a2 = submit_q(f->s, "a", 0, T0);
    const char *serve[] = {"a"};
    assert_int_equal(aspen_store_serve_queues(f->s, serve, 1, &e), 0);
    int64_t ids[8];
    assert_int_equal(reserve_ids(f->s, f->engine, 8, T0, ids), 2);
    assert_int_equal(ids[0], a);
    assert_int_equal(ids[1], a2);
    const char *both[] = {"b", "default"};
    assert_int_equal(aspen_store_serve_queues(f->s, both, 2, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 8, T0, ids), 2);
    assert_int_equal(in_queue(f->s, ids, 2, "a"), 0);
    const char *bad[] = {"ok", "not ok"};
    assert_int_equal(aspen_store_serve_queues(f->s, bad, 2, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_serve_queues(f->s, NULL, 0, &e), 0);
}

/* Without settings every queue's jobs are claimed by the plain path, in claim order. */
static void test_no_settings_plain_order(void **state)
{
    struct fixture *f = *state;
    int64_t x = submit_q(f->s, "x", 1, T0), d = submit_q(f->s, NULL, 2, T0);
    int64_t y = submit_q(f->s, "y", 0, T0);
    int64_t ids[4];
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0, ids), 3);
    assert_int_equal(ids[0], d);
    assert_int_equal(ids[1], x);
    assert_int_equal(ids[2], y);
}

/* A handle whose last claim saw no queue settings claims the default head in the same round trip
 * as its lease check (PostgreSQL: pg_claim). A limit, a queue's pause and then a rate set by
 * another host meanwhile still hold at its very next claim. */
static void test_settings_from_another_host(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store *s2 = open_or_fail(f->path, NULL);
    int64_t ids[16];
    submit_q(f->s, NULL, 0, T0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0, ids), 1); /* no settings seen */
    set_limit(s2, "lim", 1);
    for (int i = 0; i < 3; i++)
        submit_q(s2, "lim", 10, T0);
    int64_t d = submit_q(s2, NULL, 0, T0);
    size_t n = reserve_ids(f->s, f->engine, 16, T0 + 1, ids);
    assert_int_equal(n, 2); /* one of lim, and the default queue's job */
    assert_int_equal(in_queue(f->s, ids, n, "lim"), 1);
    assert_int_equal(ids[n - 1], d);
    /* The limit removed: its other two come; then a pause of a queue by the other host. */
    set_limit(s2, "lim", 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 2, ids), 2);
    submit_q(s2, "p", 5, T0);
    assert_int_equal(aspen_store_queue_pause(s2, "p", true, T0, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 3, ids), 0);
    assert_int_equal(aspen_store_queue_pause(s2, "p", false, T0, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 4, ids), 1);
    /* No settings again, then a rate of 1 per second set elsewhere: one of two comes. */
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 5, ids), 0);
    assert_int_equal(aspen_store_queue_set(s2, "r", ASPEN_STORE_QUEUE_SET_RATE, 0, 1, 1000, T0,
                                           &e), 0);
    submit_q(s2, "r", 0, T0);
    submit_q(s2, "r", 0, T0);
    assert_int_equal(reserve_ids(f->s, f->engine, 16, T0 + 6, ids), 1);
    aspen_store_close(s2);
}

static bool listed(aspen_store *s, const char *q)
{
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    if (aspen_store_queues(s, T0, &qs, &n, &e) != 0)
        fail_msg("queues: %s", e.msg);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found = found || !strcmp(qs[i].name, q);
    aspen_store_queues_free(qs);
    return found;
}

/* aspen_store_queue_remove: refused for default, a bad or missing name, and while the queue holds
 * queued, scheduled or running jobs (each counted); once only finished jobs are left it goes with
 * its settings, and a retry or rerun of one of them into it makes the queue again, so the job is
 * claimed even when the claim goes queue by queue (another queue has a limit). */
static void test_queue_remove(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_queue_held held = {7, 7, 7, 7};
    int64_t now = T0;
    assert_int_equal(aspen_store_queue_remove(f->s, "default", &held, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "default queue cannot be removed"));
    assert_int_equal(held.queued + held.scheduled + held.running + held.schedules, 0);
    assert_int_equal(aspen_store_queue_remove(f->s, "", NULL, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_queue_remove(f->s, "a b';DROP TABLE jobs;--", NULL, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_queue_remove(NULL, "x", NULL, &e), ASPEN_STORE_EINVAL);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(aspen_store_queue_remove(f->s, longname, NULL, &e), ASPEN_STORE_EINVAL);

    set_limit(f->s, "emails", 5);
    assert_int_equal(aspen_store_queue_remove(f->s, "emials", NULL, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "did you mean emails?"));

    /* one running, one queued, one scheduled, one failed (out of attempts) */
    aspen_store_job_spec spec = {.type = "echo", .queue = "emails", .max_attempts = 1};
    int64_t run = 0, fail = 0, wait = 0, later = 0;
    assert_int_equal(aspen_store_submit(f->s, &spec, now, &fail, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, now, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, fail, ASPEN_STORE_OUTCOME_FAILURE, 0, now), 0);
    assert_int_equal(state_of(f->s, fail), ASPEN_STORE_FAILED);
    assert_int_equal(aspen_store_submit(f->s, &spec, now, &run, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, now, NULL), 1);
    assert_int_equal(aspen_store_submit(f->s, &spec, now, &wait, &e), 0);
    spec.run_at_ms = now + 3600 * 1000;
    assert_int_equal(aspen_store_submit(f->s, &spec, now, &later, &e), 0);
    spec.run_at_ms = 0;
    submit_q(f->s, "other", 0, now); /* another queue's jobs do not count */

    assert_int_equal(aspen_store_queue_remove(f->s, "emails", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.queued, 1);
    assert_int_equal(held.scheduled, 1);
    assert_int_equal(held.running, 1);
    assert_non_null(strstr(e.msg, "queue emails still holds 1 queued, 1 scheduled and 1 running "
                                  "jobs: nothing removed"));
    assert_non_null(strstr(e.msg, "aspen cancel --filter 'queue:emails state:queued,scheduled,running'"));
    assert_true(listed(f->s, "emails"));

    /* the running one finishes, the others are cancelled: only finished jobs are left */
    assert_int_equal(complete_one(f->s, f->engine, run, ASPEN_STORE_OUTCOME_SUCCESS, 0, now), 0);
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(f->s, wait, now, &cr, &e), 0);
    assert_int_equal(aspen_store_queue_remove(f->s, "emails", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.scheduled, 1);
    assert_int_equal(held.queued + held.running, 0);
    assert_non_null(strstr(e.msg, "still holds 1 scheduled job:"));
    assert_int_equal(aspen_store_cancel(f->s, later, now, &cr, &e), 0);
    assert_int_equal(aspen_store_queue_remove(f->s, "emails", &held, &e), 0);
    assert_false(listed(f->s, "emails"));
    assert_true(listed(f->s, "other"));
    assert_int_equal(aspen_store_queue_exists(f->s, "emails", &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_queue_remove(f->s, "emails", NULL, &e), ASPEN_STORE_ENOTFOUND);
    /* its finished jobs stay, still in it */
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, fail, &j, &e), 0);
    assert_string_equal(j.queue, "emails");
    aspen_store_job_clear(&j);

    /* Claims now go queue by queue (other has a limit): a retry into the removed queue makes it
     * again, so its job is claimed, not left where no claim reads. */
    set_limit(f->s, "other", 10);
    int64_t ids[8];
    assert_int_equal(claim_ids(f->s, f->engine, 8, now, ids), 1); /* other's job */
    assert_int_equal(aspen_store_retry(f->s, fail, now, &e), 0);
    assert_true(listed(f->s, "emails"));
    assert_int_equal(reserve_ids(f->s, f->engine, 8, now, ids), 1);
    assert_int_equal(ids[0], fail);
    assert_int_equal(aspen_store_cancel(f->s, fail, now, &cr, &e), 0);
    /* and a rerun too */
    assert_int_equal(aspen_store_queue_remove(f->s, "emails", NULL, &e), 0);
    assert_false(listed(f->s, "emails"));
    int64_t again = 0;
    assert_int_equal(aspen_store_rerun(f->s, run, now, &again, &e), 0);
    assert_true(listed(f->s, "emails"));
    assert_int_equal(reserve_ids(f->s, f->engine, 8, now, ids), 1);
    assert_int_equal(ids[0], again);
    /* the queue's settings went with it: made again, it has none */
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_queues(f->s, now, &qs, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(qs[i].name, "emails"))
            assert_int_equal(qs[i].limit, 0);
    aspen_store_queues_free(qs);
}

/* A raw transaction on the test's database, held open: what a submit into a named queue does in
 * its transaction before it commits (it writes the queues table, then the job's queue). */
struct held_tx {
    PGconn *pg;
    sqlite3 *lite;
};

static void held_exec(struct held_tx *h, const char *sql)
{
    if (h->pg) {
        PGresult *r = PQexec(h->pg, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(h->pg));
        PQclear(r);
    } else if (sqlite3_exec(h->lite, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(h->lite));
    }
}

/* The removal races a submit that has not committed yet: a job going into the queue in another
 * transaction. The removal must wait for it and then count its job (refused: 1 queued), never
 * count 0, delete the row and leave the job in a queue no claim that goes queue by queue reads.
 * A child process holds the transaction open 300 ms (its own connection, made after the fork);
 * the removal here must wait for it and then refuse. */
static void test_queue_remove_waits_for_a_submit(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    set_limit(f->s, "race", 4);
    int64_t job = submit_q(f->s, NULL, 0, T0); /* queued in default; the raw tx moves it */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct held_tx h = {0};
        if (f->pg_db[0]) {
            h.pg = PQconnectdb(f->path);
            if (PQstatus(h.pg) != CONNECTION_OK)
                _exit(10);
        } else if (sqlite3_open(f->path, &h.lite) != SQLITE_OK) {
            _exit(10);
        }
        held_exec(&h, f->pg_db[0] ? "BEGIN" : "BEGIN IMMEDIATE");
        held_exec(&h, "INSERT INTO queues (name, created_at) VALUES ('race', 0)"
                      " ON CONFLICT (name) DO NOTHING");
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE jobs SET queue = 'race' WHERE id = %lld", (long long)job);
        held_exec(&h, sql);
        if (write(ready[1], "r", 1) != 1)
            _exit(11);
        usleep(300 * 1000);
        held_exec(&h, "COMMIT");
        if (h.pg)
            PQfinish(h.pg);
        else
            sqlite3_close(h.lite);
        _exit(0);
    }
    close(ready[1]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1); /* the transaction is open */
    close(ready[0]);
    /* counting 1 means it waited for the commit: before it, the job is not in the queue yet */
    aspen_store_queue_held held = {0};
    int rc = aspen_store_queue_remove(f->s, "race", &held, &e);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (rc != ASPEN_STORE_ESTATE)
        fail_msg("the removal: %d %s", rc, e.msg);
    assert_int_equal(held.queued, 1);
    assert_non_null(strstr(e.msg, "1 queued job"));
    assert_true(listed(f->s, "race"));
    /* and the job is claimed in its queue */
    int64_t ids[4];
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0, ids), 1);
    assert_int_equal(ids[0], job);
}

/* A schedule into queue q (paused or not), its jobs echo jobs; replace: store it again. */
static void add_schedule(aspen_store *s, const char *name, const char *q, bool paused, bool replace)
{
    aspen_store_job_spec job = {.type = "echo"};
    aspen_store_schedule_spec sp = {.name = name, .expr = "*/5 * * * *", .queue = q,
                                    .paused = paused, .replace = replace, .job = &job};
    aspen_store_error e = {0};
    if (aspen_store_schedule_add(s, &sp, T0, NULL, &e) != 0)
        fail_msg("schedule %s: %s", name, e.msg);
}

/* A queue a schedule's jobs go to is not removed: the schedule's next run used to make it again,
 * without its settings. Refused naming the schedules (a paused one too: resumed, it would run
 * into it) and what to do; with unfinished jobs as well, one message says both; once the
 * schedule is removed or points at another queue, the queue goes, and the scheduler's next
 * run does not bring it back. */
static void test_queue_remove_refused_by_schedules(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_queue_held held = {0};
    set_limit(f->s, "reports", 3);
    add_schedule(f->s, "nightly", "reports", false, false);
    add_schedule(f->s, "weekly", "reports", true, false);
    add_schedule(f->s, "elsewhere", "other", false, false); /* another queue's: not counted */

    assert_int_equal(aspen_store_queue_remove(f->s, "reports", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.schedules, 2);
    assert_int_equal(held.queued + held.scheduled + held.running, 0);
    if (!strstr(e.msg, "queue reports is the queue of 2 schedules (nightly, weekly): nothing "
                       "removed. Their next run would make it again: aspen cron rm NAME, or give "
                       "each another queue (aspen cron add NAME ... --queue OTHER --replace), "
                       "then remove it again"))
        fail_msg("message: %s", e.msg);
    assert_true(listed(f->s, "reports"));

    assert_int_equal(aspen_store_schedule_remove(f->s, "weekly", &e), 0);
    assert_int_equal(aspen_store_queue_remove(f->s, "reports", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.schedules, 1);
    if (!strstr(e.msg, "queue reports is the queue of schedule nightly: nothing removed. Its next "
                       "run would make it again: aspen cron rm nightly, or give it another queue "
                       "(aspen cron add nightly ... --queue OTHER --replace), then remove it "
                       "again"))
        fail_msg("message: %s", e.msg);

    /* jobs and a schedule: one message with both and what to do with each */
    int64_t job = submit_q(f->s, "reports", 0, T0);
    assert_int_equal(aspen_store_queue_remove(f->s, "reports", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.queued, 1);
    assert_int_equal(held.schedules, 1);
    if (!strstr(e.msg, "queue reports still holds 1 queued job and is the queue of schedule "
                       "nightly: nothing removed. Jobs cannot move to another queue") ||
        !strstr(e.msg, "lists them). Its next run would make it again: aspen cron rm "
                       "nightly") ||
        !strstr(e.msg, "Then remove it again"))
        fail_msg("message: %s", e.msg);
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(f->s, job, T0, &cr, &e), 0);

    /* the schedule now goes to another queue: the queue goes, and stays gone when it runs */
    add_schedule(f->s, "nightly", "other", false, true);
    assert_int_equal(aspen_store_queue_remove(f->s, "reports", &held, &e), 0);
    assert_false(listed(f->s, "reports"));
    aspen_store_schedule sc;
    assert_int_equal(aspen_store_schedule_get(f->s, "nightly", &sc, &e), 0);
    int64_t due = sc.next_run_ms; /* its next occurrence, within its grace */
    aspen_store_schedule_clear(&sc);
    assert_true(due > T0);
    aspen_store_scheduler_report r;
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, due, &e), 0); /* live then */
    assert_int_equal(aspen_store_scheduler_tick(f->s, f->engine, 5000, due, &r, &e), 0);
    assert_true(r.enqueued >= 1);
    assert_false(listed(f->s, "reports"));
    assert_true(listed(f->s, "other"));

    /* many schedules: the first five by name, and how many more */
    set_limit(f->s, "bulk", 1);
    const char *names[] = {"g", "a", "f", "b", "e", "c", "d"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        add_schedule(f->s, names[i], "bulk", false, false);
    assert_int_equal(aspen_store_queue_remove(f->s, "bulk", &held, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(held.schedules, 7);
    if (!strstr(e.msg, "queue bulk is the queue of 7 schedules (a, b, c, d, e and 2 more: aspen "
                       "cron list)"))
        fail_msg("message: %s", e.msg);
}

/* One side of the add/remove race: its own handle, released at each round's start barrier. */
struct race_side {
    const char *path;
    pthread_barrier_t *start, *end;
    int rounds;
    bool adder;
    int done; /* the rounds where this side's call succeeded */
    char error[640]; /* the first unexpected failure, "" if none */
};

static void *race_side_main(void *arg)
{
    struct race_side *r = arg;
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(r->path, NULL, &s, &e) != 0)
        snprintf(r->error, sizeof r->error, "open: %s", e.msg);
    for (int i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(r->start);
        int rc = 0;
        if (s && r->adder) {
            /* what aspen cron add does: the CLI's check (for its "did you mean"), then the add
             * that must check again inside its transaction */
            aspen_store_job_spec job = {.type = "echo"};
            aspen_store_schedule_spec sp = {.name = "racer", .expr = "*/5 * * * *",
                                            .queue = "racing", .require_queue = true,
                                            .replace = true, .job = &job};
            rc = aspen_store_queue_exists(s, "racing", &e);
            if (rc == 0)
                rc = aspen_store_schedule_add(s, &sp, T0, NULL, &e);
        } else if (s) {
            aspen_store_queue_held held;
            rc = aspen_store_queue_remove(s, "racing", &held, &e);
            if (rc == ASPEN_STORE_ESTATE && held.schedules != 1)
                snprintf(r->error, sizeof r->error, "refused with %lld schedules: %s",
                         (long long)held.schedules, e.msg);
        }
        if (rc == 0)
            r->done++;
        else if (rc != (r->adder ? ASPEN_STORE_ENOTFOUND : ASPEN_STORE_ESTATE) && !r->error[0])
            snprintf(r->error, sizeof r->error, "round %d: %d %s", i, rc, e.msg);
        pthread_barrier_wait(r->end);
    }
    aspen_store_close(s);
    return NULL;
}

/* aspen cron add --queue Q and aspen queue rm Q at the same moment, on two handles, many rounds:
 * each round either the schedule is stored (and the removal refused: the schedule names the
 * queue) or the queue is removed (and the add refused: no such queue), never both — a schedule
 * whose queue is gone would make it again on its first run, without its settings. The add used
 * to check before its transaction, and on PostgreSQL the removal did not see a schedule not yet
 * committed. */
static void test_schedule_add_races_queue_remove(void **state)
{
    struct fixture *f = *state;
    enum { ROUNDS = 150 };
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, 3);
    pthread_barrier_init(&end, NULL, 3);
    struct race_side side[2] = {
        {.path = f->path, .start = &start, .end = &end, .rounds = ROUNDS, .adder = true},
        {.path = f->path, .start = &start, .end = &end, .rounds = ROUNDS, .adder = false},
    };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_side_main, &side[i]), 0);
    int orphans = 0;
    aspen_store_error e = {0};
    for (int i = 0; i < ROUNDS; i++) {
        set_limit(f->s, "racing", 2); /* the queue is there at each round's start */
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&end);
        aspen_store_schedule sc;
        int rc = aspen_store_schedule_get(f->s, "racer", &sc, &e);
        if (rc == 0) {
            if (!listed(f->s, "racing"))
                orphans++;
            aspen_store_schedule_clear(&sc);
            assert_int_equal(aspen_store_schedule_remove(f->s, "racer", &e), 0);
        } else {
            assert_int_equal(rc, ASPEN_STORE_ENOTFOUND);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&end);
    for (int i = 0; i < 2; i++)
        if (side[i].error[0])
            fail_msg("%s: %s", side[i].adder ? "add" : "remove", side[i].error);
    if (orphans)
        fail_msg("%d of %d rounds left schedule racer pointing at removed queue racing (adds "
                 "stored %d, removals done %d)", orphans, ROUNDS, side[0].done, side[1].done);
    /* each round exactly one of them won */
    assert_int_equal(side[0].done + side[1].done, ROUNDS);
    print_message("race: %d adds, %d removals\n", side[0].done, side[1].done);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_submit_and_read_back), T(test_names_rates_limits_refused), T(test_listing),
        T(test_limit_across_engines), T(test_pause_one_queue),            T(test_rate_window),
        T(test_rate_claimed_on_another_handle),
        T(test_serve_some_queues),    T(test_no_settings_plain_order),
        T(test_settings_from_another_host), T(test_queue_remove),
        T(test_queue_remove_waits_for_a_submit), T(test_queue_remove_refused_by_schedules),
        T(test_schedule_add_races_queue_remove),
    };
    return _cmocka_run_group_tests(__FILE__, both, sizeof both / sizeof both[0], NULL, NULL);
}
