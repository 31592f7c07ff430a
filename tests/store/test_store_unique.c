/* test_store_unique.c — unique jobs on both backends (issue 10): a duplicate returns the existing
 * job and writes nothing; keys given, derived from the payload (key order and spacing do not
 * matter) or from chosen fields; the period and the states that count; duplicates within a batch;
 * keys gone with their jobs; bad rules refused with a reason; and 8 processes submitting the same
 * unique job 1,000 times each at once create exactly one job. Also the shared parsers (states,
 * durations) the CLI and console use for the rule. */
#include "helpers.h"
#include "sqlite_store.h"

#include <sys/wait.h>

static aspen_store_submitted submit_u(aspen_store *s, const char *type, const char *payload,
                                      const aspen_store_unique *u, int64_t now)
{
    aspen_store_job_spec spec = {.type = type, .payload = payload, .unique = u};
    aspen_store_submitted out = {0};
    aspen_store_error e = {0};
    int rc = aspen_store_submit_ex(s, &spec, 1, now, &out, &e);
    if (rc != 0)
        fail_msg("submit: %d %s", rc, e.msg);
    return out;
}

static int64_t count_all(aspen_store *s)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_store_error e = {0};
    if (aspen_store_counts(s, c, &e) != 0)
        fail_msg("counts: %s", e.msg);
    int64_t n = 0;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        n += c[i];
    return n;
}

static void test_duplicate_returns_existing(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "report:2026-12-02"};
    aspen_store_submitted a = submit_u(f->s, "echo", "{}", &u, T0);
    assert_false(a.duplicate);
    assert_int_equal(a.state, ASPEN_STORE_QUEUED);
    aspen_store_submitted b = submit_u(f->s, "echo", "{\"other\":1}", &u, T0 + 3000);
    assert_true(b.duplicate);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.state, ASPEN_STORE_QUEUED);
    assert_int_equal(b.created_at_ms, T0);
    assert_int_equal(count_all(f->s), 1);
    /* the key is the whole key: another type with it is the same job */
    aspen_store_submitted c = submit_u(f->s, "checksum", "{}", &u, T0 + 4000);
    assert_true(c.duplicate);
    aspen_store_unique u2 = {.key = "report:2026-12-03"};
    aspen_store_submitted d = submit_u(f->s, "echo", "{}", &u2, T0 + 5000);
    assert_false(d.duplicate);
    assert_int_not_equal(d.id, a.id);
    /* without a rule nothing is looked up */
    assert_false(submit_u(f->s, "echo", "{}", NULL, T0).duplicate);
    assert_int_equal(count_all(f->s), 3);

    char *key = NULL;
    assert_int_equal(aspen_store_job_unique_key(f->s, a.id, &key, NULL), 0);
    assert_string_equal(key, "report:2026-12-02");
    free(key);
    key = (char *)"x";
    int64_t plain = submit_u(f->s, "echo", "{}", NULL, T0).id;
    assert_int_equal(aspen_store_job_unique_key(f->s, plain, &key, NULL), 0);
    assert_null(key);

    char msg[600];
    aspen_store_duplicate_message("report:2026-12-02", &b, T0 + 3000, msg, sizeof msg);
    char want[200];
    snprintf(want, sizeof want,
             "job %lld already exists for unique key report:2026-12-02 (queued, submitted 3 s "
             "ago); not submitting another",
             (long long)a.id);
    assert_string_equal(msg, want);
}

static void test_derived_keys(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {0};
    aspen_store_submitted a = submit_u(f->s, "echo", "{\"a\":1,\"b\":[1,2]}", &u, T0);
    /* the same object, other key order and spacing */
    aspen_store_submitted b = submit_u(f->s, "echo", " { \"b\" : [1, 2], \"a\" : 1 } ", &u, T0);
    assert_true(b.duplicate);
    assert_int_equal(b.id, a.id);
    /* another value, another type: other jobs */
    assert_false(submit_u(f->s, "echo", "{\"a\":2,\"b\":[1,2]}", &u, T0).duplicate);
    assert_false(submit_u(f->s, "checksum", "{\"a\":1,\"b\":[1,2]}", &u, T0).duplicate);
    /* another guest name: another job */
    aspen_store_job_spec g = {.type = "echo", .payload = "{\"a\":1,\"b\":[1,2]}", .unique = &u,
                              .binary_name = "other-guest"};
    aspen_store_submitted out = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &g, 1, T0, &out, NULL), 0);
    assert_false(out.duplicate);

    /* fields: only those count; a missing field and a null one differ */
    aspen_store_unique fu = {.fields = "user, order.id"};
    aspen_store_submitted c =
        submit_u(f->s, "echo", "{\"user\":\"al\",\"order\":{\"id\":7},\"at\":1}", &fu, T0);
    assert_false(c.duplicate);
    aspen_store_submitted d =
        submit_u(f->s, "echo", "{\"at\":2,\"order\":{\"id\":7,\"x\":0},\"user\":\"al\"}", &fu, T0);
    assert_true(d.duplicate);
    assert_int_equal(d.id, c.id);
    assert_false(submit_u(f->s, "echo", "{\"user\":\"al\",\"order\":{\"id\":8}}", &fu, T0).duplicate);
    aspen_store_submitted e1 = submit_u(f->s, "echo", "{\"user\":\"al\"}", &fu, T0);
    assert_false(e1.duplicate);
    aspen_store_submitted e2 = submit_u(f->s, "echo", "{\"user\":\"al\",\"order\":{\"id\":null}}", &fu, T0);
    assert_false(e2.duplicate);
    assert_true(submit_u(f->s, "echo", "{\"user\":\"al\",\"z\":1}", &fu, T0).duplicate);
    /* none of the fields in the payload (a typo in the names): refused, not one key for all */
    aspen_store_unique typo = {.fields = "nosuch"};
    aspen_store_job_spec t = {.type = "echo", .payload = "{\"day\":\"t1\"}", .unique = &typo};
    aspen_store_submitted tout = {0};
    aspen_store_error te = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &t, 1, T0, &tout, &te), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(te.msg, "none of the unique fields 'nosuch'"));

    char k1[ASPEN_STORE_UNIQUE_KEY_MAX + 1], k2[ASPEN_STORE_UNIQUE_KEY_MAX + 1];
    aspen_store_job_spec s1 = {.type = "echo", .payload = "{\"a\":1}", .unique = &u};
    aspen_store_job_spec s2 = {.type = "echo", .payload = "{ \"a\":1 }", .unique = &u};
    assert_int_equal(aspen_store_unique_key(&s1, k1, sizeof k1, NULL), 0);
    assert_int_equal(aspen_store_unique_key(&s2, k2, sizeof k2, NULL), 0);
    assert_string_equal(k1, k2);
    assert_int_equal(strncmp(k1, "sha256:", 7), 0);
    assert_int_equal(strlen(k1), 71);
}

static void test_period(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "k", .period_ms = 600000}; /* 10 min */
    aspen_store_submitted a = submit_u(f->s, "echo", "{}", &u, T0);
    assert_true(submit_u(f->s, "echo", "{}", &u, T0 + 599999).duplicate);
    /* created exactly 10 minutes ago no longer counts: a new job, and it is the one after */
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, T0 + 600000);
    assert_false(b.duplicate);
    assert_int_not_equal(b.id, a.id);
    aspen_store_submitted c = submit_u(f->s, "echo", "{}", &u, T0 + 600001);
    assert_true(c.duplicate);
    assert_int_equal(c.id, b.id);
    /* no period: any age counts */
    aspen_store_unique forever = {.key = "k"};
    aspen_store_submitted d = submit_u(f->s, "echo", "{}", &forever, T0 + 86400000LL * 365);
    assert_true(d.duplicate);
    assert_int_equal(d.id, b.id); /* the newest job of the key */
}

static void test_states(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "s"}; /* queued, scheduled, running */
    int64_t t = T0;
    aspen_store_submitted a = submit_u(f->s, "echo", "{}", &u, t);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, t + 1, &id), 1);
    assert_int_equal(id, a.id);
    aspen_store_submitted r = submit_u(f->s, "echo", "{}", &u, t + 2);
    assert_true(r.duplicate);
    assert_int_equal(r.state, ASPEN_STORE_RUNNING);
    assert_int_equal(complete_one(f->s, f->engine, a.id, ASPEN_STORE_OUTCOME_SUCCESS, 0, t + 3), 0);
    /* succeeded does not count by default: a new job */
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, t + 4);
    assert_false(b.duplicate);
    /* with succeeded counting, within the period, the finished one would block a new one;
     * the newest of the key is b (queued), found first */
    aspen_store_unique done = {.key = "s",
                               .period_ms = 60000,
                               .states = 1u << ASPEN_STORE_SUCCEEDED};
    aspen_store_submitted c = submit_u(f->s, "echo", "{}", &done, t + 5);
    assert_true(c.duplicate);
    assert_int_equal(c.id, a.id);
    assert_int_equal(c.state, ASPEN_STORE_SUCCEEDED);
    /* once the period is over, the finished job no longer blocks */
    aspen_store_submitted d = submit_u(f->s, "echo", "{}", &done, t + 60000);
    assert_false(d.duplicate);
    /* scheduled counts by default */
    aspen_store_unique sch = {.key = "later"};
    aspen_store_job_spec later = {.type = "echo", .run_at_ms = t + 3600000, .unique = &sch};
    aspen_store_submitted e = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &later, 1, t, &e, NULL), 0);
    assert_int_equal(e.state, ASPEN_STORE_SCHEDULED);
    aspen_store_submitted g = submit_u(f->s, "echo", "{}", &sch, t + 1);
    assert_true(g.duplicate);
    assert_int_equal(g.state, ASPEN_STORE_SCHEDULED);
    /* cancelled does not count by default */
    assert_int_equal(aspen_store_cancel(f->s, e.id, t + 2, NULL, NULL), 0);
    assert_false(submit_u(f->s, "echo", "{}", &sch, t + 3).duplicate);
}

static void test_batch(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "b"};
    aspen_store_job_spec specs[4] = {
        {.type = "echo", .unique = &u},
        {.type = "echo"},
        {.type = "echo", .unique = &u},
        {.type = "echo", .unique = &u},
    };
    aspen_store_submitted out[4];
    int64_t ids[4];
    assert_int_equal(aspen_store_submit_ex(f->s, specs, 4, T0, out, NULL), 0);
    assert_false(out[0].duplicate);
    assert_false(out[1].duplicate);
    assert_true(out[2].duplicate);
    assert_true(out[3].duplicate);
    assert_int_equal(out[2].id, out[0].id);
    assert_int_equal(out[3].id, out[0].id);
    assert_int_equal(count_all(f->s), 2);
    /* the plain batch call gives the same ids */
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 4, T0 + 1, ids, NULL), 0);
    assert_int_equal(ids[0], out[0].id);
    assert_int_equal(ids[2], out[0].id);
    assert_int_equal(count_all(f->s), 3);
    /* a bad rule anywhere refuses the whole batch, naming the job */
    aspen_store_unique bad = {.fields = "a..b"};
    specs[3].unique = &bad;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, specs, 4, T0, out, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job 4 of the batch"));
    assert_non_null(strstr(e.msg, "a..b"));
    assert_int_equal(count_all(f->s), 3);
}

static void test_bad_rules(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    char longkey[ASPEN_STORE_UNIQUE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    struct {
        aspen_store_unique u;
        const char *payload, *says;
    } cases[] = {
        {{.key = "k", .period_ms = -1}, "{}", "negative"},
        {{.key = longkey}, "{}", "at most 512"},
        {{.key = "bad\xff"}, "{}", "not valid UTF-8"},
        {{.states = 1u << 9}, "{}", "does not exist"},
        {{.fields = "a b"}, "{}", "not a payload path"},
        {{.fields = " , "}, "{}", "no unique fields"},
        {{.fields = "a"}, "[1,", "payload is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aspen_store_job_spec spec = {.type = "echo", .payload = cases[i].payload,
                                     .unique = &cases[i].u};
        assert_int_equal(aspen_store_submit_ex(f->s, &spec, 1, T0, NULL, &e), ASPEN_STORE_EINVAL);
        if (!strstr(e.msg, cases[i].says))
            fail_msg("case %zu: '%s' does not say '%s'", i, e.msg, cases[i].says);
    }
    assert_int_equal(count_all(f->s), 0);
    /* a key of exactly the limit is fine */
    longkey[ASPEN_STORE_UNIQUE_KEY_MAX] = '\0';
    aspen_store_unique ok = {.key = longkey};
    assert_false(submit_u(f->s, "echo", "{}", &ok, T0).duplicate);
    assert_true(submit_u(f->s, "echo", "{}", &ok, T0).duplicate);
}

/* A deleted or purged job takes its key with it. */
static void test_keys_go_with_jobs(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique any = {.key = "gone", .states = (1u << ASPEN_STORE_STATE_COUNT) - 1};
    aspen_store_submitted a = submit_u(f->s, "echo", "{}", &any, T0);
    assert_int_equal(aspen_store_cancel(f->s, a.id, T0 + 1, NULL, NULL), 0);
    assert_true(submit_u(f->s, "echo", "{}", &any, T0 + 2).duplicate);
    assert_int_equal(aspen_store_delete(f->s, a.id, NULL), 0);
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &any, T0 + 3);
    assert_false(b.duplicate);
    assert_int_equal(aspen_store_cancel(f->s, b.id, T0 + 4, NULL, NULL), 0);
    int64_t purged = 0;
    assert_int_equal(aspen_store_purge(f->s, T0 + 5, &purged, NULL), 0);
    assert_int_equal(purged, 1);
    assert_false(submit_u(f->s, "echo", "{}", &any, T0 + 6).duplicate);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM job_unique"), 1);
}

/* 8 processes, each its own handle, submit the same unique job 1,000 times at once: one job. */
#define PROCS 8
#define TIMES 1000
static void test_concurrent_processes(void **state)
{
    struct fixture *f = *state;
    int go[2], back[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(back), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            close(back[0]);
            /* Each child: the waiting is SQLite's busy handler; give it room under 8 writers. */
            aspen_store_options o = {.busy_timeout_ms = 120000};
            aspen_store *s = NULL;
            aspen_store_error e = {0};
            if (aspen_store_open(f->path, &o, &s, &e) != 0)
                _exit(10);
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(11);
            aspen_store_unique u = {.key = "the-one", .period_ms = 3600000};
            int64_t created = 0, dups = 0, first = 0, other_ids = 0;
            for (int i = 0; i < TIMES; i++) {
                aspen_store_job_spec spec = {.type = "echo", .payload = "{\"n\":1}", .unique = &u};
                aspen_store_submitted out = {0};
                if (aspen_store_submit_ex(s, &spec, 1, aspen_store_now_ms(), &out, &e) != 0) {
                    fprintf(stderr, "child %d submit %d: %s\n", p, i, e.msg);
                    _exit(12);
                }
                if (!first)
                    first = out.id;
                other_ids += out.id != first;
                out.duplicate ? dups++ : created++;
            }
            int64_t rep[4] = {created, dups, first, other_ids};
            if (write(back[1], rep, sizeof rep) != (ssize_t)sizeof rep)
                _exit(13);
            aspen_store_close(s);
            _exit(0);
        }
    }
    close(go[0]);
    close(back[1]);
    char gobuf[PROCS];
    memset(gobuf, 'g', sizeof gobuf);
    assert_int_equal(write(go[1], gobuf, sizeof gobuf), PROCS); /* all start at once */
    close(go[1]);
    int64_t created = 0, dups = 0, id = 0;
    for (int p = 0; p < PROCS; p++) {
        int64_t rep[4];
        assert_int_equal(read(back[0], rep, sizeof rep), (ssize_t)sizeof rep);
        created += rep[0];
        dups += rep[1];
        if (!id)
            id = rep[2];
        assert_int_equal(rep[2], id);   /* every process got the same job */
        assert_int_equal(rep[3], 0);
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    close(back[0]);
    assert_int_equal(created, 1);
    assert_int_equal(dups, PROCS * TIMES - 1);
    assert_int_equal(count_all(f->s), 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM job_unique"), 1);
}

static void test_parsers(void **state)
{
    (void)state;
    unsigned st = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_states_parse("queued,scheduled, running,succeeded", &st, &e), 0);
    assert_int_equal(st, ASPEN_STORE_UNIQUE_STATES | (1u << ASPEN_STORE_SUCCEEDED));
    assert_int_equal(aspen_store_states_parse("queued,sucess", &st, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "'sucess' is not a state"));
    assert_int_equal(aspen_store_states_parse("", &st, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_states_parse(",", &st, &e), ASPEN_STORE_EINVAL);

    struct {
        const char *text;
        int64_t ms;
    } good[] = {{"10m", 600000},   {"90s", 90000},         {"500ms", 500},
                {"12h", 43200000}, {"7d", 604800000},      {"2w", 1209600000},
                {"45", 45000},     {"1h30m", 5400000},     {"0", 0},
                {"5min", 300000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(aspen_store_duration_parse(good[i].text, &ms, &e), 0);
        assert_int_equal(ms, good[i].ms);
    }
    const char *bad[] = {"", "10x", "-5m", "m", "1h30", "99999999999999999999s", "10 m", "1.5h",
                         "9223372036854775807w"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        if (aspen_store_duration_parse(bad[i], &ms, &e) != ASPEN_STORE_EINVAL)
            fail_msg("'%s' parsed as %lld", bad[i], (long long)ms);
        assert_non_null(strstr(e.msg, "is not a duration"));
    }
    /* the CLI's --timeout and the console form's Timeout: a bare number is milliseconds here */
    struct {
        const char *text;
        int64_t ms;
    } msgood[] = {{"1500", 1500}, {"30s", 30000}, {"1h", 3600000}, {" 5m ", 300000},
                  {"1h30m", 5400000}, {"1", 1}, {"86400000", 86400000}, {"24h", 86400000}};
    for (size_t i = 0; i < sizeof msgood / sizeof msgood[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(aspen_store_ms_parse(msgood[i].text, 1, 86400000, &ms, &e), 0);
        assert_int_equal(ms, msgood[i].ms);
    }
    const char *msbad[] = {"", " ", "0", "-5", "25h", "86400001", "abc", "10x", "1.5s",
                           "99999999999999999999", "9223372036854775807w", "30 s",
                           "a-very-long-value-that-does-not-fit-the-parser-buffer-of-64-bytes-at-all"};
    for (size_t i = 0; i < sizeof msbad / sizeof msbad[0]; i++) {
        int64_t ms = -7;
        if (aspen_store_ms_parse(msbad[i], 1, 86400000, &ms, &e) != ASPEN_STORE_EINVAL)
            fail_msg("'%s' parsed as %lld ms", msbad[i], (long long)ms);
        assert_int_equal(ms, -7); /* untouched */
        assert_non_null(strstr(e.msg, "milliseconds (a bare number) or a duration"));
        assert_non_null(strstr(e.msg, "from 1ms to 24h"));
    }
    assert_int_equal(aspen_store_ms_parse(NULL, 1, 10, &(int64_t){0}, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_ms_parse("5", 1, 10, NULL, &e), ASPEN_STORE_EINVAL);

    char out[32];
    aspen_store_duration_format(600000, out, sizeof out);
    assert_string_equal(out, "10m");
    aspen_store_duration_format(86400000, out, sizeof out);
    assert_string_equal(out, "24h");
    aspen_store_duration_format(604800000, out, sizeof out);
    assert_string_equal(out, "7d");
    aspen_store_duration_format(1209600000, out, sizeof out);
    assert_string_equal(out, "2w");
    aspen_store_duration_format(90000000, out, sizeof out);
    assert_string_equal(out, "25h");
    aspen_store_duration_format(2 * 86400000 + 3600000, out, sizeof out);
    assert_string_equal(out, "2d1h");
    aspen_store_duration_format(5400000, out, sizeof out);
    assert_string_equal(out, "1h30m");
    aspen_store_duration_format(0, out, sizeof out);
    assert_string_equal(out, "0s");
}

/* SQLite: the lookup reads the key's index, newest first, and the retention index exists. */
static void test_plans(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", store_stmt_sql(ST_UNIQUE_FIND));
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    bool index = false, sort = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        index = index || strstr(d, "USING COVERING INDEX job_unique_key") ||
                strstr(d, "USING INDEX job_unique_key");
        sort = sort || strstr(d, "TEMP B-TREE");
    }
    sqlite3_finalize(st);
    assert_true(index);
    assert_false(sort);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                            "('jobs_finished', 'job_unique_key')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_duplicate_returns_existing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_derived_keys, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_period, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_states, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_rules, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keys_go_with_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, fx_setup, fx_teardown),
        cmocka_unit_test(test_parsers),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_plans, fx_setup, fx_teardown),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
