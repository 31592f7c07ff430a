/* tests/cli/test_cli_trial23.c — what a new user's trial of the CLI found (issue 10, trial 23), on
 * SQLite and on PostgreSQL (a fresh database of the tests' private server, ctest fixture "pg"):
 *   - aspen queues' DONE/MIN reads "-" (not ">=0") for a queue with none among the newest 100,000
 *     jobs when more were made in the last minute; --json keeps a number and throughput_capped;
 *   - names with UTF-8 (queue, schedule, zone, filter) are quoted as typed, bad bytes as \xNN;
 *   - a name no queue or schedule may have is a usage error (exit 2) in cron and queue alike;
 *   - a backwards cron range (5-0, 5-0/2) is refused naming the field; 7-7, 0-7 are taken;
 *   - aspen cron list NAME says it takes a queue, and names cron show for a schedule's name;
 *   - --tz UTC+5 is refused as an offset, naming Etc/GMT-5, not "did you mean UTC";
 *   - retry --failed --filter queue:TYPO says "did you mean" as jobs, cancel and delete do;
 *   - delete --filter and purge exit 3 when nothing matched, as cancel --filter and retry do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"
#include "cli_backend.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>





/* The database made, as a user's first command makes it. */
static void open_backend(cli_backend *b, bool pg, const char *tag)
{
    cli_backend_open(b, pg, "t23", tag);
    check_cmd(0, "queue emails", "'%s' queue set emails --limit 2 --db '%s' --create", ASPEN_BIN,
              b->db);
}

/* The output holds none of needle. */
static void lacks(const out *o, const char *needle)
{
    if (has(o, needle))
        fail_msg("did not want \"%s\" in:\n%s", needle, o->buf);
}

/* 1. DONE/MIN of an idle queue when the count is capped. */
static void queues_capped(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "capped");
    /* 100,000 jobs made this minute: the count looks at no more than the newest 100,000 */
    check_cmd(0, NULL, "'%s' submit --type echo --count 100000 --db '%s' >/dev/null", ASPEN_BIN,
              b.db);
    out o = run_plain("'%s' queues --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, "DONE/MIN");
    lacks(&o, ">=0");
    /* the idle queue's row ends in "-", as a person reads "none counted" */
    const char *row = strstr(o.buf, "\nemails ");
    assert_non_null(row);
    const char *eol = strchr(row + 1, '\n');
    assert_non_null(eol);
    if (!(eol[-1] == '-' && eol[-2] == ' '))
        fail_msg("the emails row does not end in ' -':\n%s", o.buf);
    free(o.buf);
    o = run_plain("'%s' queues --json --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, NULL);
    json_error_t je;
    json_t *arr = json_loads(o.buf, 0, &je);
    assert_non_null(arr);
    size_t i;
    json_t *q;
    bool seen = false;
    json_array_foreach(arr, i, q) {
        /* a number, 0, with the cap said beside it */
        json_t *n = json_object_get(q, "finished_last_min");
        assert_true(json_is_integer(n));
        assert_int_equal(json_integer_value(n), 0);
        assert_true(json_is_true(json_object_get(q, "throughput_capped")));
        seen = true;
    }
    assert_true(seen);
    json_decref(arr);
    free(o.buf);
    /* the help says what - and >=N mean */
    check_cmd(0, ">=N is at least N, - none among them", "'%s' queues --help", ASPEN_BIN);
    cli_backend_close(&b);
}

/* 2 and 3. UTF-8 names quoted as typed; bad names exit 2 in cron and queue alike. */
static void names(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "names");
    out o = run("'%s' queue set 'caf\xc3\xa9' --limit 2 --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "queue name \"caf\xc3\xa9\" is not valid");
    lacks(&o, "caf??");
    free(o.buf);
    o = run("'%s' queue pause 'caf\xc3\xa9' --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "queue name \"caf\xc3\xa9\" is not valid");
    free(o.buf);
    /* the same mistake in cron: exit 2 too (it was 1), and the name as typed */
    o = run("'%s' cron add 'caf\xc3\xa9' '@every 1m' --type echo --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "schedule name \"caf\xc3\xa9\" is not allowed");
    lacks(&o, "caf??");
    free(o.buf);
    const char *subs[] = {"rm", "pause", "resume", "run", "runs", "show"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        o = run("'%s' cron %s 'caf\xc3\xa9' --db '%s'", ASPEN_BIN, subs[i], b.db);
        expect_out(&o, 2, "schedule name \"caf\xc3\xa9\" is not allowed");
        free(o.buf);
    }
    /* a name that could be one but is not there: refused, 1, in both */
    check_cmd(1, "no schedule named \"nosuch\"", "'%s' cron rm nosuch --db '%s'", ASPEN_BIN, b.db);
    check_cmd(1, "no queue named nosuch", "'%s' queue pause nosuch --db '%s'", ASPEN_BIN, b.db);
    /* a byte that is not UTF-8 is shown as \xNN, never raw, never '?' */
    o = run("'%s' queue set \"$(printf 'bad\\377\\033[31m')\" --limit 2 --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "queue name \"bad\\xff\\x1b[31m\" is not valid");
    lacks(&o, "\x1b");
    free(o.buf);
    o = run("'%s' cron add z '@every 1m' --type echo --tz 'Europe/B\xc3\xa9rlin' --db '%s'",
            ASPEN_BIN, b.db);
    expect_out(&o, 2, "time zone \"Europe/B\xc3\xa9rlin\"");
    free(o.buf);
    o = run("'%s' cron add z '@every 1m' --type echo --queue 'caf\xc3\xa9' --db '%s'", ASPEN_BIN,
            b.db);
    expect_out(&o, 2, "queue name \"caf\xc3\xa9\" is not valid");
    free(o.buf);
    o = run("'%s' jobs --filter 'queue:caf\xc3\xa9' --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "queue name \"caf\xc3\xa9\" is not valid");
    free(o.buf);
    cli_backend_close(&b);
}

/* 4. Backwards ranges are refused naming the field; the edge cases that mean something are not. */
static void cron_ranges(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "ranges");
    check_cmd(2, "cron expression \"0 0 * * 5-0\": day-of-week range 5-0 goes backwards: write "
                 "the smaller value first (Sunday is 0 or 7: 5-7 runs Friday to Sunday)",
              "'%s' cron add w '0 0 * * 5-0' --type echo --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "day-of-week range 5-0/2 goes backwards",
              "'%s' cron add w '0 0 * * 5-0/2' --type echo --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "hour range 22-2 goes backwards",
              "'%s' cron add w '0 22-2 * * *' --type echo --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "minute step 0 in */0: a step must be 1 or more",
              "'%s' cron add w '*/0 * * * *' --type echo --db '%s'", ASPEN_BIN, b.db);
    /* nothing of the refused ones was stored */
    check_cmd(0, "(no schedules", "'%s' cron list --db '%s'", ASPEN_BIN, b.db);
    /* 7-7 is Sunday, 0-7 every day, FRI-SUN (by name) Friday to Sunday */
    check_cmd(0, "schedule sun added; next run", "'%s' cron add sun '0 0 * * 7-7' --type echo "
              "--db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, "schedule all added", "'%s' cron add all '0 0 * * 0-7' --type echo --db '%s'",
              ASPEN_BIN, b.db);
    check_cmd(0, "schedule wkend added", "'%s' cron add wkend '0 0 * * FRI-SUN' --type echo "
              "--db '%s'", ASPEN_BIN, b.db);
    cli_backend_close(&b);
}

/* 5. cron list NAME: a queue is what it takes; a schedule's name gets cron show. */
static void cron_list_arg(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "list");
    check_cmd(0, "schedule nightly added", "'%s' cron add nightly '0 3 * * *' --type echo "
              "--db '%s'", ASPEN_BIN, b.db);
    check_cmd(0, "schedule mail added", "'%s' cron add mail '0 4 * * *' --type echo "
              "--queue emails --db '%s'", ASPEN_BIN, b.db);
    out o = run("'%s' cron list nightly --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 1, "aspen cron list takes a QUEUE (it lists the schedules whose jobs go there), "
                      "and nightly is a schedule, not a queue: aspen cron show nightly");
    free(o.buf);
    check_cmd(1, "aspen cron list takes a QUEUE (it lists the schedules whose jobs go there): no "
                 "queue named emials (did you mean emails?)",
              "'%s' cron list emials --db '%s'", ASPEN_BIN, b.db);
    /* a queue lists its own schedules only */
    o = run("'%s' cron list emails --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, "mail ");
    lacks(&o, "nightly");
    free(o.buf);
    check_cmd(0, "(no schedule enqueues to queue default", "'%s' cron list default --db '%s' "
              "; '%s' cron rm nightly --db '%s' >/dev/null; '%s' cron list default --db '%s'",
              ASPEN_BIN, b.db, ASPEN_BIN, b.db, ASPEN_BIN, b.db);
    /* what it names exists: one schedule, its settings */
    o = run("'%s' cron show mail --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, "expression  0 4 * * *");
    expect_out(&o, 0, "queue       emails");
    free(o.buf);
    o = run_plain("'%s' cron show mail --json --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 0, "\"name\": \"mail\"");
    expect_out(&o, 0, "\"queue\": \"emails\"");
    free(o.buf);
    check_cmd(1, "no schedule named \"mial\": did you mean mail?",
              "'%s' cron show mial --db '%s'", ASPEN_BIN, b.db);
    check_cmd(2, "aspen cron list takes at most one QUEUE", "'%s' cron list a b --db '%s'",
              ASPEN_BIN, b.db);
    cli_backend_close(&b);
}

/* 6. A UTC offset is not a zone. */
static void tz_offsets(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "tz");
    out o = run("'%s' cron add z '0 0 * * *' --type echo --tz UTC+5 --db '%s'", ASPEN_BIN, b.db);
    expect_out(&o, 2, "time zone \"UTC+5\" is a UTC offset, not an IANA zone name: offsets are not "
                      "accepted");
    expect_out(&o, 2, "Etc/GMT-5 for a fixed UTC+05:00");
    lacks(&o, "did you mean UTC");
    free(o.buf);
    check_cmd(0, "+05:00", "'%s' cron add z '0 0 * * *' --type echo --tz Etc/GMT-5 --db '%s'",
              ASPEN_BIN, b.db);
    cli_backend_close(&b);
}

/* 7 and 8. One "did you mean" for a filter's queue, and exit 3 when nothing matched. */
static void filters_and_nothing(bool pg)
{
    cli_backend b;
    open_backend(&b, pg, "filter");
    const char *hint = "the filter's queue:emials matched nothing: no queue named emials (did you "
                       "mean emails?)";
    check_cmd(0, hint, "'%s' jobs --filter queue:emials --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, hint, "'%s' cancel --filter queue:emials --yes --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, hint, "'%s' retry --failed --filter queue:emials --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, hint, "'%s' delete --filter queue:emials --yes --db '%s'", ASPEN_BIN, b.db);
    /* nothing matched: 3 for delete and purge too, --dry-run and --json included */
    check_cmd(3, "no finished job matches 'queue:emails'",
              "'%s' delete --filter queue:emails --yes --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, "nothing to purge: no finished job older than 1d matched; nothing deleted",
              "'%s' purge --older-than 1d --yes --db '%s'", ASPEN_BIN, b.db);
    check_cmd(3, "nothing to purge", "'%s' purge --older-than 1d --dry-run --db '%s'", ASPEN_BIN,
              b.db);
    check_cmd(3, "\"total\": 0", "'%s' purge --state failed --json --yes --db '%s'", ASPEN_BIN,
              b.db);
    /* something to delete: 0, as before */
    check_cmd(0, NULL, "'%s' submit --type echo --queue emails --db '%s' >/dev/null && '%s' "
              "cancel --filter queue:emails --yes --db '%s'", ASPEN_BIN, b.db, ASPEN_BIN, b.db);
    check_cmd(0, "deleted 1 job", "'%s' delete --filter queue:emails --yes --db '%s'", ASPEN_BIN,
              b.db);
    cli_backend_close(&b);
}

static void test_queues_capped(void **s) { (void)s, queues_capped(false); }
static void test_queues_capped_pg(void **s) { (void)s, queues_capped(true); }
static void test_names(void **s) { (void)s, names(false); }
static void test_names_pg(void **s) { (void)s, names(true); }
static void test_cron_ranges(void **s) { (void)s, cron_ranges(false); }
static void test_cron_ranges_pg(void **s) { (void)s, cron_ranges(true); }
static void test_cron_list_arg(void **s) { (void)s, cron_list_arg(false); }
static void test_cron_list_arg_pg(void **s) { (void)s, cron_list_arg(true); }
static void test_tz_offsets(void **s) { (void)s, tz_offsets(false); }
static void test_tz_offsets_pg(void **s) { (void)s, tz_offsets(true); }
static void test_filters_and_nothing(void **s) { (void)s, filters_and_nothing(false); }
static void test_filters_and_nothing_pg(void **s) { (void)s, filters_and_nothing(true); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queues_capped),       cmocka_unit_test(test_queues_capped_pg),
        cmocka_unit_test(test_names),               cmocka_unit_test(test_names_pg),
        cmocka_unit_test(test_cron_ranges),         cmocka_unit_test(test_cron_ranges_pg),
        cmocka_unit_test(test_cron_list_arg),       cmocka_unit_test(test_cron_list_arg_pg),
        cmocka_unit_test(test_tz_offsets),          cmocka_unit_test(test_tz_offsets_pg),
        cmocka_unit_test(test_filters_and_nothing), cmocka_unit_test(test_filters_and_nothing_pg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
