/* tests/engine/test_support.h — what the engine test programs share: a monotonic clock in ms, a
 * sleep, a fresh temporary directory (g_dir) with a database path in it (g_db) per test — or,
 * when ctest runs a program as its _pg twin (ASPEN_TEST_BACKEND=postgres, ASPEN_PG_DIR: the
 * store's private test server), g_db is the conninfo of a fresh PostgreSQL database made for the
 * test (createdb by psql, dropped afterwards) — and —
 * when included after cmocka.h and aspen_engine.h — open, start and submit that print the engine's
 * message and fail the test on error. Define TEST_TMP_PREFIX before including to name the
 * directories. */
#ifndef ASPEN_TEST_SUPPORT_H
#define ASPEN_TEST_SUPPORT_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TEST_TMP_PREFIX
#define TEST_TMP_PREFIX "aspen-engine-test"
#endif

static char g_dir[256], g_db[1024], g_pg_admin[512], g_pg_name[64];

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
    g_pg_name[0] = '\0';
    const char *backend = getenv("ASPEN_TEST_BACKEND"), *pgdir = getenv("ASPEN_PG_DIR");
    if (!backend || strcmp(backend, "postgres") != 0)
        return 0;
    char path[600], cmd[1200];
    snprintf(path, sizeof path, "%s/conninfo", pgdir ? pgdir : "(ASPEN_PG_DIR unset)");
    FILE *fp = fopen(path, "r");
    if (!fp || !fgets(g_pg_admin, sizeof g_pg_admin, fp)) {
        fprintf(stderr, "%s is missing: the PostgreSQL test server is not running (ctest starts "
                        "it: fixture pg_server_start)\n", path);
        if (fp)
            fclose(fp);
        return -1;
    }
    fclose(fp);
    g_pg_admin[strcspn(g_pg_admin, "\n")] = '\0';
    static int seq;
    snprintf(g_pg_name, sizeof g_pg_name, "e_%d_%d", (int)getpid(), ++seq);
    snprintf(g_db, sizeof g_db, "%s dbname=%s", g_pg_admin, g_pg_name);
    snprintf(cmd, sizeof cmd, "psql -qX '%s' -c 'CREATE DATABASE %s'", g_pg_admin, g_pg_name);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_pg_name[0]) {
        char drop[1200];
        snprintf(drop, sizeof drop, "psql -qX '%s' -c 'DROP DATABASE IF EXISTS %s WITH (FORCE)'",
                 g_pg_admin, g_pg_name);
        if (system(drop) != 0)
            return -1;
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- disk-full tests: a child process with a small disk of its own -------------------------- */

/* A failed check in such a child: say what and where, and end the child (cmocka's jumps belong to
 * the parent). */
#define CHILD_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "disk-full child: " __VA_ARGS__);                                     \
            fprintf(stderr, " (line %d)\n", __LINE__);                                            \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* In the calling child: its own mount namespace (the tmpfs vanishes with the process) and a
 * 16 MiB tmpfs at g_dir/small, into dir; the database path on it into db. */
static inline void child_small_disk(char *dir, size_t dir_cap, char *db, size_t db_cap)
{
    snprintf(dir, dir_cap, "%s/small", g_dir);
    CHILD_CHECK(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0,
                "unshare(CLONE_NEWNS): %s (this test mounts a small tmpfs: run it as root)",
                strerror(errno));
    CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %s",
                strerror(errno));
    CHILD_CHECK(mount("tmpfs", dir, "tmpfs", 0, "size=16m") == 0, "mount tmpfs: %s",
                strerror(errno));
    snprintf(db, db_cap, "%s/t.db", dir);
}

/* Fills the file system holding dir: returns the filler's path in out. */
static inline int fill_disk(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/filler", dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    static char block[4096];
    memset(block, 'x', sizeof block);
    while (write(fd, block, sizeof block) > 0) {
    }
    int e = errno;
    close(fd);
    return e == ENOSPC ? 0 : -1;
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

/* The test's database through the store (g_db), for what the engine API does not show. */
static inline aspen_store *test_store(void)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(g_db, NULL, &s, &e) != 0)
        fail_msg("open %s: %s", g_db, e.msg);
    return s;
}

/* How many jobs of queue q (NULL: all queues) are in state st. */
static inline int64_t test_count_state(aspen_store *s, const char *q, aspen_store_state st)
{
    aspen_store_filter f = {.queue = q, .states = 1u << st};
    int64_t c = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_count(s, &f, &c, &e), 0);
    return c;
}

/* Runs child() in a forked process (before any engine thread exists in this one) and fails the
 * test unless it exits 0. */
static inline void run_in_child(int (*child)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

#endif
