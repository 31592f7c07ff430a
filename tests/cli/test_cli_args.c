/* tests/cli/test_cli_args.c — every command's answer to arguments a user gets wrong, through the
 * real `aspen` program (issue 9/10 findings): a missing, extra, non-numeric, zero, negative or
 * too-large job id, and extra arguments to a command that takes none, each get exactly one
 * `error:` line saying what is wrong, a `usage:` line, and exit status 2, and nothing in the
 * database changes. Bad values (limits, durations, rates, cron fields) get the parser's specific
 * words. `aspen cancel` of a job that is already final says that it finished, in which state, and
 * that nothing changed, with exit status 3 (neither success nor a failure); with no ID and no
 * --filter it shows both forms. A mistyped guest or queue gets a "did you
 * mean"; a queue that does not exist is refused unless --create-queue. Needs no KVM: the jobs are
 * --type echo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_support.h"

#include <unistd.h>

static char g_db[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_db, sizeof g_db, "/tmp/aspen-cli-args-%d.db", (int)getpid());
    unlink(g_db);
    out o = run("'%s' submit --type echo --db '%s' --create", ASPEN_BIN, g_db);
    int ok = o.status == 0 && has(&o, "1");
    free(o.buf);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", g_db, g_db, g_db);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t count(const out *o, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = o->buf; (p = memmem(p, o->len - (size_t)(p - o->buf), needle, len));
         p += len)
        n++;
    return n;
}

/* What people type wrong, and the words that must say so ("!": a command without --db). */
static const struct {
    const char *args;
    const char *needle;
} usage_cases[] = {
    {"show", "aspen show needs a job ID"},
    {"show abc", "'abc' is not a job id: ids are whole numbers from 1"},
    {"show 12abc", "'12abc' is not a job id"},
    {"show ''", "an empty job id"},
    {"show 0", "'0' is not a job id: ids start at 1"},
    {"show -5", "'-5' is not an option of aspen show, nor a job id"},
    {"show 99999999999999999999999", "too large (ids are whole numbers from 1 to 9223372036854775807)"},
    {"show 1 2", "unexpected argument '2': aspen show takes a job ID"},
    {"logs", "aspen logs needs a job ID"},
    {"logs x", "'x' is not a job id"},
    {"logs 1 1", "unexpected argument '1'"},
    {"cancel", "aspen cancel needs a job ID"},
    {"cancel 0", "ids start at 1"},
    {"cancel 1 2", "unexpected argument '2'"},
    {"cancel 18446744073709551616", "too large"},
    {"rerun", "aspen rerun needs a job ID"},
    {"rerun -1", "'-1' is not an option of aspen rerun"},
    {"retry", "aspen retry needs a job ID, or --failed"},
    {"retry 1 2", "unexpected argument '2'"},
    {"retry --failed 3", "unexpected argument '3': aspen retry takes no arguments"},
    {"retry 1 --filter state:failed", "--filter goes with --failed"},
    {"run-now", "aspen run-now needs a job ID"},
    {"run-now 1 2", "unexpected argument '2': aspen run-now takes a job ID"},
    {"run-now abc", "'abc' is not a job id"},
    {"snooze", "aspen snooze needs a job ID and a DURATION, or --filter F and a DURATION"},
    {"snooze 1", "aspen snooze needs a DURATION after the job ID"},
    {"snooze 1 10m 2", "unexpected argument '2': aspen snooze takes a job ID and a DURATION"},
    {"snooze abc 10m", "'abc' is not a job id"},
    {"snooze 1 10", "DURATION '10' has no unit"},
    {"priority", "aspen priority needs a job ID and a priority N"},
    {"priority 1", "aspen priority needs a job ID and a priority N"},
    {"priority 1 5 6", "unexpected argument '6'"},
    {"priority abc 5", "'abc' is not a job id"},
    {"delete", "which jobs? give their ids or --filter F"},
    {"delete 1 x", "'x' is not a job id"},
    {"core", "aspen core needs a job ID"},
    {"core 1", "aspen core needs -o FILE"},
    {"core 0 -o /dev/null", "ids start at 1"},
    {"replay", "aspen replay needs a job ID"},
    {"replay 1 2", "unexpected argument '2'"},
    {"replay 1 --calls --set 1=2", "--calls lists the record and runs nothing, --set replays it"},
    {"pause now", "unexpected argument 'now': aspen pause takes no arguments"},
    {"resume now", "unexpected argument 'now': aspen resume takes no arguments"},
    {"engines x", "aspen engines takes no arguments"},
    {"queues x", "aspen queues takes no arguments"},
    {"metrics x", "aspen metrics takes no arguments"},
    {"worker x", "aspen worker takes no arguments"},
    {"demo x", "aspen demo takes no arguments"},
    {"console x", "aspen console takes no arguments"},
    {"jobs x", "unexpected argument 'x'"},
    {"!run", "aspen run needs one GUEST"},
    {"!run echo-worker extra", "unexpected argument 'extra'"},
    {"!run echo-worker --db x", "unknown option '--db' for aspen run"},
    {"!bench", "aspen bench needs a benchmark: vm or engine"},
    {"!bench vm engine", "unexpected argument 'engine'"},
    {"queue", "aspen queue needs an action and a queue NAME"},
    {"queue set", "aspen queue needs an action and a queue NAME: set|pause|resume|rm NAME"},
    {"queue set a b", "unexpected argument 'b'"},
    {"queue rm a b", "unexpected argument 'b'"},
    {"cron", "aspen cron needs a command"},
    {"cron rm", "aspen cron rm needs one schedule NAME"},
    {"cron rm a b", "aspen cron rm takes one schedule NAME"},
    {"cron list x y", "aspen cron list takes at most one QUEUE"}, /* one: the queue to list */
    {"cron add a", "aspen cron add needs a NAME and an EXPR"},
    {"submit", "say what to run: a GUEST, --source DIR or --type T"},
    {"submit a b", "unexpected argument 'b'"},
    {"submit --type echo --frobnicate", "unknown option '--frobnicate' for aspen submit"},
    /* the part of a compound option people remember gets its "did you mean" (issue 9) */
    {"submit --type echo --attempts 3",
     "unknown option '--attempts' for aspen submit: did you mean '--max-attempts'?"},
    {"submit --type echo --attempts=3", "did you mean '--max-attempts'?"},
    {"!bench engine --jbos 5", "unknown option '--jbos' for aspen bench engine: did you mean '--jobs'?"},
    /* which word is missing, or which was extra (trial 10: "set wants STATE and AGE" for both) */
    {"retention set failed", "aspen retention set needs an AGE (a duration, off or default)"},
    {"retention set", "aspen retention set needs a STATE and an AGE"},
    {"retention set failed 1h 2h", "unexpected argument '2h': aspen retention set takes one STATE"},
    /* two options for one setting: refused, naming both (trial 10: the last one won, silently) */
    {"queue set emails --limit 2 --no-limit",
     "--limit 2 and --no-limit both set the queue's limit: give one of them"},
    {"queue set emails --no-rate --rate 5/h",
     "--no-rate and --rate 5/h both set the queue's rate: give one of them"},
    {"purge", "purge needs --older-than DURATION or --state S"},
};

/* Bad values: the parser's specific words reach the user (the line itself says what to write). */
static const struct {
    const char *args;
    const char *needle;
} value_cases[] = {
    {"priority 1 abc", "the priority wants a whole number from -1000000 to 1000000, not 'abc'"},
    {"priority 1 99999999999", "the priority wants a whole number"},
    {"queue set q --limit 0", "--limit wants a whole number from 1 to 1000000, not '0'"},
    {"queue set q --limit -3", "--limit wants a whole number from 1 to 1000000, not '-3'"},
    {"queue set q --limit ten", "--limit wants a whole number from 1 to 1000000, not 'ten'"},
    {"queue set q --rate 10/fortnight", "the period \"fortnight\" is not a duration: write "
                                        "N/PERIOD"},
    /* a bare period has no unit: refused, saying what the period takes */
    {"queue set q --rate 10/10", "the period \"10\" is not a duration (it has no unit)"},
    {"queue set q --rate 10/8d", "at most 7 days"},
    {"queue set q --rate 0/s", "the count before '/' is not a positive number"},
    {"submit --type echo --count 0", "--count wants a whole number from 1 to 100000, not '0'"},
    {"submit --type echo --timeout -1", "--timeout wants milliseconds (a bare number) or a duration"},
    {"submit --type echo --max-attempts 0", "--max-attempts wants a whole number from 1 to 1000"},
    {"submit --type echo --unique-for 5fortnights", "--unique-for: '5fortnights' is not a duration"},
    {"submit --type echo --unique-for -1h", "--unique-for: '-1h' is not a duration"},
    {"submit --type echo --unique-for 0", "--unique-for '0' would count no job"},
    {"submit --type echo --unique-states queud", "'queud' is not a state (did you mean queued?)"},
    {"worker --workers 0", "--workers wants a whole number from 1 to"},
    {"jobs --limit 0", "--limit wants a whole number from 1"},
    {"retention set failed 3fortnights", "'3fortnights' is not a duration"},
    /* only final states are offered, so only they are suggested and listed */
    {"retention set faild 3d", "(did you mean failed?): name some of succeeded, failed, cancelled"},
    {"purge --state faild", "(did you mean failed?): name some of succeeded, failed, cancelled"},
    {"purge --older-than xyz", "--older-than: 'xyz' is not a duration"},
    {"metrics --since 1fortnight", "--since: '1fortnight' is not a duration"},
    /* a period's bare number is refused (it read as seconds here and milliseconds in --timeout:
     * `retention set succeeded 1` kept successes for one second) */
    {"retention set succeeded 1", "'1' has no unit: write 1s, 1m, 1h or 1d"},
    {"purge --older-than 5", "--older-than '5' has no unit: write 5s, 5m, 5h or 5d"},
    {"submit --type echo --unique-for 10", "--unique-for '10' has no unit"},
    {"metrics --since 60", "--since '60' has no unit"},
    {"cron add a '@daily' --type echo --grace 30", "--grace '30' has no unit"},
    {"worker --queues a,,b", "--queues 'a,,b' has an empty queue name"},
    {"worker --queues ,a", "--queues ',a' has an empty queue name"},
    /* all is accepted, so the list of what is says so (trial 10: it was left out) */
    {"retention set xyz 1h", "'xyz' is not a state: name some of succeeded, failed, cancelled, or all"},
    /* a schedule's zone means one thing on every host: not each host's own clock, and not an
     * empty word read as UTC (trial 10: both were accepted) */
    {"cron add a '@daily' --type echo --tz localtime",
     "time zone \"localtime\" is this host's own setting, not a zone"},
    {"cron add a '@daily' --type echo --tz ''",
     "time zone \"\" is empty: give an IANA name such as Europe/Berlin"},
    /* cancel's --yes and --dry-run are for --filter: an explicit id is asked nothing */
    {"cancel 1 --dry-run", "--dry-run goes with --filter F"},
    {"cancel --filter queued --dry-run --yes", "--yes and --dry-run say opposite things"},
};

static void check_case(const char *args, const char *needle, bool want_usage)
{
    bool no_db = args[0] == '!';
    out o = run("'%s' %s%s%s%s", ASPEN_BIN, args + no_db, no_db ? "" : " --db '",
                no_db ? "" : g_db, no_db ? "" : "'");
    /* exactly one error line, the words that say what is wrong, a usage hint, exit 2 */
    if (o.status != 2 || count(&o, "error: ") != 1 || !has(&o, needle) ||
        (want_usage && count(&o, "usage: ") != 1))
        fail_msg("aspen %s: want exit 2, one error line with \"%s\"%s; got exit %d:\n%s", args,
                 needle, want_usage ? " and one usage line" : "", o.status, o.buf);
    free(o.buf);
}

static void test_usage_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++)
        check_case(usage_cases[i].args, usage_cases[i].needle, true);
    for (size_t i = 0; i < sizeof value_cases / sizeof value_cases[0]; i++)
        check_case(value_cases[i].args, value_cases[i].needle, false);
    /* none of it changed the database: still the one job of setup, still queued */
    out o = run("'%s' jobs --json --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 0, "\"state\": \"queued\"");
    assert_int_equal(count(&o, "\"id\":"), 1);
    free(o.buf);
    o = run("'%s' queues --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 0, "default");
    assert_false(has(&o, "\nq "));
    free(o.buf);
}

/* The id rules hold for a usage error before any database is opened: a missing --db is not
 * reached, so the user hears about the id first. */
static void test_usage_before_db(void **state)
{
    (void)state;
    check_cmd(2, "'abc' is not a job id", "'%s' show abc --db /nonexistent/x.db", ASPEN_BIN);
    check_cmd(2, "aspen cancel needs a job ID", "'%s' cancel --db /nonexistent/x.db", ASPEN_BIN);
}

/* --db before the command, as aspen --help lists it beside the commands (trial 24: "'--db' is
 * not a command"): `aspen --db PATH COMMAND` and `--db=PATH` reach the command; alone it says
 * what it needs. */
static void test_db_before_command(void **state)
{
    (void)state;
    check_cmd(0, "\"state\": \"queued\"", "'%s' --db '%s' jobs --json", ASPEN_BIN, g_db);
    check_cmd(0, "job 1 ", "'%s' --db='%s' show 1", ASPEN_BIN, g_db);
    check_cmd(2, "--db PATH needs a command after it", "'%s' --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "--db PATH needs a command after it", "'%s' --db", ASPEN_BIN);
}

/* --timeout and --delay take a bare number of milliseconds (as always) or a duration with a unit
 * (the new-user trial typed --delay 1h and was refused); the job stores what was meant. */
static void test_time_options(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    out o = run("'%s' submit --type echo --delay 1h --timeout 2m --json --db '%s'", A, g_db);
    expect_out(&o, 0, "\"id\":");
    free(o.buf);
    o = run("'%s' jobs --json --db '%s'", A, g_db);
    assert_true(has(&o, "\"timeout_ms\": 120000"));
    assert_true(has(&o, "\"state\": \"scheduled\""));
    free(o.buf);
    check_cmd(0, NULL, "'%s' submit --type echo --timeout 1500 --db '%s'", A, g_db);
    o = run("'%s' jobs --json --db '%s'", A, g_db);
    assert_true(has(&o, "\"timeout_ms\": 1500"));
    free(o.buf);
    check_case("submit --type echo --delay 1x", "--delay wants milliseconds (a bare number) or a "
                                                "duration such as 500ms", false);
    check_case("submit --type echo --timeout 25h", "from 1ms to 24h, not '25h'", false);
}

/* aspen metrics --create makes a new database as aspen jobs --create does (trial 10: it failed
 * "does not exist" after --create had been let through); retention --help says what the pruner
 * does (batches bounded by time, docs/OPERATING.md), not "500 a transaction". */
static void test_metrics_create_and_retention_help(void **state)
{
    (void)state;
    char fresh[300];
    snprintf(fresh, sizeof fresh, "%s.metrics-new", g_db);
    unlink(fresh);
    check_cmd(1, "does not exist: check the path, or add --create", "'%s' metrics --db '%s'",
              ASPEN_BIN, fresh);
    check_cmd(0, "(nothing finished in that time)", "'%s' metrics --db '%s' --create", ASPEN_BIN,
              fresh);
    check_cmd(0, "(nothing finished in that time)", "'%s' metrics --db '%s'", ASPEN_BIN, fresh);
    unlink(fresh);
    out o = run("'%s' retention --help", ASPEN_BIN);
    expect_out(&o, 0, "in short transactions bounded by\ntime, not by count");
    assert_false(has(&o, "500 a transaction"));
    free(o.buf);
}

static void test_cancel_final(void **state)
{
    (void)state;
    check_cmd(0, "job 1 cancelled", "'%s' cancel 1 --db '%s'", ASPEN_BIN, g_db);
    out o = run("'%s' cancel 1 --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 3, "job 1 already finished (cancelled at ");
    assert_true(has(&o, "nothing was changed"));
    assert_false(has(&o, "error:"));
    free(o.buf);
    check_cmd(0, "cancelled", "'%s' show 1 --db '%s'", ASPEN_BIN, g_db);
    /* a succeeded job: a worker runs a second one to its end */
    check_cmd(0, "2", "'%s' submit --type echo --db '%s'", ASPEN_BIN, g_db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, g_db);
    o = run("'%s' cancel 2 --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 3, "job 2 already finished (succeeded at ");
    assert_true(has(&o, "): nothing was changed (a finished job stays as it is"));
    assert_true(has(&o, "aspen rerun 2 runs it again"));
    free(o.buf);
    /* no id and no --filter: a usage error that shows both forms (trial 10: only the ID one) */
    o = run("'%s' cancel --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 2, "error: aspen cancel needs a job ID or --filter F");
    assert_true(has(&o, "usage: aspen cancel ID [--db PATH]"));
    assert_true(has(&o, "aspen cancel --filter F [--yes | --dry-run] [--db PATH]"));
    free(o.buf);
    /* a job that does not exist is an error (1), not "nothing to do" */
    check_cmd(1, "error: no job 99", "'%s' cancel 99 --db '%s'", ASPEN_BIN, g_db);
}

/* A mistyped guest names the one meant, from the guest directory, in submit and in run. */
static void test_guest_did_you_mean(void **state)
{
    (void)state;
    check_cmd(1, "no guest named echo-workr in ", "'%s' submit echo-workr --db '%s'", ASPEN_BIN,
              g_db);
    check_cmd(1, "did you mean echo-worker?", "'%s' submit echo-workr --db '%s'", ASPEN_BIN, g_db);
    check_cmd(1, "did you mean echo-worker?", "'%s' run echo-workr", ASPEN_BIN);
    /* nothing near: no suggestion, the way to make one */
    out o = run("'%s' submit qqqqzzzzxx --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 1, "build it with scripts/build-guest.sh");
    assert_false(has(&o, "did you mean"));
    free(o.buf);
    o = run("'%s' jobs --json --db '%s'", ASPEN_BIN, g_db);
    assert_int_equal(count(&o, "\"id\":"), 1); /* none of them made a job */
    free(o.buf);
}

/* aspen submit --queue: a queue that does not exist is refused with a "did you mean" unless
 * --create-queue; default, declared and existing queues are taken; worker --queues warns. */
static void test_queue_rule(void **state)
{
    (void)state;
    const char *A = ASPEN_BIN;
    check_cmd(0, "queue emails", "'%s' queue set emails --limit 2 --db '%s'", A, g_db);
    out o = run("'%s' submit --type echo --queue emials --db '%s'", A, g_db);
    expect_out(&o, 1, "error: --queue: no queue named emials (did you mean emails?)");
    assert_true(has(&o, "add --create-queue"));
    assert_int_equal(count(&o, "error: "), 1);
    free(o.buf);
    o = run("'%s' queues --json --db '%s'", A, g_db);
    assert_false(has(&o, "emials")); /* the refusal made nothing */
    free(o.buf);
    check_cmd(0, "2", "'%s' submit --type echo --queue emails --db '%s'", A, g_db); /* declared */
    check_cmd(0, "3", "'%s' submit --type echo --queue default --db '%s'", A, g_db);
    check_cmd(1, "no queue named bulk", "'%s' submit --type echo --queue bulk --db '%s'", A, g_db);
    check_cmd(0, "4", "'%s' submit --type echo --queue bulk --create-queue --db '%s'", A, g_db);
    check_cmd(0, "5", "'%s' submit --type echo --queue bulk --db '%s'", A, g_db); /* it has jobs */
    /* --jsonl takes the same rule */
    check_cmd(1, "no queue named bulkk (did you mean bulk?)",
              "echo '{}' | '%s' submit --type echo --jsonl - --queue bulkk --db '%s'", A, g_db);
    o = run("'%s' worker --queues bulkk --until-idle --quiet --db '%s'", A, g_db);
    expect_out(&o, 0, "warning: --queues: no queue named bulkk (did you mean bulk?)");
    free(o.buf);
    o = run("'%s' jobs --json --db '%s'", A, g_db);
    assert_int_equal(count(&o, "\"id\":"), 5);
    free(o.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_time_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_before_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_before_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_create_and_retention_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_did_you_mean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_rule, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
