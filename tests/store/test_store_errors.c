/* test_store_errors.c — the failures a user can meet, each with a clear message and nothing lost:
 * missing directory, a path that is a directory, a missing file with no_create, a garbage file and
 * another program's SQLite file (both left byte-for-byte untouched), a schema newer than this
 * program, a full disk (simulated with max_page_count), a read-only handle, a malformed database
 * found by the check, and permission denied (as root, checked from a child running as nobody).
 * Also the lock wait's schedule (sqlite_busy.c): short sleeps first, the timeout kept exactly. */
#include "helpers.h"

#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sqlite_store.h"

static char *read_file(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
        n = 0;
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    fclose(fp);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_missing_directory(void **state)
{
    struct fixture *f = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/no/such/dir/aspen.db", f->dir);
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open(path, NULL, &s, &e), ASPEN_STORE_ENODIR);
    assert_int_equal(e.code, ASPEN_STORE_ENODIR);
    assert_null(s);
    char expect[400];
    snprintf(expect, sizeof expect, "database directory %s/no/such/dir does not exist: create it",
             f->dir);
    assert_non_null(strstr(e.msg, expect));
    assert_non_null(strstr(e.msg, "--db"));

    assert_int_equal(aspen_store_open(f->dir, NULL, &s, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "is a directory"));
    assert_int_equal(aspen_store_open("", NULL, &s, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_open(NULL, NULL, &s, &e), ASPEN_STORE_EINVAL);

    snprintf(path, sizeof path, "%s/absent.db", f->dir);
    aspen_store_options o = {.no_create = true};
    assert_int_equal(aspen_store_open(path, &o, &s, &e), ASPEN_STORE_ENOTFOUND);
    assert_false(exists(path));
    o = (aspen_store_options){.read_only = true};
    assert_int_equal(aspen_store_open(path, &o, &s, &e), ASPEN_STORE_ENOTFOUND);
    assert_false(exists(path));
}

static void test_garbage_file_untouched(void **state)
{
    struct fixture *f = *state;
    char path[400], wal[420];
    snprintf(path, sizeof path, "%s/garbage.db", f->dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)("this is not a database; "[i % 24] ^ (i / 24 % 7));
    write_file(path, junk, sizeof junk);
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open(path, NULL, &s, &e), ASPEN_STORE_ECORRUPT);
    assert_null(s);
    /* not an SQLite file: most likely the wrong path — the message says to check --db, and never
     * to move the file aside (the new-user trial was told `mv /etc/passwd /etc/passwd.bad`) */
    assert_non_null(strstr(e.msg, "is not an SQLite database"));
    assert_non_null(strstr(e.msg, "left untouched"));
    assert_non_null(strstr(e.msg, "check that --db"));
    assert_null(strstr(e.msg, "mv "));
    assert_null(strstr(e.msg, ".bad"));
    size_t n = 0;
    char *after = read_file(path, &n);
    assert_int_equal(n, sizeof junk);
    assert_memory_equal(after, junk, sizeof junk);
    free(after);
    assert_false(exists(wal));
    /* Again, read-only: same answer. */
    aspen_store_options o = {.read_only = true};
    assert_int_equal(aspen_store_open(path, &o, &s, &e), ASPEN_STORE_ECORRUPT);
}

static void test_foreign_sqlite_untouched(void **state)
{
    struct fixture *f = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/firefox.sqlite", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE bookmarks (url TEXT); INSERT INTO bookmarks VALUES ('x')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    size_t n0 = 0, n1 = 0;
    char *before = read_file(path, &n0);
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open(path, NULL, &s, &e), ASPEN_STORE_ECORRUPT);
    assert_non_null(strstr(e.msg, "not an Aspen one"));
    char *after = read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);

    /* Another program's application_id. */
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1234", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(aspen_store_open(path, NULL, &s, &e), ASPEN_STORE_ECORRUPT);
    assert_non_null(strstr(e.msg, "another program"));
}

static void test_schema_newer(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    f->s = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open(f->path, NULL, &f->s, &e), ASPEN_STORE_ENEWER);
    char expect[128];
    snprintf(expect, sizeof expect,
             "database schema version 99 is newer than this aspen (%d): upgrade aspen",
             ASPEN_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(e.msg, expect));
    assert_null(f->s);
    /* Untouched: the version is still 99. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 99);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_disk_full(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t keep = submit_job(f->s, "before", 0, 0, 3, T0);
    /* Cap the file at its current size plus a few pages: the next big batch cannot fit. */
    assert_int_equal(sqlite3_exec(sq(f->s)->db, "PRAGMA max_page_count = 40", NULL, NULL, NULL),
                     SQLITE_OK);
    static char payload[20000];
    memset(payload, 'x', sizeof payload - 10);
    memcpy(payload, "{\"pad\":\"", 8);
    strcpy(payload + sizeof payload - 11, "\"}");
    aspen_store_job_spec specs[50];
    for (int i = 0; i < 50; i++)
        specs[i] = (aspen_store_job_spec){.type = "big", .payload = payload};
    int64_t counts_before[ASPEN_STORE_STATE_COUNT], counts_after[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts_before, &e), 0);
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 50, T0, NULL, &e), ASPEN_STORE_EFULL);
    assert_non_null(strstr(e.msg, "disk full"));
    assert_non_null(strstr(e.msg, "rolled back"));
    assert_non_null(strstr(e.msg, "Free space"));
    /* Nothing half-written, nothing lost; work goes on once there is room. */
    assert_int_equal(aspen_store_counts(f->s, counts_after, &e), 0);
    assert_memory_equal(counts_before, counts_after, sizeof counts_before);
    assert_int_equal(state_of(f->s, keep), ASPEN_STORE_QUEUED);
    assert_int_equal(
        sqlite3_exec(sq(f->s)->db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 50, T0, NULL, &e), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

static void test_read_only(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "t", 0, 0, 3, T0);
    aspen_store_options o = {.read_only = true};
    aspen_store *ro = open_or_fail(f->path, &o);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(ro, id, &j, &e), 0);
    aspen_store_job_clear(&j);
    aspen_store_job_spec spec = {.type = "t"};
    assert_int_equal(aspen_store_submit(ro, &spec, T0, NULL, &e), ASPEN_STORE_EPERM);
    assert_non_null(strstr(e.msg, "read-only"));
    assert_int_equal(aspen_store_set_paused(ro, true, &e), ASPEN_STORE_EPERM);
    aspen_store_close(ro);
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    static aspen_store_job_spec specs[3000];
    for (int i = 0; i < 3000; i++)
        specs[i] = (aspen_store_job_spec){.type = "filler", .payload = "{\"some\":\"payload text\"}"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 3000, T0, NULL, &e), 0);
    aspen_store_close(f->s);
    f->s = NULL;
    /* Fold the WAL back into the file, then scribble over a page in the middle. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 0xa5, sizeof junk);
    for (int page = 5; page < 40; page += 3)
        assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)page * 4096), (ssize_t)sizeof junk);
    close(fd);
    aspen_store *s = NULL;
    int rc = aspen_store_open(f->path, NULL, &s, &e);
    if (rc == 0) {
        /* The header is fine; the damage shows on use or in the check. */
        int crc = aspen_store_check(s, &e);
        assert_int_equal(crc, ASPEN_STORE_ECORRUPT);
        assert_non_null(strstr(e.msg, "corrupt"));
        aspen_store_filter all = {.limit = -1};
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        rc = aspen_store_list(s, &all, &jobs, &n, &e);
        if (rc == 0)
            aspen_store_jobs_free(jobs, n);
        else
            assert_int_equal(rc, ASPEN_STORE_ECORRUPT);
        aspen_store_close(s);
    } else {
        assert_int_equal(rc, ASPEN_STORE_ECORRUPT);
    }
    assert_non_null(strstr(e.msg, "restore it from a backup"));
}

/* Permission denied. As root (CI), the open is tried from a child that drops to "nobody". */
static int open_code_as(uid_t uid, const char *path, const aspen_store_options *o, char *msg,
                        size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (uid != geteuid() && (setgid(uid) != 0 || setuid(uid) != 0))
            _exit(100);
        aspen_store *s = NULL;
        aspen_store_error e = {0};
        int rc = aspen_store_open(path, o, &s, &e);
        aspen_store_close(s);
        /* the code first (it does not fit an exit status), then the message */
        if (write(fds[1], &rc, sizeof rc) != (ssize_t)sizeof rc ||
            write(fds[1], e.msg, strlen(e.msg) + 1) < 0)
            _exit(101);
        _exit(0);
    }
    close(fds[1]);
    int rc = 1;
    assert_int_equal(read(fds[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    ssize_t got = read(fds[0], msg, size - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    return rc;
}

static void test_permission_denied(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    f->s = NULL;
    uid_t who = geteuid() == 0 ? 65534 : geteuid();
    char msg[600];
    /* A file we may not read. */
    assert_int_equal(chmod(f->dir, 0711), 0);
    assert_int_equal(chmod(f->path, 0), 0);
    assert_int_equal(open_code_as(who, f->path, NULL, msg, sizeof msg), ASPEN_STORE_EPERM);
    assert_non_null(strcasestr(msg, "permission denied"));
    assert_non_null(strstr(msg, "--db"));
    /* A directory we may not enter. */
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_int_equal(chmod(f->dir, 0700), 0);
    if (geteuid() == 0) {
        assert_int_equal(open_code_as(who, f->path, NULL, msg, sizeof msg), ASPEN_STORE_EPERM);
        assert_non_null(strstr(msg, "cannot reach database"));
        assert_non_null(strcasestr(msg, "permission denied"));
    }
    /* A directory we may not write in (SQLite needs -wal and -shm beside the file). */
    if (geteuid() == 0) {
        assert_int_equal(chmod(f->dir, 0755), 0);
        assert_int_equal(chmod(f->path, 0666), 0);
        assert_int_equal(open_code_as(who, f->path, NULL, msg, sizeof msg), ASPEN_STORE_EPERM);
        /* (If TMPDIR's parents are closed to nobody, the open fails earlier, as "cannot reach".) */
        assert_true(strstr(msg, "cannot write in directory") || strstr(msg, "cannot reach"));
    }
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(chmod(f->path, 0600), 0);
}

static void test_messages_of_codes(void **state)
{
    (void)state;
    /* store_err truncates safely and always sets the code. */
    aspen_store_error e = {0};
    char big[2000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(store_err(&e, ASPEN_STORE_EIO, "%s", big), ASPEN_STORE_EIO);
    assert_int_equal(e.code, ASPEN_STORE_EIO);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_int_equal(store_err(NULL, ASPEN_STORE_EINVAL, "x"), ASPEN_STORE_EINVAL);
}

/* The busy handler's schedule (sqlite_busy.c), as a pure function: no clock, no sleeping. */
static void test_busy_schedule(void **state)
{
    (void)state;
    const int64_t timeout = 5000 * 1000LL;
    /* a young wait: 50, 100, 200 µs, then 200 µs while it is under SQ_BUSY_FAST_US */
    assert_int_equal(sq_busy_delay_us(0, 0, timeout), SQ_BUSY_FIRST_US);
    assert_int_equal(sq_busy_delay_us(1, 50, timeout), 2 * SQ_BUSY_FIRST_US);
    assert_int_equal(sq_busy_delay_us(2, 150, timeout), SQ_BUSY_STEP_US);
    assert_int_equal(sq_busy_delay_us(40, 10000, timeout), SQ_BUSY_STEP_US);
    assert_int_equal(sq_busy_delay_us(INT_MAX, SQ_BUSY_FAST_US - 1, timeout), SQ_BUSY_STEP_US);
    /* an old one: a quarter of the wait so far, at most SQ_BUSY_MAX_US */
    assert_int_equal(sq_busy_delay_us(130, SQ_BUSY_FAST_US, timeout), SQ_BUSY_FAST_US / 4);
    assert_int_equal(sq_busy_delay_us(150, 100000, timeout), 25000);
    assert_int_equal(sq_busy_delay_us(200, 1000000, timeout), SQ_BUSY_MAX_US);
    /* the last sleep ends at the timeout; at or past it (or with none), give up */
    assert_int_equal(sq_busy_delay_us(300, timeout - 7, timeout), 7);
    assert_int_equal(sq_busy_delay_us(301, timeout, timeout), -1);
    assert_int_equal(sq_busy_delay_us(301, timeout + 1, timeout), -1);
    assert_int_equal(sq_busy_delay_us(0, 0, 0), -1);
    assert_int_equal(sq_busy_delay_us(0, 0, 30), 30); /* a timeout shorter than one sleep */
    /* hostile arguments: never a negative or runaway sleep */
    assert_int_equal(sq_busy_delay_us(-1, 0, timeout), -1);
    assert_int_equal(sq_busy_delay_us(0, -5, timeout), -1);
    assert_int_equal(sq_busy_delay_us(0, 0, -1), -1);
    assert_int_equal(sq_busy_delay_us(0, INT64_MAX - 1, INT64_MAX), 1);
    /* a whole wait, each sleep taken exactly: the sleeps add up to the timeout, none is empty,
     * the first SQ_BUSY_FAST_US go in short ones, and it gives up right at the end */
    int64_t waited = 0;
    int tries = 0, short_tries = 0;
    for (;;) {
        int64_t d = sq_busy_delay_us(tries, waited, timeout);
        if (d < 0)
            break;
        assert_true(d > 0);
        assert_true(d <= SQ_BUSY_MAX_US);
        if (waited < SQ_BUSY_FAST_US) {
            assert_true(d <= SQ_BUSY_STEP_US);
            short_tries++;
        }
        waited += d;
        tries++;
        assert_true(tries < 100000);
    }
    assert_int_equal(waited, timeout);
    assert_true(short_tries >= SQ_BUSY_FAST_US / SQ_BUSY_STEP_US);
    /* past the young part it backs off: a 5 s wait is not 25,000 polls */
    assert_true(tries - short_tries < 200);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_missing_directory),
        T(test_garbage_file_untouched),
        T(test_foreign_sqlite_untouched),
        T(test_schema_newer),
        T(test_disk_full),
        T(test_read_only),
        T(test_malformed),
        T(test_permission_denied),
        cmocka_unit_test(test_messages_of_codes),
        cmocka_unit_test(test_busy_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
