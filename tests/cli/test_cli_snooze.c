/* tests/cli/test_cli_snooze.c — `aspen snooze` (issue 10), the real program as a separate process,
 * on SQLite and PostgreSQL: ID DURATION puts a queued or scheduled job off (scheduled, run_at about
 * now + DURATION, attempts and priority kept; --json says so), aspen run-now undoes it; a running
 * or finished job and an unknown id are refused with one error line (exit 1); hostile DURATIONs
 * ('', '-1s', '1e9d', a bare '10', 0, past 365d) and ids (0, -1, huge, abc) are usage errors
 * (exit 2) naming the bound or the form; --filter F DURATION asks as cancel --filter does (no
 * answer snoozes nothing, exit 1; --yes; --dry-run writes nothing), says how many and which, and
 * a filter matching nothing is exit 3. In-process echo and sleep jobs, no guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"
#include "cli_backend.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>





static void open_backend(cli_backend *b, bool pg)
{
    cli_backend_open(b, pg, "snooze", "");
    check_cmd(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, b->db);
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* aspen show ID --json, parsed (json_decref it). */
static json_t *show(const cli_backend *b, int id)
{
    out o = run_plain("'%s' show %d --json --db '%s'", ASPEN_BIN, id, b->db);
    expect_out(&o, 0, NULL);
    json_error_t je;
    json_t *v = json_loadb(o.buf, o.len, 0, &je);
    if (!v)
        fail_msg("not JSON (%s):\n%s", je.text, o.buf);
    free(o.buf);
    json_t *job = json_object_get(v, "job");
    if (job) { /* show may wrap the job with its attempts */
        json_incref(job);
        json_decref(v);
        return job;
    }
    return v;
}

static const char *str_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void one_job(bool pg)
{
    cli_backend b;
    open_backend(&b, pg);
    /* 1 succeeded; then paused: 2 queued (priority 4), 3 scheduled in an hour */
    check_cmd(0, NULL, "'%s' submit --type echo --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, NULL, "'%s' pause --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, "2", "'%s' submit --type echo --priority 4 --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, "3", "'%s' submit --type echo --delay 1h --db '%s'", ASPEN_BIN, b.db);

    long long before = now_ms();
    check_cmd(0, "job 2 snoozed by 10m: scheduled, it runs at ", "'%s' snooze 2 10m --db '%s'",
              ASPEN_BIN, b.db);
    json_t *j = show(&b, 2);
    assert_string_equal(str_of(j, "state"), "scheduled");
    long long run_at = (long long)json_integer_value(json_object_get(j, "run_at_ms"));
    assert_true(run_at >= before + 600000 - 2000 && run_at <= now_ms() + 600000 + 2000);
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 0);
    json_decref(j);
    /* --json; a scheduled job moves from now: an hour's delay becomes 1h30m from now */
    out o = run_plain("'%s' snooze 3 1h30m --json --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, "\"state\":\"scheduled\"");
    assert_non_null(strstr(o.buf, "\"delay_ms\":5400000"));
    free(o.buf);
    /* run-now undoes it */
    check_cmd(0, "job 2 queued: it runs now", "'%s' run-now 2 --db '%s'", ASPEN_BIN, b.db);

    /* refusals: finished, unknown (exit 1, one error line) */
    check_cmd(1, "error: job 1 is succeeded: it has finished, so there is nothing to snooze",
              "'%s' snooze 1 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(1, "no job 99 in", "'%s' snooze 99 10m --db '%s'", ASPEN_BIN, b.db);
    /* hostile DURATIONs and ids: usage errors, nothing changed */
    check_cmd(2, "DURATION is empty", "'%s' snooze 2 '' --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "DURATION '-1s' is negative", "'%s' snooze 2 -1s --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "'1e9d' is not a duration", "'%s' snooze 2 1e9d --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "DURATION '10' has no unit: write 10s, 10m", "'%s' snooze 2 10 --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(2, "puts nothing off", "'%s' snooze 2 0s --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "is too long: a snooze is at most 365d", "'%s' snooze 2 366d --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(2, "too long a duration", "'%s' snooze 2 99999999999999999999d --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(2, "'0' is not a job id", "'%s' snooze 0 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "'-1' is not a job id", "'%s' snooze -1 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "too large", "'%s' snooze 99999999999999999999 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "'abc' is not a job id", "'%s' snooze abc 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "needs a DURATION after the job ID", "'%s' snooze 2 --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "--yes goes with --filter F", "'%s' snooze 2 10m --yes --db '%s'", ASPEN_BIN,
              b.db);
    check_cmd(2, "unknown option '--bogus'", "'%s' snooze 2 10m --bogus --db '%s'", ASPEN_BIN,
              b.db);
    j = show(&b, 2);
    assert_string_equal(str_of(j, "state"), "queued");
    json_decref(j);

    /* a running job: refused, it runs now (job 3 cancelled first: the worker's --until-idle
     * waits for a scheduled job) */
    check_cmd(0, NULL, "'%s' cancel 3 --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, "4", "'%s' submit --type sleep --payload '{\"ms\":20000}' --priority 9 --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(0, NULL, "'%s' resume --db '%s'", ASPEN_BIN, b.db);
    char pidfile[800];
    snprintf(pidfile, sizeof pidfile, "/tmp/aspen-cli-snooze-%d-%d.pid", (int)getpid(), pg);
    check_cmd(0, NULL,
              "'%s' worker --workers 1 --until-idle --quiet --db '%s' >/dev/null 2>&1 & echo $! "
              "> '%s'",
              ASPEN_BIN, b.db, pidfile);
    bool running = false;
    for (int i = 0; i < 400 && !running; i++) {
        j = show(&b, 4);
        running = strcmp(str_of(j, "state"), "running") == 0;
        json_decref(j);
        if (!running)
            usleep(50 * 1000);
    }
    assert_true(running);
    check_cmd(1, "job 4 is running: it cannot be snoozed, it runs now",
              "'%s' snooze 4 10m --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, NULL, "'%s' cancel 4 --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, NULL, "for i in $(seq 600); do kill -0 $(cat '%s') 2>/dev/null || exit 0; "
                       "sleep 0.05; done; exit 1",
              pidfile);
    unlink(pidfile);
    cli_backend_close(&b);
}

static void by_filter(bool pg)
{
    cli_backend b;
    open_backend(&b, pg);
    check_cmd(0, NULL, "'%s' pause --db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, NULL, "'%s' submit --type echo --tag nightly --count 2 --db '%s'", ASPEN_BIN,
              b.db);
    check_cmd(0, NULL, "'%s' submit --type echo --tag nightly --delay 1h --db '%s'", ASPEN_BIN,
              b.db);
    check_cmd(0, NULL, "'%s' submit --type echo --db '%s'", ASPEN_BIN, b.db); /* 4: untagged */
    /* asks; no answer is no */
    check_cmd(1, "Snooze 3 waiting jobs matching 'tag:nightly' (2 queued, 1 scheduled), ids 1, "
                 "2, 3 by 2h",
              "'%s' snooze --filter tag:nightly 2h --db '%s' </dev/null", ASPEN_BIN, b.db);
    check_cmd(1, "nothing snoozed", "echo n | '%s' snooze --filter tag:nightly 2h --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(0, "would snooze 3 waiting jobs", "'%s' snooze --filter tag:nightly 2h --dry-run "
                                                "--db '%s'",
              ASPEN_BIN, b.db);
    json_t *j = show(&b, 1);
    assert_string_equal(str_of(j, "state"), "queued");
    json_decref(j);
    check_cmd(0, "snoozed 3 jobs by 2h", "echo y | '%s' snooze --filter tag:nightly 2h --db '%s'",
              ASPEN_BIN, b.db);
    for (int id = 1; id <= 3; id++) {
        j = show(&b, id);
        assert_string_equal(str_of(j, "state"), "scheduled");
        json_decref(j);
    }
    j = show(&b, 4);
    assert_string_equal(str_of(j, "state"), "queued");
    json_decref(j);
    /* job 3 was due in an hour: put off 2h from then, never brought earlier (trial 24) */
    j = show(&b, 3);
    long long at = (long long)json_integer_value(json_object_get(j, "run_at_ms"));
    json_decref(j);
    long long now = (long long)time(NULL) * 1000;
    assert_true(at - now > 2 * 3600000LL + 3000000LL); /* ~3 h ahead, not 2 */
    out o = run_plain("'%s' snooze --filter 'state:queued' 5m --yes --json --db '%s'", ASPEN_BIN,
                      b.db);
    expect_out(&o, 0, "\"snoozed\":1");
    free(o.buf);
    /* every match left as it was (its unique rule counts queued, not scheduled): nothing
     * snoozed, exit 3 as for no match (it said "snoozed 0 jobs", exit 0: trial 24) */
    check_cmd(0, NULL,
              "'%s' submit --type echo --tag uq --unique --unique-states queued --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(3, "snoozed 0 jobs by 5m", "'%s' snooze --filter tag:uq 5m --yes --db '%s'",
              ASPEN_BIN, b.db);
    /* nothing matches: exit 3, with --json too; a queue typo gets its note */
    check_cmd(3, "no waiting job matches tag:nosuch: nothing snoozed",
              "'%s' snooze --filter tag:nosuch 1h --yes --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, "\"snoozed\":0", "'%s' snooze --filter tag:nosuch 1h --yes --json --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(3, "no queue named nosuch", "'%s' snooze --filter queue:nosuch 1h --yes --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(3, "nothing snoozed", "'%s' snooze --filter state:running 1h --yes --db '%s'",
              ASPEN_BIN, b.db);
    /* bad forms */
    check_cmd(2, "--filter is empty", "'%s' snooze --filter '' 1h --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "needs a DURATION", "'%s' snooze --filter tag:nightly --db '%s'", ASPEN_BIN,
              b.db);
    check_cmd(2, "not both", "'%s' snooze 1 --filter tag:nightly 1h --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "say opposite things",
              "'%s' snooze --filter tag:nightly 1h --yes --dry-run --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "is too long", "'%s' snooze --filter tag:nightly 400d --yes --db '%s'",
              ASPEN_BIN, b.db);
    /* in the command list */
    check_cmd(0, "snooze ", "'%s' --help", ASPEN_BIN);
    cli_backend_close(&b);
}

static void test_one_job(void **s) { (void)s, one_job(false); }
static void test_one_job_pg(void **s) { (void)s, one_job(true); }
static void test_by_filter(void **s) { (void)s, by_filter(false); }
static void test_by_filter_pg(void **s) { (void)s, by_filter(true); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_job),   cmocka_unit_test(test_one_job_pg),
        cmocka_unit_test(test_by_filter), cmocka_unit_test(test_by_filter_pg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
