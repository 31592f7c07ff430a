/* tests/engine/test_support.h — what both engine test programs need: a monotonic clock in ms, a
 * sleep, and a fresh temporary directory (g_dir) with a database path in it (g_db) per test.
 * Define TEST_TMP_PREFIX before including to name the directories. */
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

#endif
