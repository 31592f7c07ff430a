/* tests/engine/test_support.h — what the engine test programs share: a monotonic clock in ms, a
 * sleep, a fresh temporary directory (g_dir) with a database path in it (g_db) per test, and —
 * when included after cmocka.h and aspen_engine.h — open, start and submit that print the engine's
 * message and fail the test on error. Define TEST_TMP_PREFIX before including to name the
 * directories. */
#ifndef ASPEN_TEST_SUPPORT_H
#define ASPEN_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef TEST_TMP_PREFIX
#define TEST_TMP_PREFIX "aspen-engine-test"
#endif

static char g_dir[256], g_db[300];

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/" TEST_TMP_PREFIX "-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_db, sizeof g_db, "%s/t.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#ifdef ASPEN_ENGINE_H
/* Each test program picks its own configuration; opening it is the same everywhere. */
static inline aspen_engine *open_cfg(const aspen_engine_config *cfg)
{
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    int rc = aspen_engine_open(cfg, &eng, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return eng;
}

static inline void start(aspen_engine *eng)
{
    aspen_engine_error err = {0};
    int rc = aspen_engine_start(eng, &err);
    if (rc)
        fprintf(stderr, "start: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static inline int64_t submit(aspen_engine *eng, const aspen_engine_job_spec *spec)
{
    int64_t id = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_submit(eng, spec, &id, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(id > 0);
    return id;
}
#endif

#endif
