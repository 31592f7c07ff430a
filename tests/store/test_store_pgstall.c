/* test_store_pgstall.c — the PostgreSQL store against a server that stops answering without
 * closing the connection (its processes SIGSTOPped: as a paused VM or a network path that drops
 * packets without a reset looks to the client). libpq's calls waited for such a server forever:
 * keepalives do not run while a request is outstanding, and on loopback a stopped server's kernel
 * still acknowledges. Now every wait is bounded by the answer deadline (statement_timeout + 2 s;
 * here statement_timeout is 1 s, set the way a user sets it: options=-c statement_timeout=1000):
 *
 *   inside a transaction, a statement the server does not answer fails within the deadline
 *     (plus slack) with "has not answered for ..." and the connection is closed; a COMMIT whose
 *     answer never came is reported as an unknown outcome, and indeed it commits once the server
 *     runs again (the COMMIT was in its socket);
 *   outside one, the call fails after the deadline and one reconnect window, disconnected, and
 *     once the server is continued the same handle reconnects; a job completed meanwhile is
 *     completed exactly once (the completion retried after the failure);
 *   a handle whose owner gives up (aspen_store_options.give_up) ends a wait on the stopped server
 *     within about half a second of the flag, and its later calls fail at once;
 *   the server cancels a statement longer than statement_timeout itself (a clear EBUSY naming
 *     the setting, the connection kept); without a user setting the session gets 30 s.
 *
 * The server is the test's own (tests/store/pg_server.sh in a scratch directory): only its
 * postmaster (DIR/data/postmaster.pid) and that postmaster's children are ever stopped. */
#include "helpers.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#include "pg_store.h" /* white box: transactions, the session's deadline */

static char g_dir[] = "/tmp/aspen-pgstall-XXXXXX";
static char g_info[700];  /* the private server's conninfo with the short statement_timeout */
static char g_admin[600]; /* the same without it, for checks from outside */
static pid_t g_stopped[256];
static size_t g_n_stopped;

static void pg_server(const char *cmd)
{
    char line[1200];
    snprintf(line, sizeof line, "bash '%s' %s '%s' >/dev/null", ASPEN_PG_SERVER_SH, cmd, g_dir);
    if (system(line) != 0)
        fail_msg("%s failed", line);
}

static void read_line(const char *path, char *out, size_t size)
{
    FILE *fp = fopen(path, "r");
    if (!fp || !fgets(out, (int)size, fp))
        fail_msg("cannot read %s", path);
    fclose(fp);
    out[strcspn(out, "\n")] = '\0';
}

/* The private server's postmaster: the first line of its postmaster.pid (the data directory is
 * the first line of DIR/state, tests/store/pg_server.sh). */
static pid_t postmaster_pid(void)
{
    char path[400], data[300], line[64];
    snprintf(path, sizeof path, "%s/state", g_dir);
    read_line(path, data, sizeof data);
    snprintf(path, sizeof path, "%s/postmaster.pid", data);
    read_line(path, line, sizeof line);
    pid_t pid = (pid_t)strtol(line, NULL, 10);
    if (pid <= 1)
        fail_msg("no postmaster pid in %s", path);
    return pid;
}

/* The parent of pid (from /proc/PID/stat: the field after the command's closing parenthesis). */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    char state;
    int ppid = 0;
    if (!close || sscanf(close + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return (pid_t)ppid;
}

/* A call that never returns (the bug this file is about) must fail the test, not hang it until
 * ctest kills it with the server still stopped: after 30 s the alarm continues the server and
 * exits. */
static void stuck(int sig)
{
    (void)sig;
    for (size_t i = g_n_stopped; i-- > 0;)
        kill(g_stopped[i], SIGCONT);
    static const char msg[] = "FAIL: a store call still waits 30 s after the server was stopped\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

/* SIGSTOPs this test's server: its postmaster first (so it starts no one), then each child. */
static void server_pause(void)
{
    signal(SIGALRM, stuck);
    alarm(30);
    pid_t pm = postmaster_pid();
    g_n_stopped = 0;
    assert_int_equal(kill(pm, SIGSTOP), 0);
    g_stopped[g_n_stopped++] = pm;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && g_n_stopped < sizeof g_stopped / sizeof g_stopped[0]) {
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid > 1 && parent_of(pid) == pm && kill(pid, SIGSTOP) == 0)
            g_stopped[g_n_stopped++] = pid;
    }
    closedir(d);
    assert_true(g_n_stopped > 1); /* a backend at least: the store's own connection */
}

/* SIGCONTs what server_pause stopped: the children, then the postmaster. */
static void server_resume(void)
{
    alarm(0);
    for (size_t i = g_n_stopped; i-- > 0;)
        kill(g_stopped[i], SIGCONT);
    g_n_stopped = 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    chmod(g_dir, 0755); /* the server may run as another user (root: postgres) */
    pg_server("start");
    char path[300];
    snprintf(path, sizeof path, "%s/conninfo", g_dir);
    read_line(path, g_admin, sizeof g_admin);
    /* statement_timeout as a user sets it (libpq's options), connect_timeout short: the
     * deadline is 1 s + 2 s, a reconnect attempt to the stopped server gives up after 2 s */
    snprintf(g_info, sizeof g_info, "%s options='-c statement_timeout=1000' connect_timeout=2",
             g_admin);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    server_resume(); /* a failed test may have left it stopped */
    pg_server("stop");
    rmdir(g_dir);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void expect_msg(const aspen_store_error *e, const char *a)
{
    if (!strstr(e->msg, a))
        fail_msg("message lacks '%s': %s", a, e->msg);
}

static int64_t admin_int(const char *sql)
{
    PGconn *c = PQconnectdb(g_admin);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(g_admin);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The session's statement_timeout and the deadline that follows; without a user setting, 30 s.
 * A statement longer than statement_timeout is cancelled by the server itself: EBUSY naming the
 * setting, not an outage, and the connection stays. */
static void test_statement_timeout(void **state)
{
    (void)state;
    aspen_store *d = open_or_fail(g_admin, NULL);
    assert_int_equal(pgs(d)->statement_timeout_ms, PG_STATEMENT_TIMEOUT_MS);
    assert_int_equal(pgs(d)->answer_ms, PG_STATEMENT_TIMEOUT_MS + PG_ANSWER_MARGIN_MS);
    aspen_store_error e = {0};
    PGresult *r = pg_exec(pgs(d), NULL, "SHOW statement_timeout", NULL, "reading a setting", &e);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "30s");
    PQclear(r);
    aspen_store_close(d);

    aspen_store *s = open_or_fail(g_info, NULL);
    assert_int_equal(pgs(s)->statement_timeout_ms, 1000);
    assert_int_equal(pgs(s)->answer_ms, 1000 + PG_ANSWER_MARGIN_MS);
    int64_t t = now_ms();
    r = pg_exec(pgs(s), NULL, "SELECT pg_sleep(5)", NULL, "sleeping", &e);
    int64_t took = now_ms() - t;
    assert_null(r);
    assert_int_equal(e.code, ASPEN_STORE_EBUSY);
    assert_false(e.disconnected);
    expect_msg(&e, "statement_timeout");
    if (took > 2500)
        fail_msg("the server's cancel took %lld ms", (long long)took);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(pgs(s)->reconnects, 0); /* the same connection */
    aspen_store_close(s);
}

/* Inside a transaction: the statement the stopped server never answers fails after the deadline,
 * the connection closed, nothing reconnected behind the transaction's back. */
static void test_stall_in_transaction(void **state)
{
    (void)state;
    aspen_store *s = open_or_fail(g_info, NULL);
    struct pg_store *p = pgs(s);
    aspen_store_error e = {0};
    assert_int_equal(pg_tx_begin(p, &e), 0);
    server_pause();
    int64_t t = now_ms();
    PGresult *r = pg_exec(p, NULL, "SELECT count(*) FROM jobs", NULL, "counting jobs", &e);
    int64_t took = now_ms() - t;
    server_resume();
    assert_null(r);
    assert_int_equal(e.code, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    expect_msg(&e, "has not answered for 3.");
    expect_msg(&e, "server stopped or network path lost");
    expect_msg(&e, "while counting jobs");
    expect_msg(&e, "the transaction was not committed");
    if (took < 2900 || took > 4500)
        fail_msg("gave up after %lld ms, want the 3 s deadline", (long long)took);
    assert_false(p->in_tx);
    pg_tx_rollback(p); /* what a caller does after a failed statement: harmless now */
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0); /* reconnects */
    assert_int_equal(p->reconnects, 1);
    aspen_store_close(s);
}

/* A COMMIT whose answer never came: "not known whether it committed" — and it did, once the
 * server ran again (the COMMIT was waiting in its socket), so "rolled back" would have been a
 * lie and a retry that assumed it would have done the work twice. */
static void test_stall_commit_unknown(void **state)
{
    (void)state;
    admin_exec("CREATE TABLE IF NOT EXISTS stall_probe (x int)");
    aspen_store *s = open_or_fail(g_info, NULL);
    struct pg_store *p = pgs(s);
    aspen_store_error e = {0};
    assert_int_equal(pg_tx_begin(p, &e), 0);
    /* The stop outlasts the session's idle-in-transaction timeout (2 s), which would end the
     * session before it reads the COMMIT waiting in its socket: here it must not, to show that
     * the COMMIT can still land after the client gave up on it. */
    PGresult *r = pg_exec(p, NULL, "SET LOCAL idle_in_transaction_session_timeout = '60s'", NULL,
                          "lengthening the idle timeout", &e);
    assert_non_null(r);
    PQclear(r);
    r = pg_exec(p, NULL, "INSERT INTO stall_probe VALUES (7)", NULL, "probing", &e);
    assert_non_null(r);
    PQclear(r);
    server_pause();
    int64_t t = now_ms();
    int rc = pg_tx_commit(p, "committing the probe", &e);
    int64_t took = now_ms() - t;
    server_resume();
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    expect_msg(&e, "has not answered for 3.");
    expect_msg(&e, "it is not known whether the transaction committed");
    if (took < 2900 || took > 4500)
        fail_msg("gave up after %lld ms, want the 3 s deadline", (long long)took);
    int64_t seen = 0;
    for (int i = 0; i < 100 && seen == 0; i++) {
        seen = admin_int("SELECT count(*) FROM stall_probe WHERE x = 7");
        if (!seen)
            usleep(50000);
    }
    assert_int_equal(seen, 1);
    aspen_store_close(s);
}

/* Outside a transaction, through the public API: a call fails after the deadline plus one
 * reconnect window, disconnected, saying the server has not answered; the job a worker finished
 * while the server was stopped is completed once its completion is retried after SIGCONT, and
 * exactly once. */
static void test_stall_then_continue(void **state)
{
    (void)state;
    aspen_store *s = open_or_fail(g_info, NULL);
    aspen_store_error e = {0};
    int64_t engine = 0;
    assert_int_equal(aspen_store_engine_register(s, getpid(), "stall", 600000, T0, &engine, &e), 0);
    int64_t id = submit_job(s, "t", 0, 0, 3, T0);
    int64_t ids[1];
    assert_int_equal(claim_ids(s, engine, 1, T0, ids), 1);
    assert_int_equal(ids[0], id);

    server_pause();
    int64_t t = now_ms();
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    int rc = aspen_store_counts(s, counts, &e);
    int64_t took = now_ms() - t;
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected); /* an outage: an engine says "reconnecting" and tries again */
    expect_msg(&e, "has not answered for 3.");
    expect_msg(&e, "server stopped or network path lost");
    expect_msg(&e, "reconnecting did not succeed");
    /* 3 s deadline, then the reconnect window (5 s, attempts of connect_timeout 2 s each) */
    if (took < 2900 || took > 3000 + 7000 + 2000)
        fail_msg("gave up after %lld ms", (long long)took);

    aspen_store_completion c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    int status = -1;
    e = (aspen_store_error){0};
    rc = aspen_store_complete(s, engine, &c, 1, T0 + 10, &status, NULL, &e);
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    server_resume();

    e = (aspen_store_error){0};
    rc = aspen_store_complete(s, engine, &c, 1, T0 + 20, &status, NULL, &e);
    if (rc != 0)
        fail_msg("completing after SIGCONT: %s", e.msg);
    assert_true(pgs(s)->reconnects >= 1);
    assert_int_equal(state_of(s, id), ASPEN_STORE_SUCCEEDED);
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(s, id, &a, &n, &e), 0);
    assert_int_equal(n, 1); /* one attempt, succeeded once */
    assert_string_equal(a[0].outcome, "succeeded");
    aspen_store_attempts_free(a, n);
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 1);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 0);
    aspen_store_close(s);
}

static void *give_up_after(void *arg)
{
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    atomic_store((_Atomic int *)arg, 1);
    return NULL;
}

/* A stopping owner (Ctrl-C of a worker) with the server stopped: the wait under way ends within
 * about PG_STOP_SILENCE_MS of the flag, and the calls after it (a stop makes a dozen) fail at once
 * instead of each waiting out a deadline and a connect. */
static void test_stall_give_up(void **state)
{
    (void)state;
    static _Atomic int give_up;
    atomic_store(&give_up, 0);
    aspen_store_options o = {.give_up = &give_up};
    aspen_store *s = open_or_fail(g_info, &o);
    aspen_store_error e = {0};
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    server_pause();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, give_up_after, &give_up), 0);
    int64_t t = now_ms();
    int rc = aspen_store_counts(s, counts, &e);
    int64_t took = now_ms() - t;
    pthread_join(th, NULL);
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    expect_msg(&e, "not retried: stopping");
    expect_msg(&e, "has not answered");
    /* the flag at 1 s, then at most 500 ms of silence (already past) and one 50 ms peek of a
     * connect; the deadline alone would have been 3 s */
    if (took > 1000 + 1000)
        fail_msg("a stopping handle's call took %lld ms with the server stopped", (long long)took);
    t = now_ms();
    for (int i = 0; i < 10; i++) {
        e = (aspen_store_error){0};
        assert_int_equal(aspen_store_counts(s, counts, &e), ASPEN_STORE_EIO);
        assert_true(e.disconnected);
    }
    took = now_ms() - t;
    if (took > 1500)
        fail_msg("10 calls of a stopping handle took %lld ms with the server stopped",
                 (long long)took);
    server_resume();
    atomic_store(&give_up, 0);
    e = (aspen_store_error){0};
    if (aspen_store_counts(s, counts, &e) != 0)
        fail_msg("after SIGCONT: %s", e.msg);
    aspen_store_close(s);
}

int main(void)
{
    if (!test_on_pg()) {
        fprintf(stderr, "test_store_pgstall: run it through ctest (ASPEN_TEST_BACKEND=postgres, "
                        "fixture pg)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_timeout),
        cmocka_unit_test(test_stall_in_transaction),
        cmocka_unit_test(test_stall_commit_unknown),
        cmocka_unit_test(test_stall_then_continue),
        cmocka_unit_test(test_stall_give_up),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
