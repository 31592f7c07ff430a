/* test_store_schedule.c — schedules in the store (store/schedule.c and each backend's
 * *_schedule.c), on both backends: definitions and their errors, the scheduler lease (one holder,
 * taken over when the holder's lease lapses or its engine is gone, never by an unregistered
 * engine), exactly one job per occurrence (also when next_run is rewound behind the store's back,
 * as a second lease holder with a stale view would), the missed policies, pause/resume, run now,
 * the key pruning, and a simulated @every 1s over ten seconds of irregular ticks from two
 * engines. A run now while the schedule's job still waits or runs answers with that job, also
 * when 8 processes ask at once. Time is injected: nothing sleeps. */
#include "helpers.h"

#include <sys/wait.h>

static aspen_store_job_spec echo_job(void)
{
    return (aspen_store_job_spec){.type = "echo", .payload = "{\"n\":1}", .max_attempts = 2,
                                  .timeout_ms = 1234, .tags = "[\"x\"]", .priority = 5};
}

static void add(struct fixture *f, const char *name, const char *expr, const char *tz,
                aspen_store_missed missed, int64_t grace, int64_t now)
{
    aspen_store_job_spec job = echo_job();
    aspen_store_schedule_spec sp = {.name = name, .expr = expr, .tz = tz, .missed = missed,
                                    .grace_ms = grace, .job = &job, .queue = "reports"};
    aspen_store_error e = {0};
    int64_t id = 0;
    if (aspen_store_schedule_add(f->s, &sp, now, &id, &e))
        fail_msg("add %s: %s", name, e.msg);
    assert_true(id > 0);
}

static aspen_store_scheduler_report tick(struct fixture *f, int64_t engine, int64_t now)
{
    aspen_store_scheduler_report r;
    aspen_store_error e = {0};
    if (aspen_store_scheduler_tick(f->s, engine, 5000, now, &r, &e))
        fail_msg("tick: %s", e.msg);
    return r;
}

static aspen_store_schedule get(struct fixture *f, const char *name)
{
    aspen_store_schedule sc;
    aspen_store_error e = {0};
    if (aspen_store_schedule_get(f->s, name, &sc, &e))
        fail_msg("get %s: %s", name, e.msg);
    return sc;
}

static int64_t count_jobs(struct fixture *f)
{
    return fx_raw_int(f, "SELECT count(*) FROM jobs");
}

static void test_define(void **state)
{
    struct fixture *f = *state;
    add(f, "nightly", "30 2 * * *", "Europe/Berlin", ASPEN_STORE_MISSED_ONCE, 0, T0);
    aspen_store_schedule sc = get(f, "nightly");
    assert_string_equal(sc.expr, "30 2 * * *");
    assert_string_equal(sc.tz, "Europe/Berlin");
    assert_string_equal(sc.queue, "reports");
    assert_int_equal(sc.missed, ASPEN_STORE_MISSED_ONCE);
    assert_int_equal(sc.grace_ms, ASPEN_STORE_SCHEDULE_GRACE_MS);
    assert_string_equal(sc.type, "echo");
    assert_string_equal(sc.payload, "{\"n\":1}");
    assert_string_equal(sc.tags, "[\"x\",\"cron:nightly\"]");
    assert_int_equal(sc.max_attempts, 2);
    assert_int_equal(sc.timeout_ms, 1234);
    assert_int_equal(sc.priority, 5);
    /* T0 is 2023-11-14 22:13:20 UTC; 02:30 in Berlin (CET) is 01:30 UTC on the 15th */
    assert_int_equal(sc.next_run_ms, 1700011800000LL);
    assert_int_equal(sc.last_job_id, 0);
    assert_int_equal(sc.last_job_state, -1);
    assert_false(sc.paused);
    aspen_store_schedule_clear(&sc);

    aspen_store_error e = {0};
    aspen_store_job_spec job = echo_job();
    aspen_store_schedule_spec sp = {.name = "nightly", .expr = "@hourly", .job = &job};
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "a schedule named \"nightly\" already exists"));
    sp.replace = true;
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), 0);
    sc = get(f, "nightly");
    assert_string_equal(sc.expr, "@hourly");
    assert_string_equal(sc.tz, "UTC");
    assert_int_equal(sc.next_run_ms, 1700002800000LL); /* 23:00 UTC */
    aspen_store_schedule_clear(&sc);

    sp = (aspen_store_schedule_spec){.name = "bad", .expr = "0 0 32 * *", .job = &job};
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "day-of-month 32 is out of range 1-31"));
    sp.expr = "@daily";
    sp.tz = "Mars/Olympus";
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "not in the time zone database"));
    sp.tz = NULL;
    static const char *const bad_names[] = {"", "-x", "a b", "a/b", "x'; DROP TABLE jobs; --",
                                            "\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        sp.name = bad_names[i];
        assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    }
    sp.name = "j";
    aspen_store_job_spec bad_job = {.type = "echo", .payload = "{nope"};
    sp.job = &bad_job;
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "payload is not valid JSON"));
    bad_job = (aspen_store_job_spec){.type = "echo", .run_at_ms = T0 + 5};
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);
    bad_job = (aspen_store_job_spec){.type = "vm_execute", .binary_sha256 = "00ff"};
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), ASPEN_STORE_EINVAL);

    /* a binary given by bytes is stored and referenced by hash */
    static const char bytes[] = "not really an ELF, but bytes";
    aspen_store_job_spec bin_job = {.type = "vm_execute", .binary = bytes, .binary_size = sizeof bytes,
                                    .binary_name = "g"};
    sp = (aspen_store_schedule_spec){.name = "guest", .expr = "@every 5m", .job = &bin_job};
    assert_int_equal(aspen_store_schedule_add(f->s, &sp, T0, NULL, &e), 0);
    sc = get(f, "guest");
    char sha[65];
    aspen_store_sha256_hex(bytes, sizeof bytes, sha);
    assert_string_equal(sc.binary_sha256, sha);
    assert_string_equal(sc.binary_name, "g");
    assert_string_equal(sc.tags, "[\"cron:guest\"]");
    assert_int_equal(sc.next_run_ms, 1700000100000LL); /* the next multiple of 5 minutes */
    aspen_store_schedule_clear(&sc);

    aspen_store_schedule *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_schedules(f->s, &list, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "guest");
    assert_string_equal(list[1].name, "nightly");
    aspen_store_schedules_free(list, n);

    assert_int_equal(aspen_store_schedule_remove(f->s, "nightlyy", &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no schedule named \"nightlyy\": did you mean nightly?"));
    assert_int_equal(aspen_store_schedule_get(f->s, "nope", &sc, &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_schedule_set_paused(f->s, "nope", true, T0, &e),
                     ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_schedule_run_now(f->s, "nope", T0, NULL, &e),
                     ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_schedule_remove(f->s, "nightly", &e), 0);
    assert_int_equal(aspen_store_schedule_get(f->s, "nightly", &sc, &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(count_jobs(f), 0);
}

static void test_tick_enqueues(void **state)
{
    struct fixture *f = *state;
    add(f, "q", "*/15 * * * *", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0); /* next: 22:15 */
    int64_t first = 1700000100000LL;
    aspen_store_scheduler_report r = tick(f, f->engine, T0);
    assert_true(r.held);
    assert_int_equal(r.holder, f->engine);
    assert_int_equal(r.enqueued, 0);
    assert_int_equal(r.next_due_ms, first);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, first, &e), 0);
    r = tick(f, f->engine, first + 10);
    assert_int_equal(r.enqueued, 1);
    assert_int_equal(r.next_due_ms, first + 900000);
    aspen_store_schedule sc = get(f, "q");
    assert_int_equal(sc.last_run_ms, first);
    assert_int_equal(sc.last_enqueued_at_ms, first + 10);
    assert_true(sc.last_job_id > 0);
    assert_int_equal(sc.last_job_state, ASPEN_STORE_QUEUED);
    assert_int_equal(sc.runs, 1);
    assert_int_equal(sc.next_run_ms, first + 900000);
    aspen_store_job job;
    assert_int_equal(aspen_store_get(f->s, sc.last_job_id, &job, &e), 0);
    assert_string_equal(job.type, "echo");
    assert_string_equal(job.payload, "{\"n\":1}");
    assert_string_equal(job.tags, "[\"x\",\"cron:q\"]");
    assert_int_equal(job.priority, 5);
    assert_int_equal(job.max_attempts, 2);
    assert_int_equal(job.timeout_ms, 1234);
    assert_string_equal(job.queue, "reports"); /* the schedule's queue, passed through */
    aspen_store_job_clear(&job);
    /* the key */
    aspen_store_schedule_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_schedule_runs(f->s, "q", 0, &runs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].occurrence_ms, first);
    assert_int_equal(runs[0].job_id, sc.last_job_id);
    assert_int_equal(runs[0].engine_id, f->engine);
    assert_false(runs[0].manual);
    aspen_store_schedule_runs_free(runs);
    /* the same tick again enqueues nothing */
    r = tick(f, f->engine, first + 20);
    assert_int_equal(r.enqueued, 0);
    assert_int_equal(count_jobs(f), 1);
    /* a late tick within the grace still enqueues the occurrence */
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, first + 959000, &e), 0);
    r = tick(f, f->engine, first + 900000 + 59000);
    assert_int_equal(r.enqueued, 1);
    assert_int_equal(r.missed, 0);
    aspen_store_schedule_clear(&sc);
}

/* Two lease holders with stale views cannot double-enqueue: rewinding next_run behind the
 * store's back makes the tick meet the key and write no job. */
static void test_key_backstop(void **state)
{
    struct fixture *f = *state;
    add(f, "k", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0);
    assert_int_equal(tick(f, f->engine, T0 + 3500).enqueued, 3);
    assert_int_equal(count_jobs(f), 3);
    fx_raw_exec(f, "UPDATE schedules SET next_run = 1700000001000");
    aspen_store_scheduler_report r = tick(f, f->engine, T0 + 3600);
    assert_int_equal(r.enqueued, 0);
    assert_int_equal(count_jobs(f), 3);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM schedule_runs"), 3);
    aspen_store_schedule sc = get(f, "k");
    assert_int_equal(sc.runs, 3);
    assert_int_equal(sc.next_run_ms, T0 + 4000);
    aspen_store_schedule_clear(&sc);
    assert_int_equal(tick(f, f->engine, T0 + 4000).enqueued, 1);
    assert_int_equal(count_jobs(f), 4);
}

static void test_lease(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t b = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 2, "b", 5000, T0, &b, &e), 0);
    add(f, "l", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0);
    aspen_store_scheduler_report r = tick(f, f->engine, T0 + 100);
    assert_true(r.held);
    r = tick(f, b, T0 + 1500);
    assert_false(r.held);
    assert_int_equal(r.holder, f->engine);
    assert_int_equal(r.enqueued, 0);
    assert_int_equal(count_jobs(f), 0); /* B wrote nothing */
    /* an engine that is not registered never takes it, even free */
    assert_int_equal(aspen_store_scheduler_release(f->s, f->engine, &e), 0);
    int64_t holder = -1, until = -1;
    assert_int_equal(aspen_store_scheduler_holder(f->s, &holder, &until, &e), 0);
    assert_int_equal(holder, 0);
    assert_false(tick(f, 999, T0 + 1600).held);
    /* B takes the free lease */
    r = tick(f, b, T0 + 1700);
    assert_true(r.held);
    assert_int_equal(r.enqueued, 1);
    /* A's engine lease lapses (B renews its own): B keeps it, A cannot take it back while B's
     * lease lives, and once B dies (its engine lease lapses too) A takes over */
    assert_int_equal(aspen_store_engine_renew(f->s, b, 5000, T0 + 4000, &e), 0);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, T0 + 4000, &e), 0);
    r = tick(f, f->engine, T0 + 4100);
    assert_false(r.held);
    assert_int_equal(r.holder, b);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, T0 + 9000, &e), 0);
    /* B's scheduler lease ended at 6700, its engine lease at 9000: A waits for neither beyond
     * the scheduler lease */
    r = tick(f, f->engine, T0 + 6800);
    assert_true(r.held);
    /* the occurrences B missed (2..6 s) are within the grace: A enqueues them */
    assert_int_equal(r.enqueued, 5);
    assert_int_equal(count_jobs(f), 6);
    /* an engine whose row is gone loses the lease at once */
    int64_t released = 0;
    assert_int_equal(aspen_store_engine_unregister(f->s, f->engine, T0 + 6900, &released, &e), 0);
    r = tick(f, b, T0 + 7000);
    assert_true(r.held);
    assert_int_equal(r.enqueued, 1); /* 7 s */
}

static void test_missed(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    add(f, "skip", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 2000, T0);
    add(f, "once", "@every 1s", NULL, ASPEN_STORE_MISSED_ONCE, 2000, T0);
    add(f, "daily", "0 3 * * *", NULL, ASPEN_STORE_MISSED_ONCE, 0, T0);
    assert_int_equal(tick(f, f->engine, T0 + 1000).enqueued, 2);
    /* nothing ran for 30 s: for each, the occurrences 2..27 s are older than the 2 s grace */
    int64_t now = T0 + 30500;
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, now, &e), 0);
    aspen_store_scheduler_report r = tick(f, f->engine, now);
    assert_int_equal(r.missed, 2);
    /* skip: only the on-time ones (29 s and 30 s, within the grace); once: those plus one job
     * for all the missed, keyed by the first missed occurrence (2 s) */
    assert_int_equal(r.enqueued, 2 + 3);
    aspen_store_schedule_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_schedule_runs(f->s, "skip", 0, &runs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(runs[0].occurrence_ms, T0 + 1000);
    assert_int_equal(runs[1].occurrence_ms, T0 + 29000);
    assert_int_equal(runs[2].occurrence_ms, T0 + 30000);
    aspen_store_schedule_runs_free(runs);
    assert_int_equal(aspen_store_schedule_runs(f->s, "once", 0, &runs, &n, &e), 0);
    assert_int_equal(n, 4);
    assert_int_equal(runs[1].occurrence_ms, T0 + 2000);
    assert_int_equal(runs[2].occurrence_ms, T0 + 29000);
    assert_int_equal(runs[3].occurrence_ms, T0 + 30000);
    aspen_store_schedule_runs_free(runs);
    aspen_store_schedule sc = get(f, "once");
    assert_int_equal(sc.missed_count, 1);
    assert_int_equal(sc.runs, 4);
    assert_int_equal(sc.next_run_ms, T0 + 31000);
    aspen_store_schedule_clear(&sc);
    /* a daily job whose 03:00 passed while nothing ran: once → one job now, next tomorrow */
    int64_t day = 86400000LL, three = 1700017200000LL; /* 2023-11-15 03:00 UTC */
    now = three + 5 * 3600000LL;
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, now, &e), 0);
    r = tick(f, f->engine, now);
    assert_int_equal(r.missed, 3);
    sc = get(f, "daily");
    assert_int_equal(sc.runs, 1);
    assert_int_equal(sc.last_run_ms, three);
    assert_int_equal(sc.next_run_ms, three + day);
    aspen_store_schedule_clear(&sc);
}

static void test_pause_run_now(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    add(f, "p", "@every 1s", NULL, ASPEN_STORE_MISSED_ONCE, 0, T0);
    assert_int_equal(aspen_store_schedule_set_paused(f->s, "p", true, T0, &e), 0);
    assert_int_equal(tick(f, f->engine, T0 + 3000).enqueued, 0);
    int64_t job = 0;
    assert_int_equal(aspen_store_schedule_run_now(f->s, "p", T0 + 3100, &job, &e), 0);
    assert_true(job > 0);
    /* again while that job waits: that job, said so, nothing enqueued (as a duplicate submit) */
    aspen_store_submitted dup = {0};
    assert_int_equal(aspen_store_schedule_run_now_ex(f->s, "p", T0 + 3100, &dup, &e), 0);
    assert_true(dup.duplicate);
    assert_int_equal(dup.id, job);
    assert_int_equal(dup.state, ASPEN_STORE_QUEUED);
    assert_int_equal(dup.created_at_ms, T0 + 3100);
    char note[400];
    aspen_store_schedule_duplicate_message("p", &dup, T0 + 3100, note, sizeof note);
    char want[300];
    snprintf(want, sizeof want,
             "schedule p: its job %lld (queued, enqueued just now) has not finished; not running "
             "another (aspen cancel %lld first to run it again now)",
             (long long)job, (long long)job);
    assert_string_equal(note, want);
    int64_t same = 0;
    assert_int_equal(aspen_store_schedule_run_now(f->s, "p", T0 + 3100, &same, &e), 0);
    assert_int_equal(same, job);
    aspen_store_schedule sc = get(f, "p");
    assert_int_equal(sc.runs, 1);
    aspen_store_schedule_clear(&sc);
    /* cancelled, it is done: twice in one millisecond then makes two jobs under two keys */
    assert_int_equal(aspen_store_cancel(f->s, job, T0 + 3100, NULL, &e), 0);
    int64_t job2 = 0;
    assert_int_equal(aspen_store_schedule_run_now_ex(f->s, "p", T0 + 3100, &dup, &e), 0);
    assert_false(dup.duplicate);
    job2 = dup.id;
    assert_true(job2 > job);
    sc = get(f, "p");
    assert_true(sc.paused);
    assert_int_equal(sc.last_job_id, job2);
    assert_int_equal(sc.runs, 2);
    aspen_store_schedule_clear(&sc);
    /* resumed: the next run is computed from now; the paused seconds are not run */
    assert_int_equal(aspen_store_schedule_set_paused(f->s, "p", false, T0 + 10500, &e), 0);
    sc = get(f, "p");
    assert_false(sc.paused);
    assert_int_equal(sc.next_run_ms, T0 + 11000);
    aspen_store_schedule_clear(&sc);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, T0 + 11000, &e), 0);
    aspen_store_scheduler_report r = tick(f, f->engine, T0 + 11000);
    assert_int_equal(r.enqueued, 1);
    assert_int_equal(r.missed, 0);
    aspen_store_schedule_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_schedule_runs(f->s, "p", 0, &runs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_true(runs[0].manual && runs[1].manual && !runs[2].manual);
    assert_int_equal(runs[0].occurrence_ms, T0 + 3100);
    assert_int_equal(runs[1].occurrence_ms, T0 + 3101);
    aspen_store_schedule_runs_free(runs);
    assert_int_equal(count_jobs(f), 3);
}

static void test_prune_and_burst(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    add(f, "b", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 3600000, T0);
    /* 1100 s behind but within the grace: at most STORE_SCHEDULE_BURST (64) per tick */
    int64_t now = T0 + 1100 * 1000;
    int64_t total = 0;
    for (int i = 0; i < 40 && total < 1100; i++) {
        assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, now, &e), 0);
        aspen_store_scheduler_report r = tick(f, f->engine, now);
        assert_true(r.enqueued <= 64);
        total += r.enqueued;
    }
    assert_int_equal(total, 1100);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM schedule_runs"),
                     ASPEN_STORE_SCHEDULE_RUNS_KEPT);
    assert_int_equal(fx_raw_int(f, "SELECT min(occurrence) FROM schedule_runs"), T0 + 101000);
}

/* @every 1s for ten seconds with two engines ticking at irregular moments (as the engines'
 * scheduler threads do): exactly one job per second, keys 1..10 s, whoever held the lease. */
static void test_every_second(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t b = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 2, "b", 5000, T0, &b, &e), 0);
    add(f, "s", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0);
    uint64_t rnd = 12345;
    for (int64_t t = T0; t <= T0 + 10000;) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        int64_t one = rnd & 1 ? b : f->engine, other = one == b ? f->engine : b;
        assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, t, &e), 0);
        assert_int_equal(aspen_store_engine_renew(f->s, b, 5000, t, &e), 0);
        tick(f, one, t);
        tick(f, other, t);
        t += 50 + (int64_t)(rnd % 400);
    }
    tick(f, f->engine, T0 + 10000);
    tick(f, b, T0 + 10000);
    assert_int_equal(count_jobs(f), 10);
    aspen_store_schedule_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_schedule_runs(f->s, "s", 0, &runs, &n, &e), 0);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(runs[i].occurrence_ms, T0 + 1000 * (int64_t)(i + 1));
        assert_true(runs[i].enqueued_at_ms >= runs[i].occurrence_ms);
        assert_true(runs[i].enqueued_at_ms < runs[i].occurrence_ms + 500);
    }
    aspen_store_schedule_runs_free(runs);
    assert_int_equal(fx_raw_int(f, "SELECT count(DISTINCT job) FROM schedule_runs"), 10);
}

/* A schedule whose zone can no longer load keeps its place, says why, and blocks no other. */
static void test_broken_zone(void **state)
{
    struct fixture *f = *state;
    add(f, "z", "0 * * * *", "Europe/Berlin", ASPEN_STORE_MISSED_SKIP, 0, T0);
    add(f, "fine", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0);
    fx_raw_exec(f, "UPDATE schedules SET tz = 'Nowhere/Gone' WHERE name = 'z'");
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, T0 + 3000000, &e), 0);
    aspen_store_scheduler_report r = tick(f, f->engine, T0 + 3000000);
    assert_true(r.enqueued >= 1);
    aspen_store_schedule sc = get(f, "z");
    assert_int_equal(sc.next_run_ms, 0);
    assert_non_null(sc.error);
    assert_non_null(strstr(sc.error, "Nowhere/Gone"));
    aspen_store_schedule_clear(&sc);
    sc = get(f, "fine");
    assert_null(sc.error);
    aspen_store_schedule_clear(&sc);
}

/* The schedule's occurrence runs; 8 processes ask for a run now 50 times each at once: no job is
 * made, every answer is the running one. Once it is done the next run now makes a job, and the
 * ones after it answer with that one. */
#define RN_PROCS 8
#define RN_TIMES 50
static void test_run_now_while_running(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    add(f, "busy", "@every 1s", NULL, ASPEN_STORE_MISSED_SKIP, 0, T0);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 600000, T0 + 1000, &e), 0);
    assert_int_equal(tick(f, f->engine, T0 + 1000).enqueued, 1);
    assert_int_equal(aspen_store_schedule_set_paused(f->s, "busy", true, T0 + 1000, &e), 0);
    int64_t running = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1001, &running), 1);
    int go[2], back[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(back), 0);
    pid_t pids[RN_PROCS];
    for (int p = 0; p < RN_PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            close(back[0]);
            aspen_store_options o = {.busy_timeout_ms = 120000};
            aspen_store *s = NULL;
            aspen_store_error ce = {0};
            if (aspen_store_open(f->path, &o, &s, &ce) != 0)
                _exit(10);
            char ch;
            if (read(go[0], &ch, 1) != 1)
                _exit(11);
            for (int i = 0; i < RN_TIMES; i++) {
                aspen_store_submitted out = {0};
                if (aspen_store_schedule_run_now_ex(s, "busy", T0 + 2000 + i, &out, &ce) != 0) {
                    fprintf(stderr, "child %d: %s\n", p, ce.msg);
                    _exit(12);
                }
                if (!out.duplicate || out.state != ASPEN_STORE_RUNNING ||
                    write(back[1], &out.id, sizeof out.id) != (ssize_t)sizeof out.id)
                    _exit(13);
            }
            aspen_store_close(s);
            _exit(0);
        }
    }
    close(go[0]);
    close(back[1]);
    char gobuf[RN_PROCS];
    memset(gobuf, 'g', sizeof gobuf);
    assert_int_equal(write(go[1], gobuf, sizeof gobuf), RN_PROCS);
    close(go[1]);
    int64_t id;
    size_t answers = 0;
    while (read(back[0], &id, sizeof id) == (ssize_t)sizeof id) {
        assert_int_equal(id, running);
        answers++;
    }
    close(back[0]);
    for (int p = 0; p < RN_PROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(answers, RN_PROCS * RN_TIMES);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 1);
    aspen_store_schedule sc = get(f, "busy");
    assert_int_equal(sc.runs, 1);
    aspen_store_schedule_clear(&sc);
    /* done: a run now makes the next job, and the one after is that one */
    assert_int_equal(complete_one(f->s, f->engine, running, ASPEN_STORE_OUTCOME_SUCCESS, 0,
                                  T0 + 3000),
                     0);
    aspen_store_submitted a = {0}, b = {0};
    assert_int_equal(aspen_store_schedule_run_now_ex(f->s, "busy", T0 + 3001, &a, &e), 0);
    assert_false(a.duplicate);
    assert_true(a.id > running);
    assert_int_equal(aspen_store_schedule_run_now_ex(f->s, "busy", T0 + 3002, &b, &e), 0);
    assert_true(b.duplicate);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.state, ASPEN_STORE_QUEUED);
    assert_int_equal(b.created_at_ms, T0 + 3001);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_define),          T(test_tick_enqueues), T(test_key_backstop),
        T(test_lease),           T(test_missed),        T(test_pause_run_now),
        T(test_prune_and_burst), T(test_every_second),  T(test_broken_zone),
        T(test_run_now_while_running),
    };
    return _cmocka_run_group_tests(__FILE__, both, sizeof both / sizeof both[0], NULL, NULL);
}
