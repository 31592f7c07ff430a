/* tests/cli/test_cli_queues.c — the named-queue commands as a user types them (docs/QUEUES.md):
 * aspen submit --queue, aspen queue set / pause / resume, aspen queues (table and --json),
 * aspen show and jobs --json naming the queue, jobs --filter queue:NAME, and the refusals with
 * their words: a bad name, a bad rate, a limit that is not a positive number, nothing to set, a
 * mistyped queue ("did you mean"), a mistyped action, a bad --queues list for aspen worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_support.h"

#include <jansson.h>
#include <unistd.h>

static char g_db[256];

static void expect(out o, int status, const char *needle)
{
    if (o.status != status || (needle && !has(&o, needle)))
        fail_msg("wanted status %d and '%s', got %d: %s", status, needle ? needle : "", o.status,
                 o.buf);
    free(o.buf);
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
    expect(run("'%s' submit --type echo --queue emails --db '%s' --create 2>&1", A, g_db), 0, "1");
    expect(run("'%s' submit --type echo --count 2 --db '%s' 2>&1", A, g_db), 0, NULL);
    expect(run("'%s' queue set emails --limit 2 --rate 5/10s --db '%s' 2>&1", A, g_db), 0,
           "queue emails: limit 2 rate 5/10s");
    expect(run("'%s' queue pause emails --db '%s' 2>&1", A, g_db), 0, "queue emails paused");
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
    expect(run("'%s' queue set emails --db '%s' 2>&1", A, g_db), 2, "nothing to set");
    expect(run("'%s' queue pause emials --db '%s' 2>&1", A, g_db), 1, "did you mean emails?");
    expect(run("'%s' queue paus emails --db '%s' 2>&1", A, g_db), 2, "did you mean 'pause'?");
    expect(run("'%s' queue pause --limit 2 emails --db '%s' 2>&1", A, g_db), 2,
           "go with aspen queue set");
    expect(run("'%s' worker --queues 'a,b c' --until-idle --db '%s' 2>&1", A, g_db), 2,
           "--queues: queue name \"b c\" is not valid");
    expect(run("'%s' worker --queues , --until-idle --db '%s' 2>&1", A, g_db), 2,
           "--queues wants queue names");
    expect(run("'%s' jobs --filter 'queue:\"a b\"' --db '%s' 2>&1", A, g_db), 2,
           "queue name \"a b\" is not valid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_commands, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
