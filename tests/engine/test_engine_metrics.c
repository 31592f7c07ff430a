/* test_engine_metrics.c — the engine writes the metrics history (issue 9) from what it ran, on
 * both backends (engine_test_engine_metrics_pg): real VM jobs, sleeps of a known length, a
 * timeout and a job no handler takes land in per-minute rollups of their type and guest with the
 * right counts, exits, run times and queue waits; a running engine writes them within its flush
 * interval, without stopping; a second engine on the same database (a restart) adds its own rows
 * and the history holds both; rollups past the retention are pruned by a running engine while
 * newer ones stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aspen_engine.h"
#define TEST_TMP_PREFIX "aspen-engine-metrics"
#include "test_support.h"

#define QUIET GUEST_DIR "/test-quiet-echo"
#define SPIN GUEST_DIR "/test-spin"

static aspen_engine *open_eng(int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.guest_dir = GUEST_DIR;
    return open_cfg(&cfg);
}

static void wait_idle(aspen_engine *eng)
{
    aspen_engine_error err = {0};
    int rc = aspen_engine_wait_idle(eng, 120000, true, &err);
    if (rc)
        fail_msg("wait_idle: %d %s", rc, err.msg);
}

/* Every rollup around now, one point per (type, guest). */
static aspen_store_rollup *read_by_guest(size_t *n)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    aspen_store_options ro = {.read_only = true};
    if (aspen_store_open(g_db, &ro, &s, &e) != 0)
        fail_msg("open: %s", e.msg);
    int64_t m = aspen_store_now_ms() / 60000;
    aspen_store_metrics_query q = {.from_minute = m - 30, .to_minute = m + 1, .step_minutes = 60,
                                   .by_guest = true};
    aspen_store_rollup *pts = NULL;
    if (aspen_store_metrics(s, &q, &pts, n, &e) != 0)
        fail_msg("metrics: %s", e.msg);
    aspen_store_close(s);
    return pts;
}

static const aspen_store_rollup *find(const aspen_store_rollup *pts, size_t n, const char *type,
                                      const char *guest)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pts[i].type, type) == 0 && strcmp(pts[i].guest, guest) == 0)
            return &pts[i];
    return NULL;
}

static void test_rollups_of_what_ran(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    start(eng);
    for (int i = 0; i < 20; i++) {
        aspen_engine_job_spec s = {.guest = QUIET, .payload = "{}"};
        submit(eng, &s);
    }
    for (int i = 0; i < 4; i++) {
        aspen_engine_job_spec s = {.type = "sleep", .payload = "{\"ms\": 40}"};
        submit(eng, &s);
    }
    aspen_engine_job_spec spin = {.guest = SPIN, .timeout_ms = 200, .max_attempts = 1};
    submit(eng, &spin);
    aspen_engine_job_spec none = {.type = "no-such-handler", .max_attempts = 1};
    submit(eng, &none);
    wait_idle(eng);
    aspen_engine_close(eng); /* the last rollups are written as it stops */

    size_t n = 0;
    aspen_store_rollup *pts = read_by_guest(&n);
    const aspen_store_rollup *q = find(pts, n, "vm_execute", "test-quiet-echo");
    assert_non_null(q);
    assert_int_equal(q->finished, 20);
    assert_int_equal(q->succeeded, 20);
    assert_int_equal(q->failed, 0);
    assert_true(q->exits >= 20); /* one exit per job at least */
    assert_int_equal(q->run_us.n, 20);
    assert_int_equal(q->wait_us.n, 20);
    const aspen_store_rollup *sl = find(pts, n, "sleep", "");
    assert_non_null(sl);
    assert_int_equal(sl->finished, 4);
    uint64_t p50 = aspen_store_hist_percentile(&sl->run_us, 50);
    assert_true(p50 >= 40000 * 15 / 16); /* a 40 ms sleep takes at least 40 ms */
    assert_true(sl->run_us_sum >= 4 * 40000);
    const aspen_store_rollup *sp = find(pts, n, "vm_execute", "test-spin");
    assert_non_null(sp);
    assert_int_equal(sp->finished, 1);
    assert_int_equal(sp->timeouts, 1);
    assert_int_equal(sp->failed, 1);
    assert_int_equal(sp->succeeded, 0);
    const aspen_store_rollup *nh = find(pts, n, "no-such-handler", "");
    assert_non_null(nh);
    assert_int_equal(nh->failed, 1);
    free(pts);
}

static void test_written_while_running(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    start(eng);
    for (int i = 0; i < 3; i++) {
        aspen_engine_job_spec s = {.type = "echo", .payload = "{\"x\": 1}"};
        submit(eng, &s);
    }
    wait_idle(eng);
    /* the engine keeps running: its rollups reach the store within its flush interval (5 s) */
    int64_t t0 = now_ms();
    const aspen_store_rollup *e = NULL;
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    while (now_ms() - t0 < 20000) {
        free(pts);
        pts = read_by_guest(&n);
        e = find(pts, n, "echo", "");
        if (e && e->finished == 3)
            break;
        sleep_ms(200);
    }
    assert_non_null(e);
    assert_int_equal(e->finished, 3);
    assert_true(now_ms() - t0 < 12000);
    free(pts);
    aspen_engine_close(eng);
}

static void test_second_engine_adds(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        aspen_engine *eng = open_eng(1);
        start(eng);
        for (int i = 0; i < 5 + round; i++) {
            aspen_engine_job_spec s = {.type = "echo", .payload = "{}"};
            submit(eng, &s);
        }
        wait_idle(eng);
        aspen_engine_close(eng);
    }
    size_t n = 0;
    aspen_store_rollup *pts = read_by_guest(&n);
    const aspen_store_rollup *e = find(pts, n, "echo", "");
    assert_non_null(e);
    assert_int_equal(e->finished, 11); /* both engines' jobs, none twice */
    free(pts);
}

static void test_prunes_past_retention(void **state)
{
    (void)state;
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &e), 0);
    int64_t m = aspen_store_now_ms() / 60000, engine = 0;
    assert_int_equal(aspen_store_engine_register(s, 1, "old", 1, 0, &engine, &e), 0);
    assert_int_equal(aspen_store_metrics_set_retention(s, "2h", &e), 0);
    aspen_store_rollup *rows = calloc(3, sizeof *rows);
    const int64_t ages[] = {3 * 60, 2 * 60 + 1, 60}; /* minutes ago: two past 2 h, one not */
    for (int i = 0; i < 3; i++) {
        rows[i].minute = m - ages[i];
        rows[i].engine_id = engine;
        snprintf(rows[i].type, sizeof rows[i].type, "echo");
        rows[i].finished = 1;
    }
    assert_int_equal(aspen_store_metrics_write(s, rows, 3, &e), 0);
    free(rows);
    aspen_engine *eng = open_eng(1);
    start(eng);
    aspen_store_metrics_query q = {.from_minute = m - 4 * 60, .to_minute = m, .step_minutes = 300};
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    int64_t t0 = now_ms();
    uint64_t left = 0;
    while (now_ms() - t0 < 15000) {
        assert_int_equal(aspen_store_metrics(s, &q, &pts, &n, &e), 0);
        left = pts[0].finished;
        free(pts);
        if (left == 1)
            break;
        sleep_ms(100);
    }
    assert_int_equal(left, 1); /* the one within the retention */
    aspen_engine_close(eng);
    aspen_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollups_of_what_ran, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_engine_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prunes_past_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
