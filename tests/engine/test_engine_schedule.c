/* tests/engine/test_engine_schedule.c — the C API for periodic jobs (engine/include/aspen_engine_schedule.h)
 * through a real engine, on SQLite and (as engine_test_engine_schedule_pg) on PostgreSQL:
 *
 *   add        every argument it refuses (NULL, run time, expression with the field named, zone,
 *              name, duplicate, missed policy, grace, queue name, payload, guest, the template's
 *              queue disagreeing with the schedule's) and that a refused add stores nothing;
 *              replace keeps the id; the template's queue is the schedule's when none is given
 *   list       what add stored, read back field by field
 *   pause      pause/resume by name; unknown names say "did you mean"
 *   run now    enqueues one job into the schedule's queue, tagged with the schedule, paused or not
 *   remove     removes it (its jobs stay); a second remove is ENOTFOUND
 *   holder     nobody before start; the started engine after; nobody again after a clean close
 *   --queues   scheduling stays global (docs/SCHEDULES.md): an engine serving only queue a holds
 *              the lease and enqueues queue b's schedule, one job per occurrence, which waits for
 *              an engine serving b; with engines serving a and b side by side, still one key per
 *              occurrence
 * NULL engines and names are refused with EINVAL, never a crash. KVM is required (fail, never
 * skip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_TMP_PREFIX "aspen-engine-schedule"
#include "test_support.h"

static aspen_engine *engine(int workers, const char *const *queues, size_t n_queues)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.queues = queues;
    cfg.n_queues = n_queues;
    return open_cfg(&cfg);
}

static aspen_store *store(void)
{
    return test_store();
}

static size_t count_schedules(aspen_engine *eng)
{
    aspen_store_schedule *l = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_schedules(eng, &l, &n, &err), 0);
    aspen_store_schedules_free(l, n);
    return n;
}

/* add() must refuse (code) with a message containing `want`, and store nothing. */
static void refused(aspen_engine *eng, const aspen_engine_schedule_def *def,
                    const aspen_engine_job_spec *job, int code, const char *want)
{
    aspen_engine_error err = {0};
    int64_t id = -1;
    size_t before = count_schedules(eng);
    int rc = aspen_engine_schedule_add(eng, def, job, &id, &err);
    if (rc != code || !strstr(err.msg, want))
        fail_msg("add %s '%s': got %d \"%s\", wanted %d with \"%s\"",
                 def && def->name ? def->name : "(null)", def && def->expr ? def->expr : "(null)",
                 rc, err.msg, code, want);
    assert_int_equal(id, -1); /* untouched on error */
    assert_int_equal(count_schedules(eng), before);
}

static void test_add_refuses(void **state)
{
    (void)state;
    aspen_engine *eng = engine(1, NULL, 0);
    aspen_engine_job_spec job = {.type = "echo", .payload = "{}"};
    aspen_engine_schedule_def ok = {.name = "nightly", .expr = "30 2 * * *"};
    aspen_engine_error err = {0};
    int64_t id = 0;

    assert_int_equal(aspen_engine_schedule_add(NULL, &ok, &job, &id, &err), ASPEN_ENGINE_EINVAL);
    refused(eng, NULL, &job, ASPEN_ENGINE_EINVAL, "NULL");
    refused(eng, &ok, NULL, ASPEN_ENGINE_EINVAL, "NULL");

    aspen_engine_job_spec timed = job;
    timed.run_at_ms = aspen_store_now_ms() + 60000;
    refused(eng, &ok, &timed, ASPEN_ENGINE_EINVAL, "run time");

    aspen_engine_schedule_def d = ok;
    d.expr = NULL;
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "no cron expression");
    d.expr = "61 * * * *";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "minute");
    d.expr = "0 0 * * * *";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "5 fields");
    d.expr = "@every 0s";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "@every");
    d.expr = "\x01\xff garbage";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "");

    d = ok;
    d.tz = "Mars/Olympus_Mons";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "Mars/Olympus_Mons");
    d.tz = "../../etc/passwd";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "");

    d = ok;
    d.name = NULL;
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "name");
    d.name = "has space";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "name");
    char longname[200];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    d.name = longname;
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "name");

    d = ok;
    d.missed = (aspen_store_missed)7;
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "missed policy");
    d = ok;
    d.grace_ms = -1;
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "grace");
    d = ok;
    d.queue = "no spaces please";
    refused(eng, &d, &job, ASPEN_ENGINE_EINVAL, "");

    aspen_engine_job_spec bad = job;
    bad.payload = "{\"a\":";
    refused(eng, &ok, &bad, ASPEN_ENGINE_EPAYLOAD, "");
    bad = (aspen_engine_job_spec){.guest = "no-such-guest-anywhere", .payload = "{}"};
    refused(eng, &ok, &bad, ASPEN_ENGINE_EBINARY, "no-such-guest-anywhere");
    bad = (aspen_engine_job_spec){.guest = "echo-worker", .binary_sha256 = "00", .payload = "{}"};
    refused(eng, &ok, &bad, ASPEN_ENGINE_EINVAL, "one way only");

    /* the template's queue and the schedule's: the same or one of them, never two */
    aspen_engine_job_spec qjob = job;
    qjob.queue = "emails";
    d = ok;
    d.queue = "reports";
    refused(eng, &d, &qjob, ASPEN_ENGINE_EINVAL, "emails");

    /* a good one, then its name again */
    assert_int_equal(aspen_engine_schedule_add(eng, &ok, &job, &id, &err), 0);
    assert_true(id > 0);
    refused(eng, &ok, &job, ASPEN_ENGINE_EINVAL, "nightly");
    d = ok;
    d.replace = true;
    d.expr = "@hourly";
    int64_t id2 = 0;
    assert_int_equal(aspen_engine_schedule_add(eng, &d, &job, &id2, &err), 0);
    assert_int_equal(id2, id);
    assert_int_equal(count_schedules(eng), 1);
    /* id_out may be NULL */
    d = ok;
    d.name = "second";
    assert_int_equal(aspen_engine_schedule_add(eng, &d, &job, NULL, &err), 0);
    assert_int_equal(count_schedules(eng), 2);
    aspen_engine_close(eng);
}

static void test_list_pause_run_remove(void **state)
{
    (void)state;
    aspen_engine *eng = engine(1, NULL, 0);
    aspen_engine_error err = {0};
    const char *tags[] = {"team:ops"};
    aspen_engine_job_spec job = {.type = "echo", .payload = "{\"n\":1}", .priority = 3,
                                 .max_attempts = 2, .timeout_ms = 4321, .tags = tags,
                                 .n_tags = 1, .queue = "reports"};
    /* the template's queue serves as the schedule's when the definition names none */
    aspen_engine_schedule_def def = {.name = "report.daily", .expr = "0 6 * * 1-5",
                                     .tz = "Europe/Berlin", .missed = ASPEN_STORE_MISSED_ONCE,
                                     .grace_ms = 5000};
    int64_t id = 0, t0 = aspen_store_now_ms();
    assert_int_equal(aspen_engine_schedule_add(eng, &def, &job, &id, &err), 0);

    aspen_store_schedule *l = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_schedules(eng, NULL, &n, &err), ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedules(eng, &l, NULL, &err), ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedules(NULL, &l, &n, &err), ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedules(eng, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].id, id);
    assert_string_equal(l[0].name, "report.daily");
    assert_string_equal(l[0].expr, "0 6 * * 1-5");
    assert_string_equal(l[0].tz, "Europe/Berlin");
    assert_non_null(l[0].queue);
    assert_string_equal(l[0].queue, "reports");
    assert_int_equal(l[0].missed, ASPEN_STORE_MISSED_ONCE);
    assert_int_equal(l[0].grace_ms, 5000);
    assert_false(l[0].paused);
    assert_string_equal(l[0].type, "echo");
    assert_string_equal(l[0].payload, "{\"n\":1}");
    assert_int_equal(l[0].priority, 3);
    assert_int_equal(l[0].max_attempts, 2);
    assert_int_equal(l[0].timeout_ms, 4321);
    assert_non_null(strstr(l[0].tags, "team:ops"));
    assert_true(l[0].next_run_ms > t0);
    assert_true(l[0].next_run_ms <= t0 + 4 * 86400000LL); /* a weekday at 06:00 within 4 days */
    assert_int_equal(l[0].runs, 0);
    assert_int_equal(l[0].last_job_id, 0);
    assert_null(l[0].error);
    aspen_store_schedules_free(l, n);

    /* pause / resume */
    assert_int_equal(aspen_engine_schedule_set_paused(eng, "report.daily", true, &err), 0);
    assert_int_equal(aspen_engine_schedules(eng, &l, &n, &err), 0);
    assert_true(l[0].paused);
    aspen_store_schedules_free(l, n);
    assert_int_equal(aspen_engine_schedule_set_paused(eng, "report.dialy", false, &err),
                     ASPEN_ENGINE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "did you mean report.daily"));
    assert_int_equal(aspen_engine_schedule_set_paused(eng, NULL, false, &err),
                     ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedule_set_paused(NULL, "report.daily", false, &err),
                     ASPEN_ENGINE_EINVAL);

    /* run now works on a paused schedule and enqueues into its queue, tagged with it */
    int64_t job_id = 0;
    assert_int_equal(aspen_engine_schedule_run_now(eng, "report.daily", &job_id, &err), 0);
    assert_true(job_id > 0);
    aspen_store_job j = {0};
    assert_int_equal(aspen_engine_get(eng, job_id, &j, &err), 0);
    assert_string_equal(j.queue, "reports");
    assert_string_equal(j.type, "echo");
    assert_non_null(strstr(j.tags, "team:ops"));
    assert_non_null(strstr(j.tags, "report.daily"));
    assert_int_equal(j.max_attempts, 2);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_engine_schedule_run_now(eng, "nope", &job_id, &err),
                     ASPEN_ENGINE_ENOTFOUND);
    assert_int_equal(aspen_engine_schedule_run_now(eng, NULL, &job_id, &err), ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedule_run_now(NULL, "report.daily", &job_id, &err),
                     ASPEN_ENGINE_EINVAL);
    /* again while that job waits: no second job, the same one said to be it */
    assert_int_equal(aspen_engine_schedule_run_now(eng, "report.daily", NULL, &err), 0);
    aspen_store_submitted again = {0};
    assert_int_equal(aspen_engine_schedule_run_now_ex(eng, "report.daily", &again, &err), 0);
    assert_true(again.duplicate);
    assert_int_equal(again.id, job_id);

    assert_int_equal(aspen_engine_schedule_set_paused(eng, "report.daily", false, &err), 0);
    assert_int_equal(aspen_engine_schedules(eng, &l, &n, &err), 0);
    assert_false(l[0].paused);
    assert_true(l[0].next_run_ms > t0);
    assert_int_equal(l[0].runs, 1); /* the second run-now was the first job */
    aspen_store_schedules_free(l, n);

    /* remove: the schedule goes, its jobs stay */
    assert_int_equal(aspen_engine_schedule_remove(eng, NULL, &err), ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedule_remove(NULL, "report.daily", &err),
                     ASPEN_ENGINE_EINVAL);
    assert_int_equal(aspen_engine_schedule_remove(eng, "report.daily", &err), 0);
    assert_int_equal(count_schedules(eng), 0);
    assert_int_equal(aspen_engine_schedule_remove(eng, "report.daily", &err),
                     ASPEN_ENGINE_ENOTFOUND);
    assert_int_equal(aspen_engine_get(eng, job_id, &j, &err), 0);
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
}

static void test_holder(void **state)
{
    (void)state;
    aspen_engine_error err = {0};
    int64_t who = -1, until = -1;
    assert_int_equal(aspen_engine_scheduler_holder(NULL, &who, &until, &err), ASPEN_ENGINE_EINVAL);
    aspen_engine *eng = engine(1, NULL, 0);
    assert_int_equal(aspen_engine_scheduler_holder(eng, &who, &until, &err), 0);
    assert_int_equal(who, 0);
    assert_int_equal(aspen_engine_scheduler_holder(eng, NULL, NULL, &err), 0);
    start(eng);
    int64_t deadline = now_ms() + 10000;
    while (who != aspen_engine_id(eng) && now_ms() < deadline) {
        assert_int_equal(aspen_engine_scheduler_holder(eng, &who, &until, &err), 0);
        sleep_ms(20);
    }
    assert_true(aspen_engine_id(eng) > 0);
    assert_int_equal(who, aspen_engine_id(eng));
    assert_true(until > aspen_store_now_ms());
    aspen_engine_close(eng);
    /* a clean close gives the lease back at once */
    aspen_store *s = store();
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_scheduler_holder(s, &who, &until, &e), 0);
    assert_int_equal(who, 0);
    aspen_store_close(s);
}

static int64_t count_state(aspen_store *s, const char *q, aspen_store_state st)
{
    return test_count_state(s, q, st);
}

/* Every occurrence key of schedule `name` is a distinct time with its own job. */
static size_t distinct_runs(aspen_store *s, const char *name)
{
    aspen_store_schedule_run *r = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_schedule_runs(s, name, 0, &r, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++) {
            assert_true(r[i].occurrence_ms != r[k].occurrence_ms || r[i].manual != r[k].manual);
            assert_true(r[i].job_id != r[k].job_id);
        }
    aspen_store_schedule_runs_free(r);
    return n;
}

static void test_queues_scheduling_is_global(void **state)
{
    (void)state;
    const char *only_a[] = {"a"}, *only_b[] = {"b"};
    aspen_engine *ea = engine(1, only_a, 1);
    aspen_engine_error err = {0};
    aspen_engine_job_spec job = {.type = "echo", .payload = "{}"};
    aspen_engine_schedule_def def = {.name = "for-b", .expr = "@every 1s", .queue = "b"};
    assert_int_equal(aspen_engine_schedule_add(ea, &def, &job, NULL, &err), 0);
    start(ea);
    aspen_store *s = store();
    /* an engine that serves only a still enqueues b's occurrences; none of them runs here */
    int64_t deadline = now_ms() + 15000;
    while (count_state(s, "b", ASPEN_STORE_QUEUED) < 2 && now_ms() < deadline)
        sleep_ms(50);
    assert_true(count_state(s, "b", ASPEN_STORE_QUEUED) >= 2);
    assert_int_equal(count_state(s, "b", ASPEN_STORE_SUCCEEDED), 0);
    int64_t who = 0;
    assert_int_equal(aspen_engine_scheduler_holder(ea, &who, NULL, &err), 0);
    assert_int_equal(who, aspen_engine_id(ea));

    /* an engine serving b beside it: b's jobs run; the two still make one key per occurrence */
    aspen_engine *eb = engine(1, only_b, 1);
    start(eb);
    sleep_ms(3000);
    aspen_engine_close(ea); /* the lease moves to eb, which goes on enqueueing */
    int64_t before = distinct_runs(s, "for-b");
    deadline = now_ms() + 15000;
    /* and until eb has run two of b's jobs (asserted below), not for a fixed time of it */
    while (((int64_t)distinct_runs(s, "for-b") < before + 2 ||
            count_state(s, "b", ASPEN_STORE_SUCCEEDED) < 2) &&
           now_ms() < deadline)
        sleep_ms(50);
    assert_int_equal(aspen_engine_scheduler_holder(eb, &who, NULL, &err), 0);
    assert_int_equal(who, aspen_engine_id(eb));
    aspen_engine_close(eb);
    size_t keys = distinct_runs(s, "for-b");
    assert_true((int64_t)keys >= before + 2);
    aspen_store_filter f = {.queue = "b"};
    int64_t jobs = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_count(s, &f, &jobs, &e), 0);
    print_message("@every 1s of queue b: %zu occurrence keys, %lld jobs, %lld succeeded\n", keys,
                  (long long)jobs, (long long)count_state(s, "b", ASPEN_STORE_SUCCEEDED));
    assert_int_equal(jobs, (int64_t)keys); /* one job per occurrence, none twice */
    assert_true(count_state(s, "b", ASPEN_STORE_SUCCEEDED) >= 2);
    aspen_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pause_run_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_scheduling_is_global, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
