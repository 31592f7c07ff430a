/* test_store_unique.c — unique jobs on both backends (issue 10): a duplicate returns the existing
 * job and writes nothing; keys given, derived from the payload (key order and spacing do not
 * matter) or from chosen fields; the period and the states that count; duplicates within a batch;
 * keys gone with their jobs; bad rules refused with a reason; and 8 processes submitting the same
 * unique job 1,000 times each at once create exactly one job. Also the shared parsers (states,
 * durations) the CLI and console use for the rule.
 * Retry and rerun keep a unique job unique (trial 10): a retry of a failed job whose key another
 * job holds is refused (the bulk retry skips it and says who holds it) and a rerun carries the
 * original's rule, so it answers with the holder as a duplicate submit does (or makes a job
 * without the rule when asked); a rerun starts with the max attempts as submitted, not a retry's
 * raise; and 6 processes retrying, rerunning and submitting one key at once leave one live job.
 * The engine's own retry (a failed attempt with attempts left) keeps a job that holds its key
 * going, and ends one whose key another job took while it ran failed, saying who holds it; 6
 * processes running, failing and retrying jobs of one key at once never leave two waiting. A run
 * now of a scheduled job whose key another job took is refused, naming it. */
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
        /* too large a number of a unit is a duration too long, said so (trial 22) */
        assert_non_null(strstr(e.msg, strchr(bad[i], '9') == bad[i] ? "is too long a duration"
                                                                    : "is not a duration"));
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

/* A job of key `key` (rule u, max_attempts 1) that ran once and failed for good. Only one job may
 * be queued when it is called: the claim takes the queue's head. */
static int64_t failed_job(struct fixture *f, const aspen_store_unique *u, int64_t now)
{
    aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .max_attempts = 1, .unique = u};
    aspen_store_submitted out = {0};
    aspen_store_error e = {0};
    if (aspen_store_submit_ex(f->s, &spec, 1, now, &out, &e) != 0)
        fail_msg("submit: %s", e.msg);
    if (out.duplicate)
        fail_msg("submit of key %s was a duplicate of job %lld", u->key, (long long)out.id);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, now, &e), 0);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, now + 1, &id), 1);
    assert_int_equal(id, out.id);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, 0, now + 2), 0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);
    return id;
}

static int max_attempts_of(aspen_store *s, int64_t id)
{
    aspen_store_job j;
    if (aspen_store_get(s, id, &j, NULL) != 0)
        fail_msg("get %lld", (long long)id);
    int n = j.max_attempts;
    aspen_store_job_clear(&j);
    return n;
}

/* The trial: job 1 failed, job 2 of its key queued; retry 1 must not make two live jobs of K. */
static void test_retry_refused_while_held(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "K"};
    int64_t a = failed_job(f, &u, T0);
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, T0 + 10);
    assert_false(b.duplicate); /* a failed job does not count by default */
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 20, &e), ASPEN_STORE_ESTATE);
    char want[300];
    snprintf(want, sizeof want,
             "job %lld not retried: job %lld (queued) holds its unique key 'K'; cancel job %lld "
             "first (aspen cancel %lld), or aspen rerun %lld --no-unique",
             (long long)a, (long long)b.id, (long long)b.id, (long long)b.id, (long long)a);
    assert_string_equal(e.msg, want);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_FAILED);
    assert_int_equal(max_attempts_of(f->s, a), 1); /* nothing changed, not even the allowance */

    /* the bulk retry: every other failed job retried, this one listed with its holder */
    int64_t plain = submit_job(f->s, "echo", 0, 0, 1, T0 + 30);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, T0 + 30, &e), 0);
    int64_t got[2];
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0 + 31, got), 2); /* b and plain */
    int64_t b_again = got[0] == b.id ? got[0] : got[1];
    assert_int_equal(b_again, b.id);
    /* b runs: it still holds K (running counts); plain fails */
    assert_int_equal(complete_one(f->s, f->engine, plain, ASPEN_STORE_OUTCOME_FAILURE, 0, T0 + 32),
                     0);
    aspen_store_retry_skip *skips = NULL;
    size_t n = 0;
    int64_t retried = -1;
    assert_int_equal(aspen_store_retry_failed_ex(f->s, NULL, T0 + 40, &retried, &skips, &n, &e), 0);
    assert_int_equal(retried, 1); /* plain */
    assert_int_equal(n, 1);
    assert_int_equal(skips[0].id, a);
    assert_int_equal(skips[0].holder.id, b.id);
    assert_int_equal(skips[0].holder.state, ASPEN_STORE_RUNNING);
    assert_string_equal(skips[0].key, "K");
    free(skips);
    assert_int_equal(state_of(f->s, plain), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_FAILED);
    /* the plain call retries the same way and only counts */
    assert_int_equal(aspen_store_retry_failed(f->s, NULL, T0 + 41, &retried, &e), 0);
    assert_int_equal(retried, 0);

    /* b done: the key is free, a is retried (one more attempt) and then holds it */
    assert_int_equal(complete_one(f->s, f->engine, b.id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 50),
                     0);
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 60, &e), 0);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_QUEUED);
    assert_int_equal(max_attempts_of(f->s, a), 2);
    aspen_store_submitted c = submit_u(f->s, "echo", "{}", &u, T0 + 70);
    assert_true(c.duplicate);
    assert_int_equal(c.id, a);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* Two failed jobs of one key and nobody holding it: a bulk retry retries the first and skips the
 * second, which the first then holds; the job's own rule decides (a holder in a state that rule
 * does not count, or created before its period, does not block it). */
static void test_retry_failed_same_key(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "twice"};
    int64_t a = failed_job(f, &u, T0);
    int64_t b = failed_job(f, &u, T0 + 10);
    aspen_store_retry_skip *skips = NULL;
    size_t n = 0;
    int64_t retried = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_retry_failed_ex(f->s, NULL, T0 + 20, &retried, &skips, &n, &e), 0);
    assert_int_equal(retried, 1);
    assert_int_equal(n, 1);
    assert_int_equal(skips[0].id, b);
    assert_int_equal(skips[0].holder.id, a);
    assert_int_equal(skips[0].holder.state, ASPEN_STORE_QUEUED);
    char msg[512];
    aspen_store_retry_skip_message(&skips[0], " --db x.db", msg, sizeof msg);
    assert_non_null(strstr(msg, "(aspen cancel "));
    assert_non_null(strstr(msg, " --db x.db), or aspen rerun "));
    free(skips);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, b), ASPEN_STORE_FAILED);

    /* the rule kept with the job: states queued only, so a running holder does not block it */
    aspen_store_unique q = {.key = "q", .states = 1u << ASPEN_STORE_QUEUED, .period_ms = 5000};
    assert_int_equal(aspen_store_cancel(f->s, a, T0 + 30, NULL, NULL), 0);
    int64_t c = failed_job(f, &q, T0 + 100);
    aspen_store_job_rule r = {0};
    assert_int_equal(aspen_store_job_unique_rule(f->s, c, &r, &e), 0);
    assert_string_equal(r.key, "q");
    assert_int_equal(r.period_ms, 5000);
    assert_int_equal(r.states, 1u << ASPEN_STORE_QUEUED);
    aspen_store_job_rule_clear(&r);
    assert_null(r.key);
    aspen_store_submitted d = submit_u(f->s, "echo", "{}", &q, T0 + 200);
    assert_false(d.duplicate);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, T0 + 200, &e), 0);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 201, &id), 1); /* d runs */
    assert_int_equal(id, d.id);
    assert_int_equal(aspen_store_retry(f->s, c, T0 + 300, &e), 0); /* running does not count */
    assert_int_equal(state_of(f->s, c), ASPEN_STORE_QUEUED);
    /* and a queued holder older than c's period does not either */
    assert_int_equal(complete_one(f->s, f->engine, d.id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 301), 0);
    assert_int_equal(aspen_store_cancel(f->s, c, T0 + 302, NULL, NULL), 0);
    aspen_store_unique q2 = {.key = "q2", .states = 1u << ASPEN_STORE_QUEUED, .period_ms = 5000};
    int64_t g = failed_job(f, &q2, T0 + 400);
    aspen_store_submitted h = submit_u(f->s, "echo", "{}", &q2, T0 + 500); /* queued, holds q2 */
    assert_false(h.duplicate);
    assert_int_equal(aspen_store_retry(f->s, g, T0 + 600, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(aspen_store_retry(f->s, g, T0 + 500 + 5000, &e), 0); /* h is out of period */
    assert_int_equal(aspen_store_check(f->s, &e), 0);
    /* a job without a rule has none to show */
    int64_t plain = submit_job(f->s, "echo", 0, 0, 1, T0);
    assert_int_equal(aspen_store_job_unique_rule(f->s, plain, &r, &e), 0);
    assert_null(r.key);
}

/* The trial's rerun: a rerun while another job holds the key answers with that job and makes
 * nothing; --no-unique makes one without the rule; once the key is free the rerun makes a job
 * with the original's rule and its submitted max attempts (1), not the retry's raise (2). */
static void test_rerun_keeps_rule(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "K", .period_ms = 3600000,
                            .states = ASPEN_STORE_UNIQUE_STATES | 1u << ASPEN_STORE_CANCELLED};
    int64_t a = failed_job(f, &u, T0);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 10, &e), 0); /* attempt 2 of 2 */
    assert_int_equal(max_attempts_of(f->s, a), 2);
    int64_t ids[1];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 11, ids), 1);
    assert_int_equal(complete_one(f->s, f->engine, a, ASPEN_STORE_OUTCOME_FAILURE, 0, T0 + 12), 0);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_FAILED);
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, T0 + 20);
    assert_false(b.duplicate);
    int64_t before = count_all(f->s);

    aspen_store_submitted r = {0};
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0 + 30, 0, &r, &e), 0);
    assert_true(r.duplicate);
    assert_int_equal(r.id, b.id);
    assert_int_equal(r.state, ASPEN_STORE_QUEUED);
    assert_int_equal(r.created_at_ms, T0 + 20);
    assert_int_equal(count_all(f->s), before);
    int64_t old_api = 0;
    assert_int_equal(aspen_store_rerun(f->s, a, T0 + 31, &old_api, &e), 0);
    assert_int_equal(old_api, b.id); /* the plain call answers with the holder too */
    assert_int_equal(count_all(f->s), before);

    /* without the rule: a new job, no key, the submitted max attempts */
    aspen_store_submitted n = {0};
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0 + 40, ASPEN_STORE_RERUN_NO_UNIQUE, &n, &e), 0);
    assert_false(n.duplicate);
    assert_int_not_equal(n.id, b.id);
    aspen_store_job_rule rule = {0};
    assert_int_equal(aspen_store_job_unique_rule(f->s, n.id, &rule, &e), 0);
    assert_null(rule.key);
    assert_int_equal(max_attempts_of(f->s, n.id), 1);
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0, 4, &n, &e), ASPEN_STORE_EINVAL);

    /* the rule counts cancelled here: b cancelled still holds the key */
    assert_int_equal(aspen_store_cancel(f->s, b.id, T0 + 50, NULL, NULL), 0);
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0 + 60, 0, &r, &e), 0);
    assert_true(r.duplicate);
    assert_int_equal(r.state, ASPEN_STORE_CANCELLED);
    /* deleted, it no longer does: the rerun makes a job with the original's rule */
    assert_int_equal(aspen_store_delete(f->s, b.id, &e), 0);
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0 + 70, 0, &r, &e), 0);
    assert_false(r.duplicate);
    assert_int_equal(r.state, ASPEN_STORE_QUEUED);
    assert_int_equal(max_attempts_of(f->s, r.id), 1);
    assert_int_equal(aspen_store_job_unique_rule(f->s, r.id, &rule, &e), 0);
    assert_string_equal(rule.key, "K");
    assert_int_equal(rule.period_ms, 3600000);
    assert_int_equal(rule.states, u.states);
    aspen_store_job_rule_clear(&rule);
    /* and now that job holds it against a submit, a retry and another rerun */
    assert_true(submit_u(f->s, "echo", "{}", &u, T0 + 80).duplicate);
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 81, &e), ASPEN_STORE_ESTATE);
    aspen_store_submitted again = {0};
    assert_int_equal(aspen_store_rerun_ex(f->s, a, T0 + 82, 0, &again, &e), 0);
    assert_true(again.duplicate);
    assert_int_equal(again.id, r.id);
    /* a rerun of a rerun: still the submitted 1 */
    assert_int_equal(aspen_store_rerun_ex(f->s, r.id, T0 + 83, ASPEN_STORE_RERUN_NO_UNIQUE, &n, &e),
                     0);
    assert_int_equal(max_attempts_of(f->s, n.id), 1);
    assert_int_equal(aspen_store_rerun_ex(f->s, 424242, T0, 0, &n, &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* 6 processes at once, each its own handle, 40 rounds each: retry one of the key's failed jobs,
 * rerun one, submit the key. However they interleave, the key has exactly one live job at the
 * end (no worker runs, so a second live job would still be there). */
#define RPROCS 6
#define ROUNDS 40
static void test_concurrent_retry_rerun(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "hot"};
    int64_t failed[3];
    for (int i = 0; i < 3; i++)
        failed[i] = failed_job(f, &u, T0 + 100 * i);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pids[RPROCS];
    for (int p = 0; p < RPROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            aspen_store_options o = {.busy_timeout_ms = 120000};
            aspen_store *s = NULL;
            aspen_store_error e = {0};
            if (aspen_store_open(f->path, &o, &s, &e) != 0)
                _exit(10);
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(11);
            for (int i = 0; i < ROUNDS; i++) {
                int64_t id = failed[(p + i) % 3];
                int rc = aspen_store_retry(s, id, aspen_store_now_ms(), &e);
                /* refused (another holds the key, or it is queued already): fine; else a bug */
                if (rc != 0 && rc != ASPEN_STORE_ESTATE) {
                    fprintf(stderr, "child %d retry: %d %s\n", p, rc, e.msg);
                    _exit(12);
                }
                aspen_store_submitted out;
                if (aspen_store_rerun_ex(s, failed[(p + i + 1) % 3], aspen_store_now_ms(), 0, &out,
                                         &e) != 0) {
                    fprintf(stderr, "child %d rerun: %s\n", p, e.msg);
                    _exit(13);
                }
                aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .unique = &u};
                if (aspen_store_submit_ex(s, &spec, 1, aspen_store_now_ms(), &out, &e) != 0) {
                    fprintf(stderr, "child %d submit: %s\n", p, e.msg);
                    _exit(14);
                }
            }
            aspen_store_close(s);
            _exit(0);
        }
    }
    close(go[0]);
    char gobuf[RPROCS];
    memset(gobuf, 'g', sizeof gobuf);
    assert_int_equal(write(go[1], gobuf, sizeof gobuf), RPROCS); /* all start at once */
    close(go[1]);
    for (int p = 0; p < RPROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM job_unique u JOIN jobs j ON j.id = u.job"
                                   " WHERE u.key = 'hot'"
                                   " AND j.state IN ('queued', 'scheduled', 'running')"),
                     1);
    /* no job without a key was made: every rerun kept the rule */
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE id NOT IN"
                                   " (SELECT job FROM job_unique)"),
                     0);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

static char *error_of(aspen_store *s, int64_t id)
{
    aspen_store_job j;
    if (aspen_store_get(s, id, &j, NULL) != 0)
        fail_msg("get %lld", (long long)id);
    char *e = j.error ? strdup(j.error) : NULL;
    aspen_store_job_clear(&j);
    return e;
}

/* A submitted job of rule u (3 attempts), claimed and running at `now`. */
static int64_t running_job(struct fixture *f, const aspen_store_unique *u, int64_t now)
{
    aspen_store_submitted a = submit_u(f->s, "echo", "{}", u, now);
    assert_false(a.duplicate);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 600000, now, &e), 0);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, now + 1, &id), 1);
    assert_int_equal(id, a.id);
    return id;
}

/* The engine's own retry of a job that holds its key: it goes back to scheduled (or queued) and
 * holds the key on, through the backoff and again when due. */
static void test_auto_retry_keeps_own_key(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "own"};
    int64_t a = running_job(f, &u, T0);
    assert_int_equal(complete_one(f->s, f->engine, a, ASPEN_STORE_OUTCOME_FAILURE, T0 + 5000,
                                  T0 + 10),
                     0);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_SCHEDULED);
    aspen_store_submitted d = submit_u(f->s, "echo", "{}", &u, T0 + 20);
    assert_true(d.duplicate);
    assert_int_equal(d.id, a);
    assert_int_equal(d.state, ASPEN_STORE_SCHEDULED);
    /* its second attempt fails too, due at once this time: queued, still the key's one job */
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 5001, &id), 1);
    assert_int_equal(id, a);
    assert_int_equal(complete_one(f->s, f->engine, a, ASPEN_STORE_OUTCOME_TIMEOUT, T0 + 5002,
                                  T0 + 5002),
                     0);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_QUEUED);
    d = submit_u(f->s, "echo", "{}", &u, T0 + 5003);
    assert_true(d.duplicate);
    assert_int_equal(d.id, a);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* The key taken while the job ran: job b submitted with a rule of its own that does not count a
 * running job (queued only), as a submitter who cancelled a and resubmitted would; a's attempt
 * fails with attempts left. Retried, a would be a second waiting job of the key: it ends failed,
 * its error the attempt's and who holds the key, and b stays the key's one job. Without its own
 * key row's rule (a's states) nothing else changes: a job of another key is retried as before. */
static void test_auto_retry_refused_when_taken(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "taken"};
    int64_t a = running_job(f, &u, T0);
    int64_t plain = submit_job(f->s, "echo", 0, 0, 3, T0 + 2);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 3, &id), 1);
    assert_int_equal(id, plain);
    aspen_store_unique queued_only = {.key = "taken", .states = 1u << ASPEN_STORE_QUEUED};
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &queued_only, T0 + 5);
    assert_false(b.duplicate); /* a runs: b's rule does not count it */
    /* both fail in one commit with a retry due later */
    aspen_store_completion c[2] = {
        {.job_id = plain, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .error = "boom",
         .retry_at_ms = T0 + 5000},
        {.job_id = a, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .error = "exit status 3",
         .retry_at_ms = T0 + 5000}};
    int status[2] = {-1, -1};
    aspen_store_state fin[2];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 2, T0 + 10, status, fin, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    assert_int_equal(fin[0], ASPEN_STORE_SCHEDULED); /* no key: retried */
    assert_int_equal(fin[1], ASPEN_STORE_FAILED);
    assert_int_equal(state_of(f->s, plain), ASPEN_STORE_SCHEDULED);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_FAILED);
    char *msg = error_of(f->s, a), want[300];
    snprintf(want, sizeof want,
             "exit status 3; not retried: job %lld (queued) holds its unique key 'taken' now "
             "(aspen retry %lld once job %lld is done, or aspen rerun %lld --no-unique)",
             (long long)b.id, (long long)a, (long long)b.id, (long long)a);
    assert_non_null(msg);
    assert_string_equal(msg, want);
    free(msg);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM job_unique u JOIN jobs j ON j.id = u.job"
                                   " WHERE u.key = 'taken'"
                                   " AND j.state IN ('queued', 'scheduled', 'running')"),
                     1);
    /* the operator's retry is refused the same way while b waits */
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 20, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "holds its unique key 'taken'"));
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A period: a's rule counts jobs created within 10 s. b, created 20 s after a (a too old for
 * b's rule, so b is made), is within a's period when a's attempt fails: a is not retried. A
 * holder that finishes in the same commit no longer holds the key: c, retried beside it. */
static void test_auto_retry_period_and_same_commit(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "P", .period_ms = 10000};
    int64_t a = running_job(f, &u, T0);
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, T0 + 20000);
    assert_false(b.duplicate);
    assert_int_equal(complete_one(f->s, f->engine, a, ASPEN_STORE_OUTCOME_FAILURE, T0 + 30000,
                                  T0 + 21000),
                     0);
    assert_int_equal(state_of(f->s, a), ASPEN_STORE_FAILED);
    char *msg = error_of(f->s, a);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "failed (attempt 1); not retried: job "));
    free(msg);
    /* b runs; c of another key waits for it with a rule counting b's running state... */
    aspen_store_error e = {0};
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 22000, &id), 1);
    assert_int_equal(id, b.id);
    aspen_store_unique w = {.key = "W", .states = 1u << ASPEN_STORE_QUEUED};
    int64_t c1 = running_job(f, &w, T0 + 23000);
    aspen_store_submitted c2 = submit_u(f->s, "echo", "{}", &w, T0 + 23010);
    assert_false(c2.duplicate);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 23020, &id), 1);
    assert_int_equal(id, c2.id);
    /* ...c2 succeeds and c1 fails in one commit, c2 first: c1's retry sees c2 finished */
    aspen_store_completion c[2] = {
        {.job_id = c2.id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS},
        {.job_id = c1, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .retry_at_ms = T0 + 99000}};
    int status[2] = {-1, -1};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 2, T0 + 24000, status, NULL, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    assert_int_equal(state_of(f->s, c2.id), ASPEN_STORE_SUCCEEDED);
    assert_int_equal(state_of(f->s, c1), ASPEN_STORE_SCHEDULED);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* Run now of a scheduled job (aspen run-now, the Jobs pane's n): under a rule that does not count
 * scheduled jobs another job could take the key meanwhile; queued now, the job would be its second
 * waiting job. Refused, naming the holder; once the holder is gone it runs now. */
static void test_run_now_held(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "later", .states = 1u << ASPEN_STORE_QUEUED};
    aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .unique = &u,
                                 .run_at_ms = T0 + 3600000};
    aspen_store_submitted a = {0};
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &spec, 1, T0, &a, &e), 0);
    assert_int_equal(a.state, ASPEN_STORE_SCHEDULED);
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &u, T0 + 10);
    assert_false(b.duplicate); /* a is scheduled: the rule does not count it */
    assert_int_equal(aspen_store_run_now(f->s, a.id, T0 + 20, &e), ASPEN_STORE_ESTATE);
    char want[300];
    snprintf(want, sizeof want,
             "job %lld not run now: job %lld (queued) holds its unique key 'later'; it runs when "
             "its time comes, or cancel job %lld first (aspen cancel %lld)",
             (long long)a.id, (long long)b.id, (long long)b.id, (long long)b.id);
    assert_string_equal(e.msg, want);
    assert_int_equal(state_of(f->s, a.id), ASPEN_STORE_SCHEDULED);
    assert_int_equal(aspen_store_cancel(f->s, b.id, T0 + 30, NULL, &e), 0);
    assert_int_equal(aspen_store_run_now(f->s, a.id, T0 + 40, &e), 0);
    assert_int_equal(state_of(f->s, a.id), ASPEN_STORE_QUEUED);
    aspen_store_submitted c = submit_u(f->s, "echo", "{}", &u, T0 + 50);
    assert_true(c.duplicate);
    assert_int_equal(c.id, a.id);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* 6 processes, each an engine of its own, at once: submit a job of one key (a rule that does not
 * count running jobs, so several run at a time), claim, start and fail it with attempts left —
 * due now or after a backoff — and retry failed ones as an operator would. Whatever interleaves,
 * the key never has two waiting jobs: every automatic retry looked under the key's lock. */
#define APROCS 6
#define AROUNDS 30
static void test_concurrent_auto_retries(void **state)
{
    struct fixture *f = *state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pids[APROCS];
    for (int p = 0; p < APROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            aspen_store_options o = {.busy_timeout_ms = 120000};
            aspen_store *s = NULL;
            aspen_store_error e = {0};
            int64_t engine = 0;
            if (aspen_store_open(f->path, &o, &s, &e) != 0 ||
                aspen_store_engine_register(s, getpid(), "test", 600000, aspen_store_now_ms(),
                                            &engine, &e) != 0)
                _exit(10);
            char ch;
            if (read(go[0], &ch, 1) != 1)
                _exit(11);
            aspen_store_unique u = {.key = "busy",
                                    .states = 1u << ASPEN_STORE_QUEUED |
                                              1u << ASPEN_STORE_SCHEDULED};
            for (int i = 0; i < AROUNDS; i++) {
                aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .unique = &u,
                                             .max_attempts = 1000};
                aspen_store_submitted out;
                if (aspen_store_submit_ex(s, &spec, 1, aspen_store_now_ms(), &out, &e) != 0) {
                    fprintf(stderr, "child %d submit: %s\n", p, e.msg);
                    _exit(12);
                }
                aspen_store_job *jobs = NULL;
                size_t n = 0;
                if (aspen_store_claim(s, engine, 1, aspen_store_now_ms(), &jobs, &n, NULL, &e)) {
                    fprintf(stderr, "child %d claim: %s\n", p, e.msg);
                    _exit(13);
                }
                int64_t id = n ? jobs[0].id : 0;
                aspen_store_jobs_free(jobs, n);
                if (id) {
                    int64_t now = aspen_store_now_ms();
                    aspen_store_start m = {id, now};
                    int st = 0;
                    if (aspen_store_start_jobs(s, engine, &m, 1, now, &st, &e) != 0 || st != 0) {
                        fprintf(stderr, "child %d start: %s\n", p, e.msg);
                        _exit(14);
                    }
                    usleep(2000); /* it runs: the others submit (their rule does not count it) */
                    now = aspen_store_now_ms();
                    aspen_store_completion c = {.job_id = id,
                                                .outcome = ASPEN_STORE_OUTCOME_FAILURE,
                                                .retry_at_ms = i % 2 ? now : now + 3};
                    if (aspen_store_complete(s, engine, &c, 1, aspen_store_now_ms(), &st, NULL,
                                             &e) != 0 || st != 0) {
                        fprintf(stderr, "child %d complete: %d %s\n", p, st, e.msg);
                        _exit(15);
                    }
                }
                int64_t retried = 0;
                if (i % 5 == 4 &&
                    aspen_store_retry_failed(s, NULL, aspen_store_now_ms(), &retried, &e) != 0) {
                    fprintf(stderr, "child %d retry: %s\n", p, e.msg);
                    _exit(16);
                }
            }
            aspen_store_close(s);
            _exit(0);
        }
    }
    close(go[0]);
    char gobuf[APROCS];
    memset(gobuf, 'g', sizeof gobuf);
    assert_int_equal(write(go[1], gobuf, sizeof gobuf), APROCS);
    close(go[1]);
    for (int p = 0; p < APROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_true(fx_raw_int(f, "SELECT count(*) FROM job_unique u JOIN jobs j ON j.id = u.job"
                              " WHERE u.key = 'busy' AND j.state IN ('queued', 'scheduled')") <= 1);
    /* the race happened: some attempt was refused its retry because another job held the key */
    assert_true(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE error LIKE '%not retried: job %'")
                > 0);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A database from before version 17 (key rows without the rule, jobs without the submitted max
 * attempts) is migrated on open: its key rows read as the default states and any age, so a
 * retry's check is the strictest, and its jobs go on. */
static void test_version_16_rows(void **state)
{
    struct fixture *f = *state;
    aspen_store_unique u = {.key = "old", .period_ms = 1000, .states = 1u << ASPEN_STORE_QUEUED};
    int64_t a = failed_job(f, &u, T0);
    aspen_store_close(f->s);
    f->s = NULL;
    fx_raw_exec(f, "ALTER TABLE job_unique DROP COLUMN period_ms");
    fx_raw_exec(f, "ALTER TABLE job_unique DROP COLUMN states");
    fx_raw_exec(f, "ALTER TABLE jobs DROP COLUMN submitted_max_attempts");
    fx_raw_exec(f, f->pg_db[0] ? "UPDATE aspen_schema SET version = 16" : "PRAGMA user_version = 16");
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(f->pg_db[0] ? fx_raw_int(f, "SELECT max(version) FROM aspen_schema")
                                 : fx_raw_int(f, "PRAGMA user_version"),
                     ASPEN_STORE_SCHEMA_VERSION);
    aspen_store_error e = {0};
    aspen_store_job_rule r = {0};
    assert_int_equal(aspen_store_job_unique_rule(f->s, a, &r, &e), 0);
    assert_string_equal(r.key, "old");
    assert_int_equal(r.period_ms, 0);
    assert_int_equal(r.states, ASPEN_STORE_UNIQUE_STATES);
    aspen_store_job_rule_clear(&r);
    assert_int_equal(aspen_store_engine_register(f->s, getpid(), "test", 5000, T0 + 100000,
                                                 &f->engine, &e),
                     0);
    /* a holder created long after the lost period, running: the defaults count it */
    aspen_store_unique any = {.key = "old"};
    aspen_store_submitted b = submit_u(f->s, "echo", "{}", &any, T0 + 100000);
    assert_false(b.duplicate);
    int64_t id = 0;
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 100001, &id), 1);
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 100002, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "(running) holds its unique key 'old'"));
    assert_int_equal(complete_one(f->s, f->engine, b.id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 100003),
                     0);
    assert_int_equal(aspen_store_retry(f->s, a, T0 + 100004, &e), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
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
        cmocka_unit_test_setup_teardown(test_retry_refused_while_held, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retry_failed_same_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rerun_keeps_rule, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_retry_rerun, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_version_16_rows, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auto_retry_keeps_own_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auto_retry_refused_when_taken, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auto_retry_period_and_same_commit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_auto_retries, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_now_held, fx_setup, fx_teardown),
        cmocka_unit_test(test_parsers),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_plans, fx_setup, fx_teardown),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
