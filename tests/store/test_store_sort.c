/* test_store_sort.c — the whole-store sort (store/sort.c, each backend's sorted list): every sort
 * key in both directions, read page by page after an anchor job (keyset paging), must give exactly
 * the order computed here from every job's fields; so must an offset page, an inclusive anchor and
 * a sort under a filter. Keys with many ties (state, priority, duration -1), names with case,
 * UTF-8 and spaces, created times out of id order, queues named around "default" (which the
 * default queue's jobs sort as). An anchor that was deleted is ENOTFOUND;
 * "COL,desc" parses, a bad column is refused with a near miss. Runs on SQLite and PostgreSQL.
 */
#include "helpers.h"

static const char *const guests[] = {NULL, "alpha", "Beta", "beta", "zeta", "\xc3\xa9lan", "a b"};
#define N_GUESTS (sizeof guests / sizeof guests[0])
/* named queues before and after "default" in byte order (a capital sorts first, '-' before '_':
 * a locale's collation would say otherwise), and NULL */
static const char *const queues[] = {NULL, "alpha", "Zed", "default", "defaults", "q_1", "q-1"};
#define N_QUEUES (sizeof queues / sizeof queues[0])

/* The store's key of a job, computed here from its fields (store/sort.c says the same in SQL). */
static int64_t key_int(const aspen_store_job *j, aspen_store_sort s)
{
    switch (s) {
    case ASPEN_STORE_SORT_STATE: return (int64_t)j->state;
    case ASPEN_STORE_SORT_PRIORITY: return j->priority;
    case ASPEN_STORE_SORT_ATTEMPTS: return j->attempts;
    case ASPEN_STORE_SORT_CREATED: return j->created_at_ms;
    case ASPEN_STORE_SORT_DURATION:
        return j->started_at_ms && j->finished_at_ms ? j->finished_at_ms - j->started_at_ms : -1;
    default: return j->id;
    }
}

static aspen_store_sort cmp_sort;
static bool cmp_desc;

static int cmp_jobs(const void *a, const void *b)
{
    const aspen_store_job *x = a, *y = b;
    int c;
    if (cmp_sort == ASPEN_STORE_SORT_GUEST)
        c = strcmp(x->binary_name ? x->binary_name : "", y->binary_name ? y->binary_name : "");
    else if (cmp_sort == ASPEN_STORE_SORT_QUEUE) /* the job's queue as read: "default" for none */
        c = strcmp(x->queue, y->queue);
    else {
        int64_t kx = key_int(x, cmp_sort), ky = key_int(y, cmp_sort);
        c = (kx > ky) - (kx < ky);
    }
    if (c == 0)
        c = (x->id > y->id) - (x->id < y->id);
    return cmp_desc ? -c : c;
}

/* A store with every state, ties and out-of-order created times. */
static void seed(struct fixture *f)
{
    aspen_store_error e = {0};
    for (int i = 0; i < 90; i++) {
        aspen_store_job_spec spec = {.type = "echo",
                                     .binary_name = guests[i % N_GUESTS],
                                     .priority = i % 5 - 2,
                                     .queue = queues[i % 4 == 1 ? 0 : i % N_QUEUES],
                                     .run_at_ms = i % 9 == 8 ? T0 + 1000000000LL : 0};
        int64_t id = 0;
        /* submitted at times that do not follow the ids */
        assert_int_equal(aspen_store_submit(f->s, &spec, T0 - (i * 37 % 50) * 1000, &id, &e), 0);
    }
    int64_t ids[64];
    size_t n = claim_ids(f->s, f->engine, 50, T0 + 1000, ids);
    assert_int_equal(n, 50);
    aspen_store_completion c[40];
    for (int i = 0; i < 40; i++) {
        int64_t d = (ids[i] * 13 % 7) * 100; /* durations with ties, some 0 */
        c[i] = (aspen_store_completion){
            .job_id = ids[i],
            .outcome = i % 4 == 3 ? ASPEN_STORE_OUTCOME_FAILURE : ASPEN_STORE_OUTCOME_SUCCESS,
            .error = i % 4 == 3 ? "boom" : NULL,
            .stats = {.started_at_ms = T0 + 1000 + (i % 3) * 100, .finished_at_ms = T0 + 1000 + d}};
    }
    /* A failure that is retried later: it ran, and is unfinished again (scheduled, key -1). */
    c[7].outcome = ASPEN_STORE_OUTCOME_FAILURE;
    c[7].error = "try again";
    c[7].retry_at_ms = T0 + 1000000000LL;
    int status[40];
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 38, T0 + 3000, status, NULL, &e), 0);
    /* Two that finish by a clock behind the one that started them (hosts, or a clock stepped
     * back): their duration is below -1, a block of its own before the -1 jobs. */
    assert_int_equal(aspen_store_complete(f->s, f->engine, c + 38, 2, T0 + 500, status + 38, NULL,
                                          &e), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(status[i], 0);
    /* 10 stay running; cancel a few of the queued */
    aspen_store_filter q = {.states = 1u << ASPEN_STORE_QUEUED, .limit = 4};
    aspen_store_job *jobs = NULL;
    size_t nq = 0;
    assert_int_equal(aspen_store_list(f->s, &q, &jobs, &nq, &e), 0);
    assert_int_equal(nq, 4);
    for (size_t i = 0; i < nq; i++)
        assert_int_equal(aspen_store_cancel(f->s, jobs[i].id, T0 + 3001, NULL, &e), 0);
    aspen_store_jobs_free(jobs, nq);
}

/* Every job matching base (no sort), sorted here. */
static aspen_store_job *oracle(struct fixture *f, const aspen_store_filter *base,
                               aspen_store_sort s, bool desc, size_t *n)
{
    aspen_store_filter all = *base;
    all.limit = -1;
    all.sort = ASPEN_STORE_SORT_NONE;
    all.after_id = 0;
    aspen_store_job *jobs = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_list(f->s, &all, &jobs, n, &e), 0);
    cmp_sort = s;
    cmp_desc = desc;
    qsort(jobs, *n, sizeof *jobs, cmp_jobs);
    return jobs;
}

/* Reads every match page by page (size `page`), each page after the last job of the previous. */
static int64_t *paged(struct fixture *f, const aspen_store_filter *base, aspen_store_sort s,
                      bool desc, int64_t page, size_t *n)
{
    int64_t *ids = calloc(1000, sizeof *ids);
    *n = 0;
    int64_t after = 0;
    for (int round = 0; round < 1000; round++) {
        aspen_store_filter pf = *base;
        pf.sort = s;
        pf.sort_desc = desc;
        pf.limit = page;
        pf.after_id = after;
        aspen_store_job *jobs = NULL;
        size_t got = 0;
        aspen_store_error e = {0};
        int rc = aspen_store_list(f->s, &pf, &jobs, &got, &e);
        if (rc != 0)
            fail_msg("sorted list by %s: %d %s", aspen_store_sort_name(s), rc, e.msg);
        assert_true(got <= (size_t)page);
        for (size_t i = 0; i < got && *n < 1000; i++)
            ids[(*n)++] = jobs[i].id;
        if (got)
            after = jobs[got - 1].id;
        aspen_store_jobs_free(jobs, got);
        if (got < (size_t)page)
            break;
    }
    return ids;
}

static void check_order(struct fixture *f, const aspen_store_filter *base)
{
    for (int s = ASPEN_STORE_SORT_ID; s < ASPEN_STORE_SORT_COUNT; s++)
        for (int d = 0; d < 2; d++) {
            size_t n_want = 0, n_got = 0;
            aspen_store_job *want = oracle(f, base, (aspen_store_sort)s, d, &n_want);
            int64_t *got = paged(f, base, (aspen_store_sort)s, d, 7, &n_got);
            if (n_got != n_want)
                fail_msg("sort %s%s: %zu jobs paged, %zu match", aspen_store_sort_name(s),
                         d ? ",desc" : "", n_got, n_want);
            for (size_t i = 0; i < n_want; i++)
                if (got[i] != want[i].id)
                    fail_msg("sort %s%s: position %zu is job %lld, should be %lld",
                             aspen_store_sort_name(s), d ? ",desc" : "", i, (long long)got[i],
                             (long long)want[i].id);
            /* an offset page of the same order */
            aspen_store_filter of = *base;
            of.sort = (aspen_store_sort)s;
            of.sort_desc = d;
            of.limit = 5;
            of.offset = 10;
            aspen_store_job *page = NULL;
            size_t np = 0;
            aspen_store_error e = {0};
            assert_int_equal(aspen_store_list(f->s, &of, &page, &np, &e), 0);
            for (size_t i = 0; i < np; i++)
                assert_int_equal(page[i].id, want[10 + i].id);
            assert_int_equal(np, n_want > 10 ? (n_want - 10 < 5 ? n_want - 10 : 5) : 0);
            aspen_store_jobs_free(page, np);
            /* an inclusive anchor starts at the anchor */
            if (n_want > 3) {
                aspen_store_filter inc = *base;
                inc.sort = (aspen_store_sort)s;
                inc.sort_desc = d;
                inc.limit = 3;
                inc.after_id = want[2].id;
                inc.after_inclusive = true;
                assert_int_equal(aspen_store_list(f->s, &inc, &page, &np, &e), 0);
                assert_int_equal(np, n_want > 4 ? 3 : n_want - 2);
                for (size_t i = 0; i < np; i++)
                    assert_int_equal(page[i].id, want[2 + i].id);
                aspen_store_jobs_free(page, np);
            }
            free(got);
            aspen_store_jobs_free(want, n_want);
        }
}

static void test_every_key_both_ways_paged(void **state)
{
    struct fixture *f = *state;
    seed(f);
    aspen_store_filter none = {0};
    check_order(f, &none);
}

static void test_sorted_under_a_filter(void **state)
{
    struct fixture *f = *state;
    seed(f);
    aspen_store_filter fin = {.states = 1u << ASPEN_STORE_SUCCEEDED | 1u << ASPEN_STORE_FAILED};
    check_order(f, &fin);
    aspen_store_filter one = {.states = 1u << ASPEN_STORE_SUCCEEDED};
    check_order(f, &one);
    aspen_store_filter guest = {.binary_name = "beta"};
    check_order(f, &guest);
    aspen_store_filter unnamed = {.states = 1u << ASPEN_STORE_QUEUED, .type = "echo"};
    check_order(f, &unnamed);
    aspen_store_filter queue = {.queue = "alpha"};
    check_order(f, &queue);
    aspen_store_filter running = {.states = 1u << ASPEN_STORE_RUNNING};
    check_order(f, &running);
}

static void test_anchor_gone_and_bad_requests(void **state)
{
    struct fixture *f = *state;
    seed(f);
    aspen_store_error e = {0};
    /* a final job deleted under the page's anchor */
    aspen_store_filter ff = {.states = 1u << ASPEN_STORE_SUCCEEDED, .limit = 1};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(f->s, &ff, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    int64_t gone = jobs[0].id;
    aspen_store_jobs_free(jobs, n);
    assert_int_equal(aspen_store_delete(f->s, gone, &e), 0);
    aspen_store_filter pf = {.sort = ASPEN_STORE_SORT_DURATION, .after_id = gone, .limit = 5};
    assert_int_equal(aspen_store_list(f->s, &pf, &jobs, &n, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "is gone"));
    /* an anchor and an offset at once */
    pf.after_id = 1;
    pf.offset = 3;
    assert_int_equal(aspen_store_list(f->s, &pf, &jobs, &n, &e), ASPEN_STORE_EINVAL);
    pf.offset = 0;
    pf.sort = (aspen_store_sort)99;
    assert_int_equal(aspen_store_list(f->s, &pf, &jobs, &n, &e), ASPEN_STORE_EINVAL);
    /* paging by id alone (no sort: the order's direction) */
    aspen_store_filter byid = {.after_id = 10, .limit = 3};
    assert_int_equal(aspen_store_list(f->s, &byid, &jobs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(jobs[0].id, 9);
    assert_int_equal(jobs[2].id, 7);
    aspen_store_jobs_free(jobs, n);
    byid.order = ASPEN_STORE_ORDER_OLDEST;
    assert_int_equal(aspen_store_list(f->s, &byid, &jobs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(jobs[0].id, 11);
    aspen_store_jobs_free(jobs, n);
}

/* Everything a reader sees that migration 14 could change: counts per state, each state's list
 * (newest first), every sort both ways page by page. */
struct reads {
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    int64_t *by_state[ASPEN_STORE_STATE_COUNT];
    size_t n_state[ASPEN_STORE_STATE_COUNT];
    int64_t *sorted[ASPEN_STORE_SORT_COUNT][2];
    size_t n_sorted[ASPEN_STORE_SORT_COUNT][2];
};

static void read_all(struct fixture *f, struct reads *r)
{
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(f->s, r->counts, &e), 0);
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        aspen_store_filter one = {.states = 1u << st, .limit = -1};
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        assert_int_equal(aspen_store_list(f->s, &one, &jobs, &n, &e), 0);
        int64_t counted = 0;
        assert_int_equal(aspen_store_count(f->s, &one, &counted, &e), 0);
        assert_int_equal(counted, (int64_t)n);
        assert_int_equal(r->counts[st], (int64_t)n);
        r->by_state[st] = calloc(n + 1, sizeof *r->by_state[st]);
        for (size_t i = 0; i < n; i++)
            r->by_state[st][i] = jobs[i].id;
        r->n_state[st] = n;
        aspen_store_jobs_free(jobs, n);
    }
    aspen_store_filter none = {0};
    for (int k = ASPEN_STORE_SORT_ID; k < ASPEN_STORE_SORT_COUNT; k++)
        for (int d = 0; d < 2; d++)
            r->sorted[k][d] = paged(f, &none, (aspen_store_sort)k, d, 7, &r->n_sorted[k][d]);
}

static void reads_free(struct reads *r)
{
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        free(r->by_state[st]);
    for (int k = 0; k < ASPEN_STORE_SORT_COUNT; k++)
        for (int d = 0; d < 2; d++)
            free(r->sorted[k][d]);
}

static void version_is(struct fixture *f, int64_t want)
{
    assert_int_equal(f->pg_db[0] ? fx_raw_int(f, "SELECT max(version) FROM aspen_schema")
                                 : fx_raw_int(f, "PRAGMA user_version"),
                     want);
}

/* A database at version 13 (the indexes it had: one per final state, the duration index over
 * every job) with jobs in every state — a key below -1, finished jobs that never ran, a retried
 * one unfinished again — upgrades on open, has version 14's indexes, and reads the same: counts,
 * state filters, every sort both ways. Then the new indexes keep up with more writes. */
static void test_v13_upgrades_and_reads_the_same(void **state)
{
    struct fixture *f = *state;
    seed(f);
    struct reads before = {0}, after = {0};
    read_all(f, &before);
    assert_true(before.counts[ASPEN_STORE_SCHEDULED] > 0 && before.counts[ASPEN_STORE_RUNNING] > 0 &&
                before.counts[ASPEN_STORE_CANCELLED] > 0 && before.counts[ASPEN_STORE_FAILED] > 0);
    /* each of the duration order's blocks has jobs */
    assert_true(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE finished_at < started_at - 1") > 0);
    assert_true(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL"
                              " AND started_at IS NULL") > 0);
    assert_true(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE state = 'scheduled'"
                              " AND attempts > 0") > 0);
    aspen_store_close(f->s);
    f->s = NULL;
    if (f->pg_db[0]) {
        fx_raw_exec(f, "CREATE INDEX jobs_succeeded ON jobs (state) WHERE state = 'succeeded';"
                       "CREATE INDEX jobs_failed ON jobs (state) WHERE state = 'failed';"
                       "CREATE INDEX jobs_cancelled ON jobs (state) WHERE state = 'cancelled';"
                       "UPDATE aspen_schema SET version = 13");
    } else {
        fx_raw_exec(f, "DROP INDEX jobs_final; DROP INDEX jobs_unfinished;"
                       "DROP INDEX jobs_sort_duration;"
                       "CREATE INDEX jobs_sort_duration ON jobs"
                       " ((COALESCE(finished_at - started_at, -1)), id);"
                       "CREATE INDEX jobs_succeeded ON jobs (state) WHERE state = 'succeeded';"
                       "CREATE INDEX jobs_failed ON jobs (state) WHERE state = 'failed';"
                       "CREATE INDEX jobs_cancelled ON jobs (state) WHERE state = 'cancelled';"
                       "PRAGMA user_version = 13");
    }
    version_is(f, 13);
    f->s = open_or_fail(f->path, NULL);
    version_is(f, ASPEN_STORE_SCHEMA_VERSION);
    if (f->pg_db[0]) {
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
                                       " ('jobs_succeeded', 'jobs_failed', 'jobs_cancelled')"),
                         0);
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
                                       " ('jobs_finished', 'jobs_sort_duration')"),
                         2);
    } else {
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                       " ('jobs_succeeded', 'jobs_failed', 'jobs_cancelled')"),
                         0);
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                       " ('jobs_final', 'jobs_unfinished')"),
                         2);
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sqlite_master WHERE name ="
                                       " 'jobs_sort_duration' AND sql LIKE"
                                       " '%WHERE finished_at IS NOT NULL'"),
                         1);
    }
    read_all(f, &after);
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        assert_int_equal(after.counts[st], before.counts[st]);
        assert_int_equal(after.n_state[st], before.n_state[st]);
        for (size_t i = 0; i < before.n_state[st]; i++)
            assert_int_equal(after.by_state[st][i], before.by_state[st][i]);
    }
    for (int k = ASPEN_STORE_SORT_ID; k < ASPEN_STORE_SORT_COUNT; k++)
        for (int d = 0; d < 2; d++) {
            assert_int_equal(after.n_sorted[k][d], before.n_sorted[k][d]);
            for (size_t i = 0; i < before.n_sorted[k][d]; i++)
                if (after.sorted[k][d][i] != before.sorted[k][d][i])
                    fail_msg("sort %s%s after the upgrade: position %zu is job %lld, was %lld",
                             aspen_store_sort_name((aspen_store_sort)k), d ? ",desc" : "", i,
                             (long long)after.sorted[k][d][i], (long long)before.sorted[k][d][i]);
        }
    reads_free(&before);
    reads_free(&after);
    aspen_store_filter none = {0};
    check_order(f, &none);
    /* the upgraded indexes follow new writes: the running jobs finish, a queued one is cancelled */
    aspen_store_error e = {0};
    aspen_store_filter run = {.states = 1u << ASPEN_STORE_RUNNING, .limit = -1};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(f->s, &run, &jobs, &n, &e), 0);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            complete_one(f->s, f->engine, jobs[i].id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 4000), 0);
    aspen_store_jobs_free(jobs, n);
    check_order(f, &none);
    aspen_store_filter fin = {.states = 1u << ASPEN_STORE_SUCCEEDED | 1u << ASPEN_STORE_CANCELLED};
    check_order(f, &fin);
}

static void test_parse_names(void **state)
{
    (void)state;
    aspen_store_sort s = ASPEN_STORE_SORT_NONE;
    bool d = true;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_sort_parse("duration,desc", &s, &d, &e), 0);
    assert_int_equal(s, ASPEN_STORE_SORT_DURATION);
    assert_true(d);
    assert_int_equal(aspen_store_sort_parse("Priority", &s, &d, &e), 0);
    assert_int_equal(s, ASPEN_STORE_SORT_PRIORITY);
    assert_false(d);
    assert_int_equal(aspen_store_sort_parse("age,asc", &s, &d, &e), 0);
    assert_int_equal(s, ASPEN_STORE_SORT_CREATED);
    /* queue sorts like state and attempts, with no index (it was refused before) */
    assert_int_equal(aspen_store_sort_parse("queue,desc", &s, &d, &e), 0);
    assert_int_equal(s, ASPEN_STORE_SORT_QUEUE);
    assert_true(d);
    assert_int_equal(aspen_store_sort_parse("queu", &s, &d, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "did you mean queue?"));
    assert_non_null(strstr(e.msg, "duration, queue,"));
    assert_int_equal(aspen_store_sort_parse("duraton", &s, &d, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "did you mean duration?"));
    assert_non_null(strstr(e.msg, "the columns are id, state"));
    assert_int_equal(aspen_store_sort_parse("id,down", &s, &d, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "COL,desc"));
    assert_int_equal(aspen_store_sort_parse("", &s, &d, &e), ASPEN_STORE_EINVAL);
    for (int i = 0; i < ASPEN_STORE_SORT_COUNT; i++)
        assert_string_not_equal(aspen_store_sort_name((aspen_store_sort)i), "?");
    assert_string_equal(aspen_store_sort_name((aspen_store_sort)99), "?");
}

/* SQLite: a new database has every sort index (the migration to version 9). */
static void test_sqlite_sort_indexes_exist(void **state)
{
    struct fixture *f = *state;
    seed(f);
    const aspen_store_sort with_index[] = {ASPEN_STORE_SORT_GUEST, ASPEN_STORE_SORT_PRIORITY,
                                           ASPEN_STORE_SORT_CREATED, ASPEN_STORE_SORT_DURATION};
    for (size_t i = 0; i < sizeof with_index / sizeof with_index[0]; i++) {
        aspen_store_sort s = with_index[i];
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                 "name = 'jobs_sort_%s'", aspen_store_sort_name((aspen_store_sort)s));
        assert_int_equal(fx_raw_int(f, sql), 1);
    }
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test_setup_teardown(test_every_key_both_ways_paged, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sorted_under_a_filter, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_anchor_gone_and_bad_requests, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_v13_upgrades_and_reads_the_same, fx_setup,
                                        fx_teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_sort_indexes_exist, fx_setup, fx_teardown),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
