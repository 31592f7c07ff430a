/* tests/cli/test_cli_queues.c — the named-queue commands as a user types them (docs/QUEUES.md):
 * aspen submit --queue, aspen queue set / pause / resume / rm, aspen queues (table and --json),
 * aspen show and jobs --json naming the queue, jobs --filter queue:NAME, and the refusals with
 * their words: a bad name, a bad rate, a limit that is not a positive number, nothing to set, a
 * mistyped queue ("did you mean"), a mistyped action, a bad --queues list for aspen worker; rm of
 * a queue that still holds unfinished jobs, of default, and what a rerun into a removed one does; and
 * `aspen demo`'s limited queue and schedule (issue 10): declared, shown, honoured, declared again
 * by a second run, and a demo queue left paused by the user does not hang the demo; the store's
 * messages name their commands with the --db of a database that is not the default one (a path
 * with a space and a quote), and with none for the default one; trial 10's rough edges
 * (test_trial10_edges); cancel --filter asking first (on a terminal, through forkpty), --yes,
 * --dry-run and exit 3 for nothing matched, retry --failed's exit 3, jobs --wide's QUEUE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_store.h"
#include "cli_support.h"

#include <jansson.h>
#include <poll.h>
#include <pty.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_db[256];

static void expect(out o, int status, const char *needle)
{
    if (o.status != status || (needle && !has(&o, needle)))
        fail_msg("wanted status %d and '%s', got %d: %s", status, needle ? needle : "", o.status,
                 o.buf);
    free(o.buf);
}

/* Needle: s with the --db of path appended, quoted as the CLI quotes it (' as '\''). */
static const char *with_db(const char *s, const char *path)
{
    static char buf[2][1024];
    static int k;
    char *res = buf[k++ & 1];
    size_t n = (size_t)snprintf(res, sizeof buf[0], "%s --db '", s);
    for (const char *p = path; *p && n + 6 < sizeof buf[0]; p++) {
        if (*p == '\'') {
            memcpy(res + n, "'\\''", 4);
            n += 4;
        } else {
            res[n++] = *p;
        }
    }
    snprintf(res + n, sizeof buf[0] - n, "'");
    return res;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_db, sizeof g_db, "/tmp/aspen-cli-queues-%d.db", (int)getpid());
    unlink(g_db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", g_db, g_db, g_db);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_queue_commands(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    expect(run("'%s' submit --type echo --queue emails --create-queue --db '%s' --create 2>&1", A, g_db), 0, "1");
    expect(run("'%s' submit --type echo --count 2 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queue set emails --limit 2 --rate 5/10s --db '%s' 2>&1", A, g_db), 0,
           "queue emails: limit 2 rate 5/10s");
    expect(run("'%s' queue pause emails --db '%s' 2>&1", A, g_db), 0, "queue emails paused");
    /* a second pause changes nothing and says so (and how to undo the first) */
    expect(run("'%s' queue pause emails --db '%s' 2>&1", A, g_db), 0,
           with_db("queue emails was already paused: nothing changed (aspen queue resume emails",
                   g_db));
    out o = run("'%s' queues --db '%s' 2>&1", A, g_db);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "QUEUE"));
    assert_true(has(&o, "emails"));
    assert_true(has(&o, "paused"));
    free(o.buf);

    o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_int_equal(o.status, 0);
    json_error_t je;
    json_t *arr = json_loads(o.buf, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    json_t *d = json_array_get(arr, 0), *e = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(d, "name")), "default");
    assert_int_equal(json_integer_value(json_object_get(d, "queued")), 2);
    assert_true(json_is_null(json_object_get(d, "limit")));
    assert_string_equal(json_string_value(json_object_get(e, "name")), "emails");
    assert_int_equal(json_integer_value(json_object_get(e, "limit")), 2);
    assert_string_equal(json_string_value(json_object_get(e, "rate")), "5/10s");
    assert_int_equal(json_integer_value(json_object_get(e, "rate_period_ms")), 10000);
    assert_true(json_is_true(json_object_get(e, "paused")));
    json_decref(arr);
    free(o.buf);

    expect(run("'%s' queue resume emails --db '%s' 2>&1", A, g_db), 0, "queue emails resumed");
    expect(run("'%s' queue resume emails --db '%s' 2>&1", A, g_db), 0,
           "queue emails was already running: nothing changed");
    expect(run("'%s' queue set emails --no-limit --no-rate --db '%s' 2>&1", A, g_db), 0,
           "queue emails: no limit no rate");
    expect(run("'%s' show 1 --db '%s' 2>&1", A, g_db), 0, "queue       emails");
    expect(run("'%s' show 1 --json --db '%s' 2>&1", A, g_db), 0, "\"queue\": \"emails\"");
    o = run("'%s' jobs --filter queue:emails --json --db '%s'", A, g_db);
    assert_int_equal(o.status, 0);
    arr = json_loads(o.buf, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    free(o.buf);

    /* refusals, each with what to do */
    expect(run("'%s' submit --type echo --queue 'no spaces' --db '%s' 2>&1", A, g_db), 2,
           "queue name \"no spaces\" is not valid");
    expect(run("'%s' queue set emails --rate 10 --db '%s' 2>&1", A, g_db), 2, "N/PERIOD");
    expect(run("'%s' queue set emails --rate 0/s --db '%s' 2>&1", A, g_db), 2, "positive");
    expect(run("'%s' queue set emails --limit 0 --db '%s' 2>&1", A, g_db), 2, "--limit");
    expect(run("'%s' queue set emails --limit -3 --db '%s' 2>&1", A, g_db), 2, "--limit");
    /* the refusal says how to remove a limit, and "none" does it as the console's :limit does */
    expect(run("'%s' queue set emails --limit 0 --db '%s' 2>&1", A, g_db), 2, "--limit none or --no-limit");
    expect(run("'%s' queue set emails --limit none --db '%s' 2>&1", A, g_db), 0, "no limit");
    expect(run("'%s' queue set emails --limit 2 --db '%s' 2>&1", A, g_db), 0, "limit 2");
    expect(run("'%s' queue set emails --db '%s' 2>&1", A, g_db), 2, "nothing to set");
    expect(run("'%s' queue pause emials --db '%s' 2>&1", A, g_db), 1, "did you mean emails?");
    expect(run("'%s' queue paus emails --db '%s' 2>&1", A, g_db), 2, "did you mean 'pause'?");
    expect(run("'%s' queue pause --limit 2 emails --db '%s' 2>&1", A, g_db), 2,
           "go with aspen queue set");
    expect(run("'%s' worker --queues 'a,b c' --until-idle --db '%s' 2>&1", A, g_db), 2,
           "--queues: queue name \"b c\" is not valid");
    expect(run("'%s' worker --queues , --until-idle --db '%s' 2>&1", A, g_db), 2,
           "--queues ',' has an empty queue name");
    expect(run("'%s' jobs --filter 'queue:\"a b\"' --db '%s' 2>&1", A, g_db), 2,
           "queue name \"a b\" is not valid");
}

/* aspen queue rm: refused for default, a typo (did you mean), a bad name, options of set, and
 * while the queue holds queued, scheduled or running jobs (counted, with what to do) or a
 * schedule's jobs go to it (named, with what to do); once its
 * jobs finished it goes, its finished jobs stay findable, and a submit without --create-queue
 * refuses it again as it does any unknown queue. */
static void test_queue_rm(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    expect(run("'%s' queue set bulk --limit 3 --db '%s' --create 2>&1", A, g_db), 0, "limit 3");
    expect(run("'%s' submit --type echo --queue bulk --count 2 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' submit --type echo --queue bulk --delay 1h --db '%s' 2>&1", A, g_db), 0, "3");
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1,
           "error: queue bulk still holds 2 queued and 1 scheduled jobs: nothing removed");
    /* it names the one command that cancels them all (trial 10: it said aspen cancel ID, one
     * at a time, after aspen cancel --filter existed) */
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1,
           with_db("cancel them all: aspen cancel --filter 'queue:bulk "
                   "state:queued,scheduled,running'", g_db));
    /* the filter the message gives lists those three jobs (trial 10: without state: it matched
     * nothing, the words taken as a guest's name) */
    expect(run("'%s' jobs --filter 'queue:bulk state:queued,scheduled,running' --db '%s' 2>&1 |"
               " grep -c echo",
               A, g_db),
           0, "3");
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1,
           "(aspen jobs with that --filter lists them), then remove it again");
    expect(run("'%s' queue rm default --db '%s' 2>&1", A, g_db), 1,
           "the default queue cannot be removed");
    expect(run("'%s' queue rm blk --db '%s' 2>&1", A, g_db), 1, "no queue named blk (did you mean bulk?)");
    expect(run("'%s' queue rm 'a;b' --db '%s' 2>&1", A, g_db), 2, "queue name \"a;b\" is not valid");
    expect(run("'%s' queue rm '' --db '%s' 2>&1", A, g_db), 2, "a queue name is empty");
    expect(run("'%s' queue rm bulk --limit 2 --db '%s' 2>&1", A, g_db), 2, "go with aspen queue set");
    expect(run("'%s' queue rm --db '%s' 2>&1", A, g_db), 2, "an action and a queue NAME");
    expect(run("'%s' queue rn bulk --db '%s' 2>&1", A, g_db), 2, "did you mean 'rm'?");
    /* a schedule's jobs go to it: its next run would make the queue again, so it stays */
    expect(run("'%s' cron add bulk-nightly '30 2 * * *' --type echo --queue bulk --db '%s' 2>&1", A,
               g_db),
           0, "schedule bulk-nightly added");
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1,
           "error: queue bulk still holds 2 queued and 1 scheduled jobs and is the queue of "
           "schedule bulk-nightly: nothing removed");
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1,
           "Its next run would make it again: aspen cron rm bulk-nightly, or give it another queue");
    expect(run("'%s' cron rm bulk-nightly --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queues --db '%s' 2>&1", A, g_db), 0, "bulk");
    /* cancelled and run: only finished jobs left */
    expect(run("'%s' cancel 3 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' worker --until-idle --quiet --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 0,
           "queue bulk removed, with its settings; its finished jobs stay");
    out o = run("'%s' queues --db '%s' 2>&1", A, g_db);
    assert_int_equal(o.status, 0);
    assert_false(has(&o, "bulk"));
    free(o.buf);
    o = run("'%s' jobs --filter queue:bulk --json --db '%s'", A, g_db);
    assert_int_equal(o.status, 0);
    json_error_t je;
    json_t *arr = json_loads(o.buf, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    json_decref(arr);
    free(o.buf);
    expect(run("'%s' queue rm bulk --db '%s' 2>&1", A, g_db), 1, "no queue named bulk");
    expect(run("'%s' submit --type echo --queue bulk --db '%s' 2>&1", A, g_db), 1, "no queue named bulk");
    /* a rerun of one of its jobs makes it again (no settings) and runs, though another queue
     * has a limit (claims go queue by queue) */
    expect(run("'%s' queue set other --limit 1 --db '%s' 2>&1", A, g_db), 0, "limit 1");
    expect(run("'%s' rerun 1 --db '%s' 2>&1", A, g_db), 0, "4");
    expect(run("'%s' worker --until-idle --quiet --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' show 4 --db '%s' 2>&1", A, g_db), 0, "succeeded");
    o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "\"name\": \"bulk\""));
    free(o.buf);
    expect(run("'%s' queue --help 2>&1", A), 0, "aspen queue rm NAME");
}

/* One run of the demo: it succeeds, says what it declared, and its limited queue's jobs never
 * overlapped (read from the store's attempts, not from the demo's own sentence). */
static void demo_once(int runs_expected)
{
    out o = run("timeout 120 '%s' demo --db '%s' 2>&1", ASPEN_BIN, g_db);
    if (o.status != 0 || !has(&o, "declared queue demo-limited (limit 1)") ||
        !has(&o, "== queue demo-limited: concurrency limit 1") ||
        !has(&o, "at most 1 ran at once") ||
        !has(&o, "== schedule demo-heartbeat: @every 10s (UTC), jobs into queue demo-limited, "
                 "paused") ||
        !has(&o, "aspen cron resume demo-heartbeat"))
        fail_msg("aspen demo (run %d): status %d\n%s", runs_expected, o.status, o.buf);
    free(o.buf);

    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(g_db, NULL, &s, &e) != 0)
        fail_msg("open %s: %s", g_db, e.msg);
    aspen_store_filter f = {.queue = "demo-limited", .limit = -1};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(s, &f, &jobs, &n, &e), 0);
    /* 3 sleep jobs and the schedule's run-now per demo run */
    assert_int_equal(n, (size_t)(4 * runs_expected));
    int64_t start[16], finish[16];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i].state, ASPEN_STORE_SUCCEEDED);
        aspen_store_attempt *a = NULL;
        size_t na = 0;
        assert_int_equal(aspen_store_attempts(s, jobs[i].id, &a, &na, &e), 0);
        for (size_t j = 0; j < na && k < 16; j++, k++) {
            start[k] = a[j].started_at_ms;
            finish[k] = a[j].finished_at_ms;
        }
        aspen_store_attempts_free(a, na);
    }
    aspen_store_jobs_free(jobs, n);
    aspen_store_close(s);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            if (i != j && start[j] <= start[i] && start[i] < finish[j])
                fail_msg("demo-limited (limit 1): an attempt started at %lld while another ran "
                         "(%lld-%lld)", (long long)start[i], (long long)start[j],
                         (long long)finish[j]);

    o = run("'%s' queues --json --db '%s'", ASPEN_BIN, g_db);
    assert_int_equal(o.status, 0);
    json_error_t je;
    json_t *arr = json_loads(o.buf, 0, &je), *q = NULL, *v;
    size_t i;
    json_array_foreach(arr, i, v)
        if (!strcmp(json_string_value(json_object_get(v, "name")), "demo-limited"))
            q = v;
    if (!q)
        fail_msg("no demo-limited in aspen queues --json:\n%s", o.buf);
    assert_int_equal(json_integer_value(json_object_get(q, "limit")), 1);
    assert_true(json_is_false(json_object_get(q, "paused")));
    json_decref(arr);
    free(o.buf);

    o = run("'%s' cron list --json --db '%s'", ASPEN_BIN, g_db);
    assert_int_equal(o.status, 0);
    arr = json_loads(o.buf, 0, &je);
    assert_int_equal(json_array_size(arr), 1); /* declared again, not twice */
    v = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "demo-heartbeat");
    assert_string_equal(json_string_value(json_object_get(v, "queue")), "demo-limited");
    assert_true(json_is_true(json_object_get(v, "paused")));
    assert_int_equal(json_integer_value(json_object_get(v, "runs")), runs_expected);
    assert_string_equal(json_string_value(json_object_get(v, "last_outcome")), "succeeded");
    json_decref(arr);
    free(o.buf);
}

static void test_demo_queue_and_schedule(void **state)
{
    (void)state;
    demo_once(1);
    /* the user pauses the demo's queue and sets another limit: the next demo declares it again
     * instead of waiting for ever on jobs a paused queue never starts */
    expect(run("'%s' queue pause demo-limited --db '%s' 2>&1", ASPEN_BIN, g_db), 0, "paused");
    expect(run("'%s' queue set demo-limited --limit 5 --db '%s' 2>&1", ASPEN_BIN, g_db), 0,
           "limit 5");
    demo_once(2);
    /* a database paused with aspen pause: the demo says so at once (it waited 300 s before) and
     * submits nothing */
    expect(run("'%s' pause --db '%s' 2>&1", ASPEN_BIN, g_db), 0, "pause");
    out o = run("timeout 20 '%s' demo --db '%s' 2>&1", ASPEN_BIN, g_db);
    if (o.status != 1 || !has(&o, "is paused (aspen pause): no job would start") ||
        !has(&o, "aspen resume --db"))
        fail_msg("aspen demo on a paused database: status %d\n%s", o.status, o.buf);
    free(o.buf);
    expect(run("'%s' resume --db '%s' 2>&1", ASPEN_BIN, g_db), 0, "");
    demo_once(3);
}

/* The store makes some messages itself (a queue removal refused, a schedule or a queue not
 * found): pasted, their commands opened the default database. Now each carries the --db the
 * CLI's and the engine's commands carry; when the message would be cut, the commands go bare
 * and one sentence gives the --db once. The shell form of an awkward path: ' as '\'', a space
 * kept. */
static void test_store_messages_name_the_db(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    char dir[256], db[320], q[700];
    snprintf(dir, sizeof dir, "/tmp/aspen cli it's %d", (int)getpid());
    snprintf(db, sizeof db, "%s/q.db", dir);
    /* the path as a shell word inside "…" for run(): ' needs no escape there */
    snprintf(q, sizeof q, "\"%s\"", db);
    char mk[400];
    snprintf(mk, sizeof mk, "mkdir -p \"%s\"", dir);
    assert_int_equal(system(mk), 0);

    /* job 1, in queue rep, finished (cancelled): it does not hold the queue */
    expect(run("'%s' submit --type echo --queue rep --create-queue --db %s --create 2>&1 && "
               "'%s' cancel 1 --db %s 2>&1", A, q, A, q), 0, NULL);
    expect(run("'%s' cron add nightly @daily --type echo --queue rep --db %s 2>&1", A, q), 0,
           "schedule nightly added");
    expect(run("'%s' queue rm rep --db %s 2>&1", A, q), 1,
           with_db("Its next run would make it again: aspen cron rm nightly", db));
    expect(run("'%s' queue rm rep --db %s 2>&1", A, q), 1,
           with_db("(aspen cron add nightly ... --queue OTHER --replace", db));
    expect(run("'%s' cron rm nightlx --db %s 2>&1", A, q), 1,
           with_db("did you mean nightly? (aspen cron list", db));
    expect(run("'%s' cron add nightly @daily --type echo --queue rep --db %s 2>&1", A, q), 1,
           with_db("remove it first (aspen cron rm nightly", db));
    expect(run("'%s' cron rm nightly --db %s 2>&1", A, q), 0, NULL);

    expect(run("'%s' submit --type echo --queue rep --db %s 2>&1", A, q), 0, NULL);
    expect(run("'%s' queue rm rep --db %s 2>&1", A, q), 1,
           with_db("cancel them all: aspen cancel --filter 'queue:rep state:queued,scheduled,running'", db));
    expect(run("'%s' queue rm rep --db %s 2>&1", A, q), 1, "(aspen jobs with that --filter lists them)");
    expect(run("'%s' priority 1 4 --db %s 2>&1", A, q), 1,
           with_db("another priority: aspen rerun", db));

    /* jobs and a schedule: too long with the --db in every command, so it comes once, whole */
    expect(run("'%s' submit --type echo --queue rep --db %s 2>&1", A, q), 0, NULL);
    expect(run("'%s' cron add nightly @daily --type echo --queue rep --db %s 2>&1", A, q), 0,
           NULL);
    out o = run("'%s' queue rm rep --db %s 2>&1", A, q);
    assert_int_equal(o.status, 1);
    char tail[800];
    snprintf(tail, sizeof tail, "%s)", with_db("Then remove it again (each command with", db));
    if (!has(&o, tail) || !has(&o, "state:queued,scheduled,running' (aspen jobs with that --filter lists them). Its") || !has(&o, "aspen cron rm nightly,"))
        fail_msg("wanted the bare commands and '%s': %s", tail, o.buf);
    free(o.buf);

    /* the default database: no --db in them */
    char home[300];
    snprintf(home, sizeof home, "%s/home", dir);
    o = run("export HOME=\"%s\" XDG_DATA_HOME= ASPEN_DB=; '%s' submit --type echo --create 2>&1 && "
            "'%s' queue set rep --limit 1 2>&1 && '%s' cron add nightly @daily --type echo --queue rep 2>&1 && '%s' queue rm rep 2>&1",
            home, A, A, A, A);
    assert_int_equal(o.status, 1);
    if (!has(&o, "aspen cron rm nightly, or give it another queue (aspen cron add nightly ... "
                 "--queue OTHER --replace), then remove it again") || has(&o, "--db"))
        fail_msg("wanted the commands without --db: %s", o.buf);
    free(o.buf);

    snprintf(mk, sizeof mk, "rm -rf \"%s\"", dir);
    assert_int_equal(system(mk), 0);
}

/* Runs aspen ARGS... on a terminal (forkpty), answers `answer` once the question is on it, and
 * returns what it printed and its exit status. Polls with a deadline (20 s), never a fixed wait. */
static out run_on_tty(const char *answer, const char *const *args)
{
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(ASPEN_BIN, (char *const *)args);
        _exit(127);
    }
    out o = {.buf = calloc(1, 8192)};
    assert_non_null(o.buf);
    bool sent = false;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = read(fd, o.buf + o.len, 8191 - o.len);
            if (n <= 0)
                break; /* EIO: the child closed the terminal (it exited) */
            o.len += (size_t)n;
            o.buf[o.len] = '\0';
        }
        if (!sent && strstr(o.buf, "[y/N] ")) {
            assert_int_equal(write(fd, answer, strlen(answer)), (ssize_t)strlen(answer));
            sent = true;
        }
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(fd);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

/* aspen cancel --filter: every unfinished job a filter matches, in one transaction — what a queue
 * needs before aspen queue rm (trial 10: there was only cancel ID, one job at a time). A cancelled
 * job cannot be retried, so it asks first as delete --filter and purge do (trial 10: it cancelled
 * at once): the count, per state, and the first ids; y/N on a terminal; refused without --yes
 * when standard input is not one; --dry-run changes nothing; no match is exit 3 (nothing to do). */
static void test_cancel_filter(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    expect(run("'%s' submit --type echo --queue slow --create-queue --count 7 --delay 1h --db '%s'"
               " --create 2>&1",
               A, g_db),
           0, "7");
    expect(run("'%s' submit --type echo --delay 1h --db '%s' 2>&1", A, g_db), 0, "8");
    /* --dry-run: what, how many and which; nothing changes (it said "takes a job ID or --filter
     * F, not both (nor other arguments)") */
    expect(run("'%s' cancel --filter 'queue:slow' --dry-run --db '%s' 2>&1", A, g_db), 0,
           "would cancel 7 unfinished jobs matching 'queue:slow' (7 scheduled), ids 1, 2, 3, 4, 5 "
           "and 2 more; nothing cancelled");
    expect(run("'%s' jobs --filter 'state:scheduled' --db '%s' 2>&1 | grep -c echo", A, g_db), 0,
           "8");
    /* no answer (standard input gives no line) and no --yes: no, saying why, nothing cancelled;
     * a piped "n" is no too (the answer is a line of stdin, as delete's and purge's are) */
    expect(run("'%s' cancel --filter 'queue:slow' --db '%s' </dev/null 2>&1", A, g_db), 1,
           "standard input is not a terminal and gave no line; add --yes to cancel them without "
           "asking");
    expect(run("echo n | '%s' cancel --filter 'queue:slow' --db '%s' 2>&1", A, g_db), 1,
           "nothing cancelled");
    expect(run("'%s' jobs --filter 'state:scheduled' --db '%s' 2>&1 | grep -c echo", A, g_db), 0,
           "8");
    /* on a terminal: the question with the count; "n" (or Enter) keeps them, "y" cancels */
    const char *const argv_slow[] = {A, "cancel", "--filter", "queue:slow", "--db", g_db, NULL};
    out o = run_on_tty("n\r", argv_slow);
    if (o.status != 1 || !has(&o, "Cancel 7 unfinished jobs matching 'queue:slow' (7 scheduled), "
                                  "ids 1, 2, 3, 4, 5 and 2 more? Cancelled jobs cannot be retried."
                                  " [y/N] ") ||
        !has(&o, "nothing cancelled"))
        fail_msg("cancel --filter on a terminal, answered n: exit %d:\n%s", o.status, o.buf);
    free(o.buf);
    expect(run("'%s' jobs --filter 'state:scheduled' --db '%s' 2>&1 | grep -c echo", A, g_db), 0,
           "8");
    expect(run("'%s' submit --type echo --queue slow --count 2 --delay 1h --db '%s' 2>&1", A, g_db),
           0, "10");
    const char *const argv_two[] = {A, "cancel", "--filter", "queue:slow id:9", "--db", g_db, NULL};
    o = run_on_tty("y\r", argv_two);
    if (o.status != 0 || !has(&o, "Cancel 1 unfinished job matching 'queue:slow id:9' (1 "
                                  "scheduled), id 9?") ||
        !has(&o, "cancelled 1 job"))
        fail_msg("cancel --filter on a terminal, answered y: exit %d:\n%s", o.status, o.buf);
    free(o.buf);
    expect(run("'%s' show 9 --db '%s' 2>&1", A, g_db), 0, "cancelled");
    /* a script answers through a pipe, as it does delete's question */
    expect(run("echo y | '%s' cancel --filter 'queue:slow id:10' --db '%s' 2>&1", A, g_db), 0,
           "cancelled 1 job");
    /* --yes: no question */
    expect(run("'%s' cancel --filter 'queue:slow' --yes --db '%s' </dev/null 2>&1", A, g_db), 0,
           "cancelled 7 jobs");
    /* the other queue's job is untouched, and the queue can go now */
    expect(run("'%s' jobs --filter 'state:scheduled' --db '%s' 2>&1 | grep -c echo", A, g_db), 0,
           "1");
    /* nothing to do: exit 3, as cancel of a finished job (it was 0), --dry-run too */
    expect(run("'%s' cancel --filter 'queue:slow' --yes --db '%s' 2>&1", A, g_db), 3,
           "no unfinished job matches queue:slow: nothing cancelled");
    expect(run("'%s' cancel --filter 'queue:slow' --dry-run --db '%s' 2>&1", A, g_db), 3,
           "nothing cancelled");
    expect(run("'%s' queue rm slow --db '%s' 2>&1", A, g_db), 0, NULL);
    /* mistakes say what to do and change nothing */
    expect(run("'%s' cancel 4 --filter 'queue:default' --db '%s' 2>&1", A, g_db), 2,
           "a job ID or --filter F, not both (unexpected argument '4' beside --filter)");
    expect(run("'%s' cancel --filter 'bogus:1' --db '%s' 2>&1", A, g_db), 2,
           "unknown filter key 'bogus'");
    expect(run("'%s' cancel --filter '' --db '%s' 2>&1", A, g_db), 2, "--filter is empty");
    expect(run("'%s' cancel --db '%s' --filter 2>&1", A, g_db), 2, "--filter needs a value");
    expect(run("'%s' cancel --filter queued --yes --dry-run --db '%s' 2>&1", A, g_db), 2,
           "--yes and --dry-run say opposite things");
    expect(run("'%s' cancel 8 --dry-run --db '%s' 2>&1", A, g_db), 2,
           "--dry-run goes with --filter F: aspen cancel ID cancels that job without asking");
    expect(run("'%s' jobs --filter 'state:scheduled' --db '%s' 2>&1 | grep -c echo", A, g_db), 0,
           "1");
    /* an explicit id is asked nothing, as before */
    expect(run("'%s' cancel 8 --db '%s' </dev/null 2>&1", A, g_db), 0, "job 8 cancelled");

    /* retry --failed with nothing to retry: exit 3 and says so ("0 failed jobs queued again",
     * exit 0, read as if something had happened) */
    expect(run("'%s' retry --failed --db '%s' 2>&1", A, g_db), 3,
           "no failed job: nothing to retry");
    expect(run("'%s' retry --failed --filter 'queue:default' --db '%s' 2>&1", A, g_db), 3,
           "no failed job matches 'queue:default': nothing to retry");

    /* jobs --wide has a QUEUE column (trial 10: only --json and show named the queue) */
    o = run("'%s' jobs --wide --db '%s' 2>&1", A, g_db);
    {
        const char *row = strstr(o.buf, "\n9 ");
        const char *row8 = strstr(o.buf, "\n8 ");
        if (o.status != 0 || !has(&o, " QUEUE ") || !row || strncmp(row, "\n9  cancelled slow ", 19) ||
            !row8 || strncmp(row8, "\n8  cancelled default ", 22))
            fail_msg("aspen jobs --wide without the jobs' queues: exit %d:\n%s", o.status, o.buf);
    }
    free(o.buf);
    /* without --wide the table keeps its width for the results, as before */
    o = run("'%s' jobs --db '%s' 2>&1", A, g_db);
    if (o.status != 0 || has(&o, "QUEUE") || !has(&o, "RESULT / ERROR"))
        fail_msg("aspen jobs (not --wide): exit %d:\n%s", o.status, o.buf);
    free(o.buf);
}

/* Trial 10's rough edges of the queue commands: aspen queues refuses what it does not do, naming
 * the option (--create was ignored, silently); --rate takes the CLI's one duration grammar (d and
 * 1h30m were refused); the global pause is said as every queue's and shown in aspen queues (its
 * PAUSED said "-"); a worker held by a pause says so once, and runs the jobs once resumed; a
 * filter's queue:NAME that names no queue gets a "did you mean". */
static void test_trial10_edges(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    expect(run("'%s' queue set emails --rate 50/1h30m --db '%s' --create 2>&1", A, g_db), 0,
           "queue emails: rate 50/90m");
    out o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_true(has(&o, "\"rate_period_ms\": 5400000"));
    free(o.buf);
    expect(run("'%s' queue set emails --rate 2000/d --db '%s' 2>&1", A, g_db), 0, "rate 2000/d");
    o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_true(has(&o, "\"rate_period_ms\": 86400000"));
    free(o.buf);
    expect(run("'%s' queue set emails --rate 5/h --db '%s' 2>&1", A, g_db), 0, "rate 5/h");
    expect(run("'%s' queue set emails --rate 5/10 --db '%s' 2>&1", A, g_db), 2,
           "the period \"10\" is not a duration (it has no unit): write N/PERIOD");

    expect(run("'%s' queues --create --db '%s' 2>&1", A, g_db), 2,
           "error: aspen queues only lists queues: --create makes no queue nor database here");
    expect(run("'%s' queues --limit 3 --db '%s' 2>&1", A, g_db), 2,
           "error: aspen queues only lists queues: --limit goes with aspen queue set NAME");
    expect(run("'%s' queues --no-rate --db '%s' 2>&1", A, g_db), 2,
           "usage: aspen queue set NAME");

    /* a filter naming no queue: nothing matches, and the line says which queue was meant */
    expect(run("'%s' jobs --filter queue:emials --db '%s' 2>&1", A, g_db), 0,
           "no queue named emials (did you mean emails?)");
    expect(run("'%s' cancel --filter queue:emials --db '%s' 2>&1", A, g_db), 3,
           "no queue named emials (did you mean emails?)");

    /* the global pause */
    expect(run("'%s' submit --type echo --count 2 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' pause --db '%s' 2>&1", A, g_db), 0,
           "all queues paused: no worker on this database starts a job (aspen resume");
    /* a second pause changes nothing and says so, as cron pause and queue pause do (trial 22) */
    expect(run("'%s' pause --db '%s' 2>&1", A, g_db), 0,
           "all queues were already paused: nothing changed (aspen resume --db");
    o = run("'%s' queues --db '%s' 2>&1", A, g_db);
    {
        const char *row = strstr(o.buf, "\ndefault ");
        if (!row || !strstr(row, " all ") || !has(&o, "(all queues paused: aspen pause is on; "
                                                      "aspen resume --db"))
            fail_msg("aspen queues under aspen pause:\n%s", o.buf);
    }
    free(o.buf);
    o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_true(has(&o, "\"all_paused\": true"));
    free(o.buf);
    /* a queue's own resume under it starts nothing: it says the global pause still holds it
     * (it said "was already running", trial 22) */
    expect(run("'%s' queue set gp --limit 1 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queue resume gp --db '%s' 2>&1", A, g_db), 0,
           "queue gp was not paused on its own: nothing changed; but all queues are paused "
           "(aspen pause is on): nothing starts until aspen resume");
    expect(run("'%s' queue pause gp --db '%s' 2>&1", A, g_db), 0, "queue gp paused");
    expect(run("'%s' queue resume gp --db '%s' 2>&1", A, g_db), 0,
           "queue gp resumed (every worker on this database); but all queues are paused");
    expect(run("'%s' queue rm gp --db '%s' 2>&1", A, g_db), 0, NULL);
    /* an empty --filter (an unset variable) is not "every failed job" (trial 22) */
    expect(run("'%s' retry --failed --filter '' --db '%s' 2>&1", A, g_db), 2,
           "--filter is empty: give the failed jobs to retry");
    /* a worker held by it says why, once; resumed, it runs the jobs and ends (--until-idle) */
    char log[300];
    snprintf(log, sizeof log, "%s.worker.log", g_db);
    o = run_plain("'%s' worker --until-idle --db '%s' >'%s' 2>&1 & echo $!", A, g_db, log);
    long long pid = atoll(o.buf);
    free(o.buf);
    assert_true(pid > 0);
    bool said = false;
    for (int i = 0; i < 600 && !said; i++) { /* 60 s */
        o = run("cat '%s'", log);
        said = has(&o, "aspen worker: waiting: all queues are paused (aspen pause is on): this "
                       "worker starts no job until aspen resume");
        free(o.buf);
        if (!said)
            usleep(100 * 1000);
    }
    if (!said) {
        o = run("kill %lld; cat '%s'", pid, log);
        fail_msg("the worker did not say it waits on the pause:\n%s", o.buf);
    }
    expect(run("'%s' resume --db '%s' 2>&1", A, g_db), 0, "all queues resumed");
    expect(run("'%s' resume --db '%s' 2>&1", A, g_db), 0,
           "all queues were already running: nothing changed (aspen pause --db");
    /* its last line says it ended (a reparented process's pid is no proof: it may linger) */
    bool gone = false;
    for (int i = 0; i < 600 && !gone; i++) {
        o = run("cat '%s'", log);
        gone = has(&o, "aspen worker: done:");
        free(o.buf);
        if (!gone)
            usleep(100 * 1000);
    }
    o = run("cat '%s'", log);
    if (!gone || !has(&o, "2 succeeded"))
        fail_msg("the worker did not run the jobs once resumed:\n%s", o.buf);
    /* said once, not once a second */
    const char *first = strstr(o.buf, "waiting: all queues");
    assert_null(strstr(first + 1, "waiting: all queues"));
    free(o.buf);

    /* a queue paused on its own, served by name: the same, naming the queue */
    expect(run("'%s' submit --type echo --queue emails --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queue pause emails --db '%s' 2>&1", A, g_db), 0, NULL);
    o = run_plain("'%s' worker --queues emails --until-idle --db '%s' >'%s' 2>&1 & echo $!", A,
                  g_db, log);
    pid = atoll(o.buf);
    free(o.buf);
    said = false;
    for (int i = 0; i < 600 && !said; i++) {
        o = run("cat '%s'", log);
        said = has(&o, with_db("waiting: queue emails is paused (1 job waiting): this worker "
                               "starts none of its jobs until aspen queue resume emails", g_db));
        free(o.buf);
        if (!said)
            usleep(100 * 1000);
    }
    if (!said) {
        o = run("kill %lld; cat '%s'", pid, log);
        fail_msg("the worker did not say it waits on queue emails:\n%s", o.buf);
    }
    /* its banner and aspen engines say which queues it serves (trial 23: nothing did) */
    o = run("cat '%s'", log);
    assert_true(has(&o, " serving queue emails (until idle)"));
    free(o.buf);
    expect(run("'%s' engines --db '%s' --wide", A, g_db), 0, "QUEUES");
    bool listed = false; /* from its first heartbeat on (once a second) */
    for (int i = 0; i < 100 && !listed; i++) {
        o = run("'%s' engines --json --db '%s'", A, g_db);
        listed = has(&o, "\"queues\": [\n      \"emails\"\n    ]");
        free(o.buf);
        if (!listed)
            usleep(100 * 1000);
    }
    assert_true(listed);
    expect(run("'%s' engines --db '%s'", A, g_db), 0, " emails ");
    /* a second job is no new reason: the line is not said again (it was, with "(2 jobs
     * waiting)", at each submit: trial 23); the reason is read once a second */
    expect(run("'%s' submit --type echo --queue emails --db '%s' 2>&1", A, g_db), 0, NULL);
    usleep(2500 * 1000);
    o = run("cat '%s'", log);
    const char *once = strstr(o.buf, "waiting: queue emails");
    assert_non_null(once);
    if (strstr(once + 1, "waiting: queue emails"))
        fail_msg("the worker said its reason again when only the count changed:\n%s", o.buf);
    free(o.buf);
    expect(run("'%s' queue resume emails --db '%s' 2>&1", A, g_db), 0, NULL);
    gone = false;
    for (int i = 0; i < 600 && !gone; i++) {
        o = run("cat '%s'", log);
        gone = has(&o, "aspen worker: done: 2 finished (2 succeeded");
        free(o.buf);
        if (!gone)
            usleep(100 * 1000);
    }
    if (!gone) {
        o = run("kill %lld; cat '%s'", pid, log);
        fail_msg("the worker did not run queue emails' job once resumed:\n%s", o.buf);
    }
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_queue_and_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_messages_name_the_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trial10_edges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
