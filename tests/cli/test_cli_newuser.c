/* tests/cli/test_cli_newuser.c — issue 10's new-user trial (trial 23) on the real program: the
 * help texts say what the commands do (jobs --help names queue:NAME; pause and resume act on
 * every queue; worker --help's --db default is aspen --help's), time zone errors point to the
 * zoneinfo directory rather than timedatectl, the README and docs say what the trial had to find
 * out; `aspen queues` keeps two long names that differ only at the end apart and says it cut
 * them; and `aspen cancel --filter` accounts for a job that finished between its question and
 * the cancel, in the question's number format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/aspen-cli-newuser-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    out o = run_plain("rm -rf '%s'", g_dir);
    free(o.buf);
    return 0;
}

static void expect(out o, int status, const char *needle)
{
    if (o.status != status || (needle && !has(&o, needle)))
        fail_msg("wanted status %d and '%s', got %d: %s", status, needle ? needle : "", o.status,
                 o.buf);
    free(o.buf);
}

static void expect_not(out o, const char *needle)
{
    if (has(&o, needle))
        fail_msg("'%s' should not be there: %s", needle, o.buf);
    free(o.buf);
}

static void test_help_and_docs(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    expect(run("COLUMNS=200 '%s' jobs --help", A), 0, "guest:NAME queue:NAME tag:T");
    expect(run("'%s' --help", A), 0, "pause every queue for every worker on the database");
    expect(run("'%s' --help", A), 0, "resume every queue that aspen pause holds");
    expect_not(run("'%s' --help", A), "pause the queue");
    expect_not(run("'%s' --help", A), "resume the queue");
    /* one wording of the default database (worker's lacked $XDG_DATA_HOME) */
    expect(run("COLUMNS=200 '%s' worker --help", A), 0,
           "$XDG_DATA_HOME/aspen/aspen.db (~/.local/share/aspen/aspen.db)");
    /* zone errors: a listing that exists on every host with zones, not timedatectl */
    char db[128];
    snprintf(db, sizeof db, "%s/tz.db", g_dir);
    out o = run("'%s' cron add x '@daily' --type echo --tz Europe/Pari --db '%s' --create 2>&1", A,
                db);
    if (o.status != 2 || !has(&o, "did you mean Europe/Paris? (ls /usr/share/zoneinfo lists them)") ||
        has(&o, "timedatectl"))
        fail_msg("--tz Europe/Pari: exit %d: %s", o.status, o.buf);
    free(o.buf);
    expect_not(run("'%s' cron add x '@daily' --type echo --tz Nowhere/Atall --db '%s' 2>&1", A, db),
               "timedatectl");
    expect(run("'%s' cron add x '@daily' --type echo --tz UTC+05:30 --db '%s' 2>&1", A, db), 2,
           "ls /usr/share/zoneinfo lists them");
    /* the documents: filters name queue:, the README where make console writes and a private
     * PostgreSQL server */
    expect(run("grep -c 'queue:' '%s/docs/OPERATING.md'", ASPEN_SOURCE_DIR), 0, NULL);
    expect(run("grep -F 'guest:echo-worker queue:bulk tag:urgent' '%s/docs/OPERATING.md'",
               ASPEN_SOURCE_DIR), 0, "queue:bulk");
    expect(run("grep -F 'binary:NAME queue:NAME tag:T' '%s/docs/CONSOLE.md'", ASPEN_SOURCE_DIR), 0,
           "queue:NAME");
    expect(run("cat '%s/README.md'", ASPEN_SOURCE_DIR), 0, "~/.config/aspen/console.conf");
    expect(run("cat '%s/README.md'", ASPEN_SOURCE_DIR), 0, "~/.local/share/aspen/aspen.db");
    expect(run("cat '%s/README.md'", ASPEN_SOURCE_DIR), 0, "XDG_DATA_HOME=/tmp/try");
    expect(run("cat '%s/README.md'", ASPEN_SOURCE_DIR), 0, "$PG/initdb -D /tmp/aspen-pg");
    expect(run("cat '%s/README.md'", ASPEN_SOURCE_DIR), 0, "host=/tmp/aspen-pg port=5499");
}

/* Two queues that differ only at the end: at 80 columns both read very-long-queue-n... */
static void test_long_queue_names(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    char db[128];
    snprintf(db, sizeof db, "%s/q.db", g_dir);
    for (int y = 2026; y <= 2027; y++)
        expect(run("'%s' queue set very-long-queue-name-for-reports.%d --limit 3 --db '%s' "
                   "--create 2>&1", A, y, db), 0, NULL);
    out o = run("COLUMNS=80 '%s' queues --db '%s' 2>&1", A, db);
    if (o.status != 0 || !has(&o, "very-long...rts.2026 ") || !has(&o, "very-long...rts.2027 ") ||
        !has(&o, "(2 queue names cut to fit 80 columns, keeping both ends: --wide shows them "
                 "whole)"))
        fail_msg("aspen queues at 80 columns: exit %d:\n%s", o.status, o.buf);
    free(o.buf);
    /* the terminal's width is used: at 120 they are whole, and nothing is said */
    o = run("COLUMNS=120 '%s' queues --db '%s' 2>&1", A, db);
    if (o.status != 0 || !has(&o, "very-long-queue-name-for-reports.2027 ") || has(&o, "cut to fit"))
        fail_msg("aspen queues at 120 columns: exit %d:\n%s", o.status, o.buf);
    free(o.buf);
    expect(run("COLUMNS=80 '%s' queues --wide --db '%s' 2>&1", A, db), 0,
           "very-long-queue-name-for-reports.2026 ");
}

/* A job that finishes between the question and the cancel: the result says where it went, with
 * the question's thousands separators. */
static void test_cancel_accounts(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    char db[128];
    snprintf(db, sizeof db, "%s/c.db", g_dir);
    expect(run("'%s' submit --type echo --queue q --create-queue --delay 1h --count 1500 --db '%s' "
               "--create 2>&1", A, db), 0, NULL);
    /* the answer waits in a fifo until the question is out; then job 1 is cancelled by
     * another command (it is final: the filter's cancel cannot take it), and the answer goes */
    out o = run("cd '%s' && rm -f ans out rc && mkfifo ans || exit 1; "
                "( '%s' cancel --filter 'queue:q' --db '%s' <ans >out 2>&1; echo $? >rc ) & "
                "exec 3>ans; for i in $(seq 300); do grep -q 'Cancel ' out && break; "
                "sleep 0.1; done; '%s' cancel 1 --db '%s' >/dev/null 2>&1; echo y >&3; exec 3>&-; "
                "wait; cat out; echo; echo rc=$(cat rc)",
                g_dir, A, db, A, db);
    if (o.status != 0 || !has(&o, "Cancel 1,500 unfinished jobs matching 'queue:q'") ||
        !has(&o, "cancelled 1,499 jobs; 1 finished before it could be cancelled") ||
        !has(&o, "rc=0"))
        fail_msg("cancel --filter with a job finished meanwhile: exit %d:\n%s", o.status, o.buf);
    free(o.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help_and_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_queue_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_accounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
