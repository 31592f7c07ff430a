/* tests/cli/test_cli_fit.c — the real `aspen` program at 80 columns and its answers to the usual
 * mistakes (issue 9's CLI findings, trial findings):
 *   - every command's --help, and aspen --help, has no line over 80 columns;
 *   - the tables (jobs, queues, cron list, metrics, engines) fit 80 columns when stdout is not a
 *     terminal, $COLUMNS when it is set, a terminal's width (a pseudo-terminal of 120 and 50
 *     columns); --wide gives every column whole; --json is the whole data; a hidden column is
 *     named on stderr;
 *   - long options are taken by their exact names only: a prefix (--pay) is refused with "did you
 *     mean";
 *   - numeric options say which option, what was given and what is allowed;
 *   - aspen logs --follow ID says how the job ended and exits 0 / 3 / 4;
 *   - aspen submit --type of a type no engine runs is refused unless --any-type;
 *   - aspen retry of a succeeded job points to aspen rerun;
 *   - aspen demo without KVM stops before it submits anything.
 * They need /dev/kvm (a worker runs jobs) and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256], g_db[300];

/* Fails naming the first line of o wider than width bytes (the output checked is ASCII); with
 * rows_only, the notes in parentheses under a table (prose, wrapped for 80) are not counted. */
static void expect_fits_ex(const out *o, size_t width, const char *what, bool rows_only)
{
    const char *p = o->buf, *end = o->buf + o->len;
    bool note = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        note = rows_only && (p[0] == '(' || (note && p[0] == ' '));
        if (l > width && !note)
            fail_msg("%s: a line of %zu columns (over %zu):\n%.*s\n--- all of it:\n%s", what, l,
                     width, (int)l, p, o->buf);
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void expect_fits(const out *o, size_t width, const char *what)
{
    expect_fits_ex(o, width, what, false);
}

/* ---- help at 80 columns ------------------------------------------------------------------------- */

static void test_help_fits_80(void **st)
{
    (void)st;
    static const char *const cmds[] = {
        "",        "console", "run",      "demo",    "bench",   "bench engine", "submit",
        "jobs",    "show",    "logs",     "cancel",  "rerun",   "retry",        "priority",
        "run-now", "snooze",  "pause",    "resume",  "worker",  "delete",       "purge",
        "retention", "engines", "cron",    "cron add", "cron list", "queues", "queue",       "core",
        "replay",  "metrics",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        out o = run_plain("'%s' %s --help", ASPEN_BIN, cmds[i]);
        char what[64];
        snprintf(what, sizeof what, "aspen %s --help", cmds[i]);
        if (o.status != 0 || o.len < 20)
            fail_msg("%s: exit %d, %zu bytes:\n%s", what, o.status, o.len, o.buf);
        expect_fits(&o, 80, what);
        free(o.buf);
    }
    /* the usage printed after a mistake too (on stderr) */
    out o = run_plain("'%s' 2>&1", ASPEN_BIN);
    expect_out(&o, 2, "usage: aspen COMMAND");
    expect_fits(&o, 80, "aspen with no command");
    free(o.buf);
    /* a wrapped option's text continues under its description, not at the margin */
    o = run_plain("'%s' worker --help", ASPEN_BIN);
    expect_out(&o, 0, "\n  --workers N   worker threads, each running one job at a time (default 2, at\n"
                      "                most 64)");
    free(o.buf);
}

/* ---- tables that fit ---------------------------------------------------------------------------- */

static void test_tables_fit(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/tables.db", g_dir);
    /* results and names longer than any terminal */
    check_cmd(0, NULL,
              "'%s' submit --type echo --count 3 --db '%s' --create --payload "
              "'{\"message\":\"%0200d\"}'",
              ASPEN_BIN, db, 7);
    check_cmd(0, NULL, "'%s' submit --type nosuch-type-of-a-rather-long-name --any-type "
              "--max-attempts 1 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' queue set a-queue-with-a-name-much-longer-than-a-column-is "
              "--limit 3 --rate 100/s --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' cron add nightly-cleanup-of-the-old-reports-and-more "
              "'*/15 9-17 * * MON-FRI' --type echo --tz America/Argentina/Buenos_Aires "
              "--db '%s'", ASPEN_BIN, db);
    static const char *const cmds[] = {"jobs", "queues", "cron list", "metrics", "engines",
                                       "retention", "cron runs nightly-cleanup-of-the-old-reports-and-more"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char what[160];
        /* a pipe: 80 columns (COLUMNS unset, as in a script) */
        out o = run_plain("env -u COLUMNS '%s' %s --db '%s'", ASPEN_BIN, cmds[i], db);
        snprintf(what, sizeof what, "aspen %s", cmds[i]);
        expect_out(&o, 0, NULL);
        expect_fits(&o, 80, what);
        free(o.buf);
        /* $COLUMNS is the width asked for */
        o = run_plain("COLUMNS=60 '%s' %s --db '%s'", ASPEN_BIN, cmds[i], db);
        snprintf(what, sizeof what, "COLUMNS=60 aspen %s", cmds[i]);
        expect_out(&o, 0, NULL);
        expect_fits_ex(&o, 60, what, true);
        free(o.buf);
    }
    /* at 80 the result is cut with "...", the id, state and the start of the result kept */
    out o = run_plain("env -u COLUMNS '%s' jobs --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "{\"message\":\"0000");
    assert_true(has(&o, "...\n"));
    assert_true(has(&o, "succeeded"));
    assert_true(has(&o, "RESULT / ERROR"));
    assert_false(has(&o, "0000000007\"}"));
    free(o.buf);
    /* --wide: every column, the cells whole (up to their bound) */
    o = run_plain("env -u COLUMNS '%s' jobs --wide --db '%s' 2>&1", ASPEN_BIN, db);
    expect_out(&o, 0, "0000000007\"}");
    assert_true(has(&o, "nosuch-type-of-a-rather-long-name"));
    assert_true(has(&o, "TRIES"));
    assert_false(has(&o, "hidden"));
    free(o.buf);
    /* a narrow terminal hides the least needed columns and says so on stderr (stdout stays the
     * table, for scripts that count its lines) */
    o = run_plain("COLUMNS=50 '%s' jobs --db '%s' 2>&1 >/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, "hidden to fit 50 columns: --wide shows every column)");
    assert_true(has(&o, "TYPE"));
    free(o.buf);
    o = run_plain("COLUMNS=50 '%s' jobs --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, "ID");
    assert_false(has(&o, "hidden"));
    assert_false(has(&o, "TYPE"));
    free(o.buf);
    /* the other tables: the queue's name cut, whole with --wide */
    /* (its start and its end kept, and said on stderr: trial 23) */
    o = run_plain("env -u COLUMNS '%s' queues --db '%s' 2>&1", ASPEN_BIN, db);
    expect_out(&o, 0, "a-queu");
    assert_true(has(&o, "...") && has(&o, "-is "));
    assert_true(has(&o, "queue name cut to fit 80 columns, keeping both ends: --wide shows"));
    assert_false(has(&o, "a-queue-with-a-name-much-longer-than-a-column-is"));
    free(o.buf);
    o = run_plain("env -u COLUMNS '%s' queues --wide --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "a-queue-with-a-name-much-longer-than-a-column-is");
    free(o.buf);
    o = run_plain("env -u COLUMNS '%s' cron list --wide --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "nightly-cleanup-of-the-old-reports-and-more");
    assert_true(has(&o, "America/Argentina/Buenos_Aires"));
    free(o.buf);
    o = run_plain("env -u COLUMNS '%s' metrics --wide --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "HOST CALLS");
    free(o.buf);
    /* aspen engines with an engine on the database: a worker process, until it shows */
    o = run_plain("'%s' worker --quiet --db '%s' >/dev/null 2>&1 & w=$!; "
                  "for i in $(seq 1 300); do '%s' engines --db '%s' | grep -q ' ago' && break; "
                  "sleep 0.1; done; env -u COLUMNS '%s' engines --db '%s'; "
                  "COLUMNS=50 '%s' engines --db '%s' 2>/dev/null; kill $w; wait $w",
                  ASPEN_BIN, db, ASPEN_BIN, db, ASPEN_BIN, db, ASPEN_BIN, db);
    expect_out(&o, 0, " ago");
    assert_true(has(&o, "HEARTBEAT"));
    expect_fits(&o, 80, "aspen engines with a worker");
    free(o.buf);
    /* --json is the whole data whatever the width */
    o = run_plain("COLUMNS=40 '%s' jobs --json --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "0000000007\"");
    free(o.buf);
    /* a width that is not one is ignored, not obeyed */
    o = run_plain("COLUMNS=abc '%s' jobs --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "RESULT / ERROR");
    expect_fits(&o, 80, "COLUMNS=abc aspen jobs");
    free(o.buf);
}

/* aspen jobs on a terminal of cols columns, $COLUMNS unset: what it printed (CR LF line ends). */
static out jobs_on_terminal(const char *db, unsigned short cols)
{
    struct winsize ws = {.ws_row = 24, .ws_col = cols};
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, &ws);
    assert_true(pid >= 0);
    if (pid == 0) {
        unsetenv("COLUMNS");
        execl(ASPEN_BIN, ASPEN_BIN, "jobs", "--db", db, (char *)NULL);
        _exit(127);
    }
    out o = {.buf = calloc(1, 1 << 16)};
    assert_non_null(o.buf);
    /* until the child closes the terminal (EIO on Linux), bounded */
    for (int i = 0; i < 300 && o.len < (1 << 16) - 1; i++) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, o.buf + o.len, (1 << 16) - 1 - o.len);
        if (n <= 0)
            break;
        o.len += (size_t)n;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(fd);
    o.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* CR LF -> LF, for expect_fits */
    size_t w = 0;
    for (size_t i = 0; i < o.len; i++)
        if (o.buf[i] != '\r')
            o.buf[w++] = o.buf[i];
    o.len = w;
    o.buf[w] = '\0';
    return o;
}

/* With no $COLUMNS, a terminal's own width: wider than 80 shows more, narrower hides columns. */
static void test_terminal_width(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/tty.db", g_dir);
    check_cmd(0, NULL,
              "'%s' submit --type echo --db '%s' --create --payload '{\"message\":\"%0150d\"}'",
              ASPEN_BIN, db, 9);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    out o = jobs_on_terminal(db, 120);
    expect_out(&o, 0, "RESULT / ERROR");
    expect_fits(&o, 120, "aspen jobs on a 120-column terminal");
    /* the result got the columns past 80 */
    bool wide = false;
    for (char *l = strtok(o.buf, "\n"); l; l = strtok(NULL, "\n"))
        wide = wide || strlen(l) > 100;
    if (!wide)
        fail_msg("no line over 100 columns on a 120-column terminal");
    free(o.buf);
    o = jobs_on_terminal(db, 50);
    expect_out(&o, 0, "hidden to fit 50 columns");
    expect_fits_ex(&o, 50, "aspen jobs on a 50-column terminal", true);
    free(o.buf);
}

/* ---- options: exact names, numbers -------------------------------------------------------------- */

static void test_exact_option_names(void **st)
{
    (void)st;
    /* a unique prefix used to be taken as the option it starts (getopt_long) */
    check_cmd(2, "error: unknown option '--pay' for aspen submit: options are taken by their whole "
              "name; did you mean '--payload'?",
              "'%s' submit --type echo --pay '{}' --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--limit'?", "'%s' jobs --lim 3 --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--follow'?", "'%s' logs --fol 1 --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--jobs'?", "'%s' bench engine --job 5", ASPEN_BIN);
    /* --name=value is checked the same way */
    check_cmd(2, "did you mean '--limit'?", "'%s' jobs --lim=3 --db '%s'", ASPEN_BIN, g_db);
    /* nothing was submitted by the refused one */
    out o = run_plain("'%s' jobs --json --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 0, "[]");
    free(o.buf);
    /* whole names still work, a value that looks like an option is a value, -- ends options */
    check_cmd(0, "(no jobs match)", "'%s' jobs --limit=3 --db '%s'", ASPEN_BIN, g_db);
    check_cmd(0, "(no jobs match)", "'%s' jobs --filter 'type:--pay' --limit 3 --db '%s'",
              ASPEN_BIN, g_db);
    check_cmd(2, "error: unknown option '--frobnicate' for aspen jobs",
              "'%s' jobs --frobnicate --db '%s'", ASPEN_BIN, g_db);
}

static void test_numeric_options(void **st)
{
    (void)st;
    /* one wording: the option, what was given, what is allowed */
    check_cmd(2, "error: --jobs wants a whole number from 1 to 100000000, not 'abc'",
              "'%s' bench engine --jobs abc", ASPEN_BIN);
    check_cmd(2, "error: --jobs wants a whole number from 1 to 100000000, not '0'",
              "'%s' bench engine --jobs 0", ASPEN_BIN);
    check_cmd(2, "error: --workers wants a whole number from 1 to 64, not '65'",
              "'%s' bench engine --workers 65", ASPEN_BIN);
    check_cmd(2, "error: --workers wants a whole number from 1 to 64, not '2x'",
              "'%s' bench engine --workers 2x", ASPEN_BIN);
    check_cmd(2, "error: --limit wants a whole number from 1 to", "'%s' jobs --limit 99999999999999999999 --db '%s'",
              ASPEN_BIN, g_db);
    check_cmd(2, "error: --count wants a whole number", "'%s' submit --type echo --count -3 --db '%s'",
              ASPEN_BIN, g_db);
    check_cmd(2, "error: --iterations wants a whole number from 10",
              "'%s' bench vm --iterations lots", ASPEN_BIN);
}

/* ---- submit --type, retry, logs --follow ------------------------------------------------------- */

static void test_submit_unknown_type(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/types.db", g_dir);
    check_cmd(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, db);
    /* refused at submit, naming the types there are and what to do, nothing stored */
    out o = run("'%s' submit --type nosuch --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 1, "error: no handler for job type 'nosuch' in aspen");
    assert_true(has(&o, "echo, checksum, sleep"));
    assert_true(has(&o, "aspen_engine_register_handler"));
    assert_true(has(&o, "--any-type"));
    free(o.buf);
    check_cmd(1, "(did you mean 'echo'?)", "'%s' submit --type ech --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "no handler for job type 'nosuch'",
              "'%s' cron add every-min '@every 1m' --type nosuch --db '%s'", ASPEN_BIN, db);
    o = run_plain("'%s' jobs --json --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "[]");
    free(o.buf);
    /* built-in types, a type that runs in a VM anyway, and --any-type are taken */
    check_cmd(0, NULL, "'%s' submit --type checksum --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' submit test-quiet-echo --type my-label --isolation --db '%s'",
              ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' submit --type mine --any-type --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' cron add every-min '@every 1m' --type mine --any-type --paused --db '%s'",
              ASPEN_BIN, db);
    o = run_plain("'%s' jobs --json --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "\"mine\"");
    assert_true(has(&o, "\"my-label\""));
    free(o.buf);
    check_cmd(0, "--any-type", "'%s' submit --help", ASPEN_BIN);
}

static void test_retry_succeeded_says_rerun(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/retry.db", g_dir);
    check_cmd(0, "1\n", "'%s' submit --type echo --db '%s' --create", ASPEN_BIN, db);
    check_cmd(0, "2\n", "'%s' submit --type echo --delay 1h --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' cancel 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "error: job 1 succeeded: aspen retry gives a failed job another attempt; to run "
              "this one again, aspen rerun 1 makes a new job of it",
              "'%s' retry 1 --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "error: job 2 was cancelled: aspen retry gives a failed job another attempt; to "
              "run this one again, aspen rerun 2",
              "'%s' retry 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "3\n", "'%s' rerun 1 --db '%s'", ASPEN_BIN, db);
    /* the neighbours: run-now of a finished job, rerun of an id that is not there */
    check_cmd(1, "(to run a finished job again: aspen rerun 1)", "'%s' run-now 1 --db '%s'",
              ASPEN_BIN, db);
    check_cmd(1, "no job 99 to rerun in", "'%s' rerun 99 --db '%s'", ASPEN_BIN, db);
    check_cmd(1, ": check the id (aspen jobs lists them)", "'%s' rerun 99 --db '%s'", ASPEN_BIN, db);
}

static void test_logs_follow_says_how_it_ended(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/follow.db", g_dir);
    check_cmd(0, "1\n", "'%s' submit test-fail --max-attempts 1 --db '%s' --create", ASPEN_BIN, db);
    check_cmd(0, "2\n", "'%s' submit --type echo --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "3\n", "'%s' submit --type echo --delay 1h --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' cancel 3 --db '%s'", ASPEN_BIN, db); /* the worker would wait 1h */
    /* followed while it is still queued: the worker runs it meanwhile, --follow waits for it */
    out o = run("'%s' worker --until-idle --quiet --db '%s' & '%s' logs --follow 1 --db '%s'; "
                "echo \"exit=$?\"; wait",
                ASPEN_BIN, db, ASPEN_BIN, db);
    expect_out(&o, 0, "aspen: job 1 failed after 1 attempt: ");
    assert_true(has(&o, "aspen show 1 has every attempt"));
    assert_true(has(&o, "exit=3\n"));
    free(o.buf);
    /* the end goes to stderr: stdout stays the log lines */
    o = run_plain("'%s' logs --follow 1 --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 3, NULL);
    assert_false(has(&o, "aspen: job 1"));
    free(o.buf);
    check_cmd(0, "aspen: job 2 succeeded after 1 attempt\n", "'%s' logs --follow 2 --db '%s'",
              ASPEN_BIN, db);
    check_cmd(0, "aspen: job 2 succeeded", "'%s' logs --follow --json 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(4, "aspen: job 3 cancelled after 0 attempts", "'%s' logs --follow 3 --db '%s'",
              ASPEN_BIN, db);
    /* without --follow: the lines, exit 0, whatever the job's end */
    o = run("'%s' logs 1 --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_false(has(&o, "aspen: job 1"));
    free(o.buf);
    check_cmd(0, "4 it\n", "'%s' logs --help", ASPEN_BIN);
}

/* ---- demo --------------------------------------------------------------------------------------- */

static void test_demo_without_kvm_submits_nothing(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/demo-nokvm.db", g_dir);
    check_cmd(1, "error: KVM not available: /nonexistent/kvm does not exist",
              "ASPEN_KVM_DEVICE=/nonexistent/kvm '%s' demo --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "nothing was submitted", "ASPEN_KVM_DEVICE=/nonexistent/kvm '%s' demo --db '%s'",
              ASPEN_BIN, db);
    /* not even the database was made */
    assert_int_not_equal(access(db, F_OK), 0);
}

static void test_demo_hints_name_its_db(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/demo.db", g_dir);
    out o = run("'%s' demo --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    char want[600];
    snprintf(want, sizeof want, "`aspen jobs --db %s`", db);
    expect_out(&o, 0, want);
    snprintf(want, sizeof want, "`aspen cron resume demo-heartbeat --db %s`", db);
    expect_out(&o, 0, want);
    snprintf(want, sizeof want, "`aspen queues --db %s`", db);
    expect_out(&o, 0, want);
    free(o.buf);
}

static int setup_all(void **state)
{
    (void)state;
    if (cli_scratch_dir(g_dir, sizeof g_dir, "fit") != 0)
        return -1;
    snprintf(g_db, sizeof g_db, "%s/fit.db", g_dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' jobs --db '%s' --create >/dev/null", ASPEN_BIN, g_db);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    return cli_remove_tree(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_fits_80),
        cmocka_unit_test(test_tables_fit),
        cmocka_unit_test(test_terminal_width),
        cmocka_unit_test(test_exact_option_names),
        cmocka_unit_test(test_numeric_options),
        cmocka_unit_test(test_submit_unknown_type),
        cmocka_unit_test(test_retry_succeeded_says_rerun),
        cmocka_unit_test(test_logs_follow_says_how_it_ended),
        cmocka_unit_test(test_demo_without_kvm_submits_nothing),
        cmocka_unit_test(test_demo_hints_name_its_db),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
