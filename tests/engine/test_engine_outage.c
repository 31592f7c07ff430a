/* test_engine_outage.c — an outage every engine shared costs no reruns and no log lines (issue 8,
 * the new-user trial): two engines on one PostgreSQL database run jobs that log a tick every
 * 250 ms for 3 s; while they run, the test's own server is stopped as an administrator's restart
 * does (tests/store/pg_server.sh down: pg_ctl -m fast) for 10 s — twice the 5 s lease, so every
 * lease expires — and started again. The jobs finish during the outage. Afterwards, in the store:
 * every job succeeded once with exactly one attempt (none "recovered", none run twice), every tick
 * line of every job is there in order, no engine lost its lease or registered again, and each
 * engine said "reconnecting" and "reconnected". Before the fix the first engine back recovered
 * both engines (or its own commit recovered itself) and every finished job ran again, its lines
 * written during the outage gone.
 *
 * The partition case (one host cut off alone, rescued by another, its late results refused) is
 * test_engine_pg_hosts (network namespaces) and, per store call on both backends,
 * test_store_recovery. The server is the test's own: the fixture's is shared with other tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_store.h"

#define TEST_TMP_PREFIX "aspen-outage-test"
#include "test_support.h"

#include <pthread.h>

#define JOBS 4
#define TICKS 12
#define TICK_MS 250
#define OUTAGE_MS 10000

static char g_pgdir[400], g_conn[1024];

static int pg_server(const char *cmd)
{
    char line[1200];
    snprintf(line, sizeof line, "bash '%s' %s '%s' >/dev/null", PG_SERVER_SH, cmd, g_pgdir);
    return system(line);
}

/* Logs "tick N" every TICK_MS, TICKS times, then succeeds; stops early only when asked. */
static int h_ticker(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    for (int i = 0; i < TICKS; i++) {
        aspen_engine_ctx_log(ctx, "tick %d", i);
        for (int w = 0; w < TICK_MS; w += 5) {
            if (aspen_engine_ctx_should_stop(ctx))
                return aspen_engine_ctx_fail(ctx, false, "stopped at tick %d", i);
            sleep_ms(5);
        }
    }
    return 0;
}

/* What the engines said (engine messages), for the checks at the end. */
static pthread_mutex_t g_said_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_said[64 * 1024];

static void on_event(const aspen_engine_event *ev, void *user)
{
    if (ev->type != ASPEN_ENGINE_EV_ENGINE || !ev->message)
        return;
    pthread_mutex_lock(&g_said_mu);
    size_t used = strlen(g_said);
    snprintf(g_said + used, sizeof g_said - used, "engine %s: %s\n", (const char *)user,
             ev->message);
    pthread_mutex_unlock(&g_said_mu);
}

static int count_said(const char *what)
{
    pthread_mutex_lock(&g_said_mu);
    int n = 0;
    for (const char *p = g_said; (p = strstr(p, what)) != NULL; p++)
        n++;
    pthread_mutex_unlock(&g_said_mu);
    return n;
}

static aspen_engine *open_engine(const char *name)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_conn;
    cfg.workers = 2;
    cfg.no_builtin_handlers = true;
    aspen_engine *eng = open_cfg(&cfg);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_register_handler(eng, "ticker", h_ticker, NULL, &err), 0);
    assert_true(aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_ENGINE, on_event, (void *)name) > 0);
    return eng;
}

static int64_t count_state(aspen_store *s, aspen_store_state st)
{
    aspen_store_filter f = {.states = 1u << st};
    int64_t c = 0;
    aspen_store_error e = {0};
    if (aspen_store_count(s, &f, &c, &e) != 0)
        return -1; /* the server is away: not counted */
    return c;
}

static void test_shared_outage_no_rerun(void **state)
{
    (void)state;
    assert_int_equal(pg_server("start"), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/conninfo", g_pgdir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(g_conn, sizeof g_conn, fp));
    fclose(fp);
    g_conn[strcspn(g_conn, "\n")] = '\0';

    aspen_engine *a = open_engine("A"), *b = open_engine("B");
    int64_t ids[JOBS];
    for (int i = 0; i < JOBS; i++)
        ids[i] = submit(a, &(aspen_engine_job_spec){.type = "ticker", .timeout_ms = 120000});
    start(a);
    start(b);
    aspen_store *s = NULL;
    aspen_store_error oe = {0};
    if (aspen_store_open(g_conn, NULL, &s, &oe) != 0)
        fail_msg("open %s: %s", g_conn, oe.msg);
    /* Every job running, and a few ticks in: lines before the outage and during it. */
    int64_t until = now_ms() + 60000;
    while (count_state(s, ASPEN_STORE_RUNNING) < JOBS && now_ms() < until)
        sleep_ms(20);
    assert_int_equal(count_state(s, ASPEN_STORE_RUNNING), JOBS);
    sleep_ms(3 * TICK_MS);
    aspen_store_engine_info *engines = NULL;
    size_t n_eng = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engines(s, aspen_store_now_ms(), &engines, &n_eng, &e), 0);
    assert_int_equal(n_eng, 2);
    int64_t id_a = engines[0].id, id_b = engines[1].id;
    assert_true(engines[0].running > 0 && engines[1].running > 0); /* both engines had work */
    aspen_store_engines_free(engines);

    assert_int_equal(pg_server("down"), 0);
    int64_t down_at = now_ms();
    sleep_ms(OUTAGE_MS);
    assert_int_equal(pg_server("up"), 0);
    print_message("server away %lld ms\n", (long long)(now_ms() - down_at));

    until = now_ms() + 90000;
    while (count_state(s, ASPEN_STORE_SUCCEEDED) < JOBS && now_ms() < until)
        sleep_ms(50);
    if (count_state(s, ASPEN_STORE_SUCCEEDED) != JOBS)
        fprintf(stderr, "the engines said:\n%s", g_said);
    assert_int_equal(count_state(s, ASPEN_STORE_SUCCEEDED), JOBS);

    for (int i = 0; i < JOBS; i++) {
        aspen_store_attempt *at = NULL;
        size_t n = 0;
        assert_int_equal(aspen_store_attempts(s, ids[i], &at, &n, &e), 0);
        if (n != 1)
            fprintf(stderr, "job %lld: %zu attempts, the first %s (%s)\nthe engines said:\n%s",
                    (long long)ids[i], n, n ? at[0].outcome : "-",
                    n && at[0].error ? at[0].error : "", g_said);
        assert_int_equal(n, 1); /* no lost attempt, no rerun */
        assert_string_equal(at[0].outcome, "succeeded");
        assert_false(at[0].recovered);
        assert_true(at[0].engine_id == id_a || at[0].engine_id == id_b);
        aspen_store_attempts_free(at, n);
        aspen_store_log *lg = NULL;
        size_t nl = 0;
        assert_int_equal(aspen_store_logs(s, ids[i], 0, 0, &lg, &nl, &e), 0);
        if (nl != TICKS)
            for (size_t k = 0; k < nl; k++)
                fprintf(stderr, "job %lld line %zu: %s\n", (long long)ids[i], k, lg[k].line);
        assert_int_equal(nl, TICKS); /* every line kept, those written during the outage too */
        for (size_t k = 0; k < nl; k++) {
            char want[32];
            snprintf(want, sizeof want, "tick %zu", k);
            assert_string_equal(lg[k].line, want);
            assert_int_equal(lg[k].attempt, 1);
        }
        aspen_store_logs_free(lg, nl);
    }
    /* Nobody lost a lease: both engines kept their ids. */
    assert_int_equal(aspen_store_engines(s, aspen_store_now_ms(), &engines, &n_eng, &e), 0);
    assert_int_equal(n_eng, 2);
    assert_int_equal(engines[0].id, id_a);
    assert_int_equal(engines[1].id, id_b);
    aspen_store_engines_free(engines);
    assert_int_equal(count_said("lost its lease"), 0);
    assert_int_equal(count_said("registered again"), 0);
    assert_true(count_said("reconnecting to ") >= 2); /* each engine said it (the console too) */
    assert_true(count_said("reconnected to ") >= 2);
    aspen_store_close(s);
    aspen_engine_stop(a, 5000, NULL);
    aspen_engine_stop(b, 5000, NULL);
    aspen_engine_close(a);
    aspen_engine_close(b);
    pg_server("stop");
}

static int setup_dir(void **state)
{
    if (setup(state) != 0) /* g_dir, unused here but made and removed as in every engine test */
        return -1;
    snprintf(g_pgdir, sizeof g_pgdir, "/tmp/aspen-outage-pg-XXXXXX");
    if (!mkdtemp(g_pgdir))
        return -1;
    chmod(g_pgdir, 0755); /* as root the server runs as another user */
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    pg_server("stop");
    char cmd[500];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_pgdir);
    return system(cmd) == 0 && teardown(state) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shared_outage_no_rerun, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
