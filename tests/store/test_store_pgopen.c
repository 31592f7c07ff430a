/* test_store_pgopen.c — the PostgreSQL backend against a real server (the ctest fixture "pg",
 * tests/store/pg_server.sh), for what only PostgreSQL has: the schema created on first use by
 * several hosts at once, a newer schema and a database that is not Aspen's refused and left
 * untouched, a missing database and a refused user with the command to run, a password never in
 * any message, read-only and no_create, hostile text (weird UTF-8, escapes, NUL bytes in results,
 * bytes that are not UTF-8) and SQL-shaped filter values kept as data, a damaged binary refused
 * when read, the connection killed under a handle (reconnect outside a transaction, a clear EIO
 * inside one), the server's FATAL on an idle connection never printed on stderr, and a server
 * stopped for good (an error saying so after the backoff, marked disconnected), and a server
 * crashed (pg_ctl -m immediate) under a handle whose owner gives up (aspen_store_options.give_up:
 * one reconnect attempt, no backoff, the backoff under way cut short; a lost server, not an
 * ordinary error).
 * The rest of the contract runs in the shared suite (test_store_*_pg). */
#include "helpers.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "pg_store.h"

/* A fixture whose database exists but was never opened by aspen. */
static int empty_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pg_fresh_db(f->pg_db, sizeof f->pg_db, f->path, sizeof f->path);
    snprintf(f->dir, sizeof f->dir, "/tmp");
    *state = f;
    return 0;
}

static int empty_teardown(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    pg_drop_db(f->pg_db);
    free(f);
    return 0;
}

static int open_code(const char *info, const aspen_store_options *o, aspen_store_error *e)
{
    aspen_store *s = (aspen_store *)&s;
    int rc = aspen_store_open(info, o, &s, e);
    if (rc == 0)
        aspen_store_close(s);
    else
        assert_null(s);
    return rc;
}

static void expect_msg(const aspen_store_error *e, const char *a, const char *b)
{
    if (!strstr(e->msg, a) || (b && !strstr(e->msg, b)))
        fail_msg("message lacks '%s'%s%s: %s", a, b ? " or " : "", b ? b : "", e->msg);
}

/* Four hosts open one fresh database at the same moment: each gets a working store, the schema
 * is created once (under the advisory lock), and it reads back as version 4. */
static void test_fresh_database_concurrent_opens(void **state)
{
    struct fixture *f = *state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) /* released all at once by the close below */
                _exit(9);
            aspen_store *s = NULL;
            aspen_store_error e = {0};
            if (aspen_store_open(f->path, NULL, &s, &e) != 0) {
                fprintf(stderr, "child open: %s\n", e.msg);
                _exit(10);
            }
            aspen_store_job_spec spec = {.type = "from-child"};
            int rc = aspen_store_submit(s, &spec, T0, NULL, &e);
            aspen_store_close(s);
            _exit(rc ? 11 : 0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int k = 0; k < 4; k++) {
        int st = 0;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(fx_raw_int(f, "SELECT version FROM aspen_schema"), ASPEN_STORE_SCHEMA_VERSION);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM aspen_schema"), 1);
    assert_int_equal(fx_raw_int(f, "SELECT application_id FROM aspen_schema"), 0x4173706e);
    f->s = open_or_fail(f->path, NULL);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 4);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A schema from a newer aspen is refused at open (ENEWER, permanent); a table dropped under an
 * open handle is ESCHEMA, or ENEWER once aspen_schema says newer. Nothing is written. */
static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "t", 0, 0, 3, T0);
    fx_raw_exec(f, "UPDATE aspen_schema SET version = 99");
    int rc = open_code(f->path, NULL, &e);
    assert_int_equal(rc, ASPEN_STORE_ENEWER);
    assert_true(aspen_store_error_permanent(rc));
    char newer[96];
    snprintf(newer, sizeof newer, "schema version 99 is newer than this aspen (%d)",
             ASPEN_STORE_SCHEMA_VERSION);
    expect_msg(&e, newer, "upgrade aspen");
    assert_int_equal(fx_raw_int(f, "SELECT version FROM aspen_schema"), 99); /* untouched */
    /* under the open handle */
    fx_raw_exec(f, "DROP TABLE attempts");
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(f->s, id, &a, &n, &e), ASPEN_STORE_ENEWER);
    expect_msg(&e, "now has schema version 99", NULL);
    fx_raw_exec(f, "UPDATE aspen_schema SET version = 4");
    assert_int_equal(aspen_store_attempts(f->s, id, &a, &n, &e), ASPEN_STORE_ESCHEMA);
    expect_msg(&e, "missing part of Aspen's schema", "\"attempts\"");
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ESCHEMA));
    assert_int_equal(aspen_store_check(f->s, &e), ASPEN_STORE_ESCHEMA);
}

/* Another program's database is refused with ECORRUPT naming its tables, and left as it was. */
static void test_not_aspen_database(void **state)
{
    struct fixture *f = *state;
    fx_raw_exec(f, "CREATE TABLE bookmarks (url text); INSERT INTO bookmarks VALUES ('x')");
    aspen_store_error e = {0};
    assert_int_equal(open_code(f->path, NULL, &e), ASPEN_STORE_ECORRUPT);
    expect_msg(&e, "is not an Aspen database", "bookmarks");
    expect_msg(&e, "left untouched", "createdb");
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM bookmarks"), 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);
    /* an aspen_schema table that Aspen did not write */
    fx_raw_exec(f, "DROP TABLE bookmarks; CREATE TABLE aspen_schema (version integer,"
                   " application_id bigint); INSERT INTO aspen_schema VALUES (4, 7)");
    assert_int_equal(open_code(f->path, NULL, &e), ASPEN_STORE_ECORRUPT);
    expect_msg(&e, "Aspen did not write", "application id 7");
}

static void test_database_missing(void **state)
{
    (void)state;
    char info[700];
    snprintf(info, sizeof info, "%s dbname=nope_%d", pg_admin_conninfo(), (int)getpid());
    aspen_store_error e = {0};
    assert_int_equal(open_code(info, NULL, &e), ASPEN_STORE_ENOTFOUND);
    char want[64];
    snprintf(want, sizeof want, "database \"nope_%d\" does not exist", (int)getpid());
    expect_msg(&e, want, "create it (createdb");
    snprintf(want, sizeof want, "-O aspen nope_%d, run as a role that may create", (int)getpid());
    expect_msg(&e, want, NULL);
}

/* A role that may not log in, and one that does not exist: EPERM with what to check. */
static void test_authentication_refused(void **state)
{
    (void)state;
    char sql[160], info[700];
    snprintf(sql, sizeof sql, "CREATE ROLE nologin_%d", (int)getpid());
    pg_admin_exec(pg_admin_conninfo(), sql);
    const char *users[] = {"nologin", "ghost"};
    for (int i = 0; i < 2; i++) {
        snprintf(info, sizeof info, "%s user=%s_%d", pg_admin_conninfo(), users[i], (int)getpid());
        aspen_store_error e = {0};
        int rc = open_code(info, NULL, &e);
        assert_int_equal(rc, ASPEN_STORE_EPERM);
        assert_true(aspen_store_error_permanent(rc));
        expect_msg(&e, "refused user", "pg_hba.conf");
    }
    snprintf(sql, sizeof sql, "DROP ROLE nologin_%d", (int)getpid());
    pg_admin_exec(pg_admin_conninfo(), sql);
}

/* Hostile: the password never appears, even when the server echoes it back as the name of the
 * missing database, and in the errors of an open handle. */
static void test_password_never_shown(void **state)
{
    struct fixture *f = *state;
    char info[1200];
    aspen_store_error e = {0};
    snprintf(info, sizeof info, "%s password=s3cr3tpw dbname=s3cr3tpw", pg_admin_conninfo());
    assert_int_equal(open_code(info, NULL, &e), ASPEN_STORE_ENOTFOUND);
    if (strstr(e.msg, "s3cr3tpw") || !strstr(e.msg, "***"))
        fail_msg("password shown: %s", e.msg);
    /* trust authentication ignores the password: the open works, and later errors hide it too */
    snprintf(info, sizeof info, "%s password='s3cr3t pw'", f->path);
    aspen_store *s = open_or_fail(info, NULL);
    fx_raw_exec(f, "DROP TABLE logs");
    aspen_store_log *l = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_logs(s, 1, 0, 0, &l, &n, &e), ASPEN_STORE_ESCHEMA);
    if (strstr(e.msg, "s3cr3t") || !strstr(e.msg, "***"))
        fail_msg("password shown: %s", e.msg);
    aspen_store_close(s);
}

/* read_only and no_create never create the schema; a read-only handle refuses writes. */
static void test_read_only_and_no_create(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_options ro = {.read_only = true}, nc = {.no_create = true};
    /* As a missing SQLite file: ENOTFOUND, saying how to create it. */
    assert_int_equal(open_code(f->path, &ro, &e), ASPEN_STORE_ENOTFOUND);
    expect_msg(&e, "no Aspen schema yet", "nothing was created");
    expect_msg(&e, "--create", NULL);
    assert_int_equal(open_code(f->path, &nc, &e), ASPEN_STORE_ENOTFOUND);
    expect_msg(&e, "no Aspen schema yet", "--create");
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
    f->s = open_or_fail(f->path, NULL);
    submit_job(f->s, "t", 0, 0, 3, T0);
    aspen_store *r = open_or_fail(f->path, &ro);
    int64_t n = 0;
    assert_int_equal(aspen_store_count(r, NULL, &n, &e), 0);
    assert_int_equal(n, 1);
    aspen_store_job_spec spec = {.type = "t"};
    assert_int_equal(aspen_store_submit(r, &spec, T0, NULL, &e), ASPEN_STORE_EPERM);
    expect_msg(&e, "read-only", NULL);
    assert_int_equal(aspen_store_set_paused(r, true, &e), ASPEN_STORE_EPERM);
    aspen_store_close(r);
}

/* Hostile text comes back exactly: UTF-8 of every length, RTL and combining marks, JSON escapes
 * (an escaped backslash before u0000 included), quotes and backslashes in every text column,
 * result bytes with NULs and 0xff. Text a guest sends that is not UTF-8 is stored with U+FFFD
 * instead of failing the commit. A real \u0000 (escaped NUL) in a payload or tag is refused with
 * a reason: PostgreSQL cannot read it back as text, and one such job would make every payload
 * filter on the database fail. */
static void test_weird_text_round_trips(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    const char *payload = "{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xae\xd7\xa9\xd7\x9c "
                          "e\xcc\x81 \xef\xbf\xbf \xf4\x8f\xbf\xbf\","
                          " \"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\\\u0000\\ud83d\\ude00\","
                          " \"q\":\"it's; DROP TABLE jobs; --\"}";
    const char *type = "type \"quoted\" \\ back'slash \xe2\x9c\x93";
    const char *tags = "[\"a'b\",\"\\\"q\\\"\",\"\xc3\xa9\",\"\\u2603\"]";
    aspen_store_job_spec spec = {.type = type,
                                 .payload = payload,
                                 .tags = tags,
                                 .binary_name = "n\xc3\xa4me'\\",
                                 .source_dir = "/src/\xe2\x80\xae'dir"};
    int64_t id = 0;
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_string_equal(j.payload, payload);
    assert_string_equal(j.type, type);
    assert_string_equal(j.tags, tags);
    assert_string_equal(j.binary_name, spec.binary_name);
    assert_string_equal(j.source_dir, spec.source_dir);
    aspen_store_job_clear(&j);
    /* filters on these fields find it */
    aspen_store_filter flt = {.type = type, .tag = "\xc3\xa9", .n_fields = 1};
    flt.fields[0].path = "k";
    flt.fields[0].value = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xae\xd7\xa9\xd7\x9c e\xcc\x81 "
                          "\xef\xbf\xbf \xf4\x8f\xbf\xbf";
    int64_t n = 0;
    if (aspen_store_count(f->s, &flt, &n, &e) != 0)
        fail_msg("filter: %s", e.msg);
    assert_int_equal(n, 1);
    flt = (aspen_store_filter){.tag = "\xe2\x98\x83"}; /* the \u2603 tag, unescaped */
    assert_int_equal(aspen_store_count(f->s, &flt, &n, &e), 0);
    assert_int_equal(n, 1);
    /* a result with NUL and 0xff bytes, an error and a log line that are not UTF-8 */
    int64_t got[1];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, got), 1);
    static const unsigned char out[] = {0, 1, 0xff, 0xfe, 0, '\\', 'x', 0};
    aspen_store_log_line line = {.time_ms = T0, .line = "bad \xff\xc3 byte"};
    aspen_store_completion c = {.job_id = id,
                                .outcome = ASPEN_STORE_OUTCOME_FAILURE,
                                .output = out,
                                .output_size = sizeof out,
                                .error = "err \xc0\xaf overlong",
                                .logs = &line,
                                .n_logs = 1};
    int status = -1;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, T0, &status, NULL, &e), 0);
    assert_int_equal(status, 0);
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.result_size, sizeof out);
    assert_memory_equal(j.result, out, sizeof out);
    assert_string_equal(j.error, "err \xef\xbf\xbd\xef\xbf\xbd overlong");
    aspen_store_job_clear(&j);
    aspen_store_log *logs = NULL;
    size_t nl = 0;
    assert_int_equal(aspen_store_logs(f->s, id, 0, 0, &logs, &nl, &e), 0);
    assert_int_equal(nl, 1);
    assert_string_equal(logs[0].line, "bad \xef\xbf\xbd\xef\xbf\xbd byte");
    aspen_store_logs_free(logs, nl);
    /* an escaped NUL is refused, in the payload and in the tags, and nothing is stored */
    const char *nuls[][2] = {{"{\"a\":\"x\\u0000y\"}", NULL},
                             {"{\"a\":\"\\\\\\u0000\"}", NULL},
                             {NULL, "[\"\\u0000\"]"}};
    for (int i = 0; i < 3; i++) {
        aspen_store_job_spec nul = {.type = "t", .payload = nuls[i][0], .tags = nuls[i][1]};
        assert_int_equal(aspen_store_submit(f->s, &nul, T0, NULL, &e), ASPEN_STORE_EINVAL);
        expect_msg(&e, "\\u0000 (an escaped NUL character)", nuls[i][0] ? "payload" : "tags");
    }
    assert_int_equal(aspen_store_count(f->s, NULL, &n, &e), 0);
    assert_int_equal(n, 1);
    /* and a submitter's text that is not UTF-8 is refused with a reason, not stored mangled */
    aspen_store_job_spec bad = {.type = "t\xff"};
    assert_int_equal(aspen_store_submit(f->s, &bad, T0, NULL, &e), ASPEN_STORE_EINVAL);
    expect_msg(&e, "UTF-8", NULL);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* Hostile: filter values shaped like SQL are data. Nothing matches by accident, nothing is
 * dropped, and a job whose type really is such a string is found by it exactly. */
static void test_filter_values_are_data(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    const char *evil = "x' OR '1'='1";
    submit_job(f->s, evil, 0, 0, 3, T0);
    for (int i = 0; i < 3; i++)
        submit_job(f->s, "plain", 0, 0, 3, T0);
    const char *values[] = {"t'; DROP TABLE jobs; --", "' OR 1=1 --", "\\'; DELETE FROM jobs; --",
                            "$1", "%", "_", "1) OR (1=1", "\"", "*/ OR /*"};
    int64_t n = -1;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        aspen_store_filter byfield[4] = {
            {.type = values[i]},
            {.binary_name = values[i]},
            {.tag = values[i]},
            {.n_fields = 1},
        };
        byfield[3].fields[0].path = "n";
        byfield[3].fields[0].value = values[i];
        for (int k = 0; k < 4; k++) {
            assert_int_equal(aspen_store_count(f->s, &byfield[k], &n, &e), 0);
            assert_int_equal(n, 0);
            aspen_store_job *jobs = NULL;
            size_t nj = 9;
            assert_int_equal(aspen_store_list(f->s, &byfield[k], &jobs, &nj, &e), 0);
            assert_int_equal(nj, 0);
        }
        /* a hostile payload path is a key name, not SQL */
        aspen_store_filter bypath = {.n_fields = 1};
        bypath.fields[0].path = values[i];
        bypath.fields[0].value = "1";
        int rc = aspen_store_count(f->s, &bypath, &n, &e);
        if (rc == 0)
            assert_int_equal(n, 0);
        else
            assert_int_equal(rc, ASPEN_STORE_EINVAL); /* "$1" is not a path */
    }
    aspen_store_filter exact = {.type = evil};
    assert_int_equal(aspen_store_count(f->s, &exact, &n, &e), 0);
    assert_int_equal(n, 1);
    /* the bulk actions too */
    int64_t cancelled = -1, requested = -1;
    aspen_store_filter bulk = {.type = "plain' OR '1'='1"};
    assert_int_equal(aspen_store_cancel_matching(f->s, &bulk, T0, &cancelled, &requested, &e), 0);
    assert_int_equal(cancelled, 0);
    assert_int_equal(aspen_store_count(f->s, NULL, &n, &e), 0);
    assert_int_equal(n, 4);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 4);
    aspen_store_filter badpath = {.n_fields = 1};
    badpath.fields[0].path = "a[x]";
    badpath.fields[0].value = "1";
    assert_int_equal(aspen_store_count(f->s, &badpath, &n, &e), ASPEN_STORE_EINVAL);
    expect_msg(&e, "bad payload field path", NULL);
}

/* A stored copy that does not hash to its name is refused when read (ECORRUPT) and by the check;
 * storing the real bytes again repairs it. */
static void test_damaged_binary(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    static const char bytes[] = "\x7f" "ELF pretend guest";
    char sha[65];
    assert_int_equal(aspen_store_put_binary(f->s, bytes, sizeof bytes, "g", T0, sha, &e), 0);
    aspen_store_binary b;
    assert_int_equal(aspen_store_get_binary(f->s, sha, &b, &e), 0);
    assert_int_equal(b.size, sizeof bytes);
    assert_memory_equal(b.bytes, bytes, sizeof bytes);
    assert_string_equal(b.name, "g");
    aspen_store_binary_clear(&b);
    fx_raw_exec(f, "UPDATE binaries SET bytes = '\\x00'::bytea");
    assert_int_equal(aspen_store_get_binary(f->s, sha, &b, &e), ASPEN_STORE_ECORRUPT);
    assert_null(b.bytes);
    expect_msg(&e, "is damaged", "Resubmit");
    assert_int_equal(aspen_store_check(f->s, &e), ASPEN_STORE_ECORRUPT);
    expect_msg(&e, "does not match its hash", NULL);
    assert_int_equal(aspen_store_put_binary(f->s, bytes, sizeof bytes, "g", T0, sha, &e), 0);
    assert_int_equal(aspen_store_get_binary(f->s, sha, &b, &e), 0);
    aspen_store_binary_clear(&b);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM binaries"), 1);
}

/* Terminates the server process behind this fixture's store and waits until it is gone. */
static void kill_backend(struct fixture *f)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s'"
             " AND application_name = 'aspen'",
             f->pg_db);
    assert_true(fx_raw_int(f, sql) >= 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND"
             " application_name = 'aspen'",
             f->pg_db);
    for (int i = 0; i < 500 && fx_raw_int(f, sql) > 0; i++)
        usleep(10000);
    assert_int_equal(fx_raw_int(f, sql), 0);
}

/* The server process of a handle is killed (pg_terminate_backend, as a restart or a failover
 * does): the next call outside a transaction reconnects and works; inside a transaction the call
 * fails with an EIO that says the transaction was rolled back, and the handle works afterwards. */
static void test_connection_killed(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "t", 0, 0, 3, T0);
    kill_backend(f);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 1);
    assert_int_equal(pgs(f->s)->reconnects, 1);
    /* the prepared statements were made again on the new connection */
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_QUEUED);

    struct pg_store *s = pgs(f->s);
    assert_int_equal(pg_tx_begin(s, &e), 0);
    kill_backend(f);
    PGresult *r = pg_exec(s, "t_probe", "SELECT 1", NULL, "probing", &e);
    assert_null(r);
    assert_int_equal(e.code, ASPEN_STORE_EIO);
    assert_false(aspen_store_error_permanent(e.code));
    assert_true(e.disconnected);
    expect_msg(&e, "lost the connection to the PostgreSQL server", "while probing");
    expect_msg(&e, "rolled back", "retry");
    assert_false(s->in_tx);
    pg_tx_rollback(s); /* what every caller does next: harmless */
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(s->reconnects, 2);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* stderr into a scratch file while a test provokes libpq, so the test can tell whether anything
 * was written there (libpq's default notice processor prints the server's messages on stderr,
 * over the console's screen). */
struct stderr_capture {
    int saved;
    char path[64];
};
static void capture_stderr(struct stderr_capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/aspen-pgerr-XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}
/* Restores stderr; returns how many bytes were written to it meanwhile (and shows them). */
static long release_stderr(struct stderr_capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    struct stat st;
    long n = stat(c->path, &st) == 0 ? (long)st.st_size : -1;
    if (n > 0) {
        char line[600];
        FILE *fp = fopen(c->path, "r");
        while (fp && fgets(line, sizeof line, fp))
            fprintf(stderr, "written to stderr: %s", line);
        if (fp)
            fclose(fp);
    }
    unlink(c->path);
    return n;
}

/* The server ends an idle, listening connection (pg_terminate_backend sends "FATAL: terminating
 * connection due to administrator command", as a fast shutdown does): the message arrives while
 * no statement runs, which libpq hands to the notice processor — by default printed on stderr,
 * drawn raw over the console. Nothing may reach stderr; the next call reconnects and works, and
 * the FATAL is kept for the lost-connection message. */
static void test_server_message_not_on_stderr(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int fd = -1;
    assert_int_equal(aspen_store_wait_fd(f->s, &fd, &e), 0);
    assert_true(fd >= 0);
    struct stderr_capture c;
    capture_stderr(&c);
    kill_backend(f);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ready = poll(&p, 1, 10000);
    bool woken = false;
    int rc = aspen_store_notified(f->s, &woken, &e);
    long written = release_stderr(&c);
    assert_int_equal(ready, 1);
    assert_int_equal(written, 0);
    (void)rc; /* the broken connection is found now or by the next call */
    assert_non_null(strstr(pgs(f->s)->server_said, "terminating connection"));
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(pgs(f->s)->reconnects, 1);
    assert_int_equal(pgs(f->s)->server_said[0], '\0'); /* a new connection, nothing said yet */
}

static void pg_server(const char *cmd, const char *dir)
{
    char line[1200];
    snprintf(line, sizeof line, "bash '%s' %s '%s' >/dev/null", ASPEN_PG_SERVER_SH, cmd, dir);
    if (system(line) != 0)
        fail_msg("%s failed", line);
}

/* A server that goes away for good: after the reconnect backoff (about 5 s) the call fails with
 * EIO saying the connection was lost, that reconnecting failed, and where it tried. */
static void test_server_stopped(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-pgstop-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0); /* the server may run as another user (root: postgres) */
    pg_server("start", dir);
    char path[300], info[600];
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(info, sizeof info, fp));
    fclose(fp);
    info[strcspn(info, "\n")] = '\0';
    aspen_store *s = open_or_fail(info, NULL);
    aspen_store_error e = {0};
    submit_job(s, "t", 0, 0, 3, T0);
    pg_server("stop", dir);
    int64_t t = aspen_store_now_ms();
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    int rc = aspen_store_counts(s, counts, &e);
    int64_t took = aspen_store_now_ms() - t;
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_false(aspen_store_error_permanent(rc));
    assert_true(e.disconnected); /* an outage: an engine waits and says reconnecting */
    expect_msg(&e, "lost the connection to the PostgreSQL server", "could not reconnect for 5 s");
    expect_msg(&e, "cannot reach the PostgreSQL server", "Is it running?");
    expect_msg(&e, "/.s.PGSQL.", NULL);
    /* whole, advice included (libpq's own text once filled the buffer and cut it off) */
    expect_msg(&e, "or fix host and port in --db. The next call tries again", NULL);
    assert_null(strstr(e.msg, "Is the server running"));
    if (took < 4000 || took > 20000)
        fail_msg("gave up after %lld ms, want about 5 s of backoff", (long long)took);
    aspen_store_close(s);
    rmdir(dir);
}

/* Sets the give-up flag after 300 ms: while the call in the main thread sits in its backoff. */
static void *give_up_later(void *arg)
{
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store((_Atomic int *)arg, 1);
    return NULL;
}

/* The server crashes (pg_ctl -m immediate) under a handle whose owner is stopping. A stopping
 * worker's dozen store calls each waited out the 5 s backoff (SIGTERM took 20-25 s); and after an
 * immediate shutdown libpq's own "server closed the connection unexpectedly" (no SQLSTATE, the
 * connection still CONNECTION_OK) was taken for an ordinary error, not an outage, so `aspen
 * worker` exited. Here: a call made after the flag is set fails disconnected without retrying
 * ("not retried: stopping"); a call already in its backoff when the flag is set ends the same
 * way (the message is only that when the loop gave up on the flag); and once the server is back
 * the same handle works again (the flag only cuts retries, it does not close anything). */
static void test_server_crashed_give_up(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-pgcrash-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0); /* the server may run as another user (root: postgres) */
    pg_server("start", dir);
    char path[300], info[600];
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(info, sizeof info, fp));
    fclose(fp);
    info[strcspn(info, "\n")] = '\0';
    static _Atomic int give_up;
    atomic_store(&give_up, 0);
    aspen_store_options o = {.give_up = &give_up};
    aspen_store *s = open_or_fail(info, &o);
    aspen_store_error e = {0};
    submit_job(s, "t", 0, 0, 3, T0);
    int64_t counts[ASPEN_STORE_STATE_COUNT];

    /* 1. stopping before the call */
    pg_server("crash", dir);
    atomic_store(&give_up, 1);
    int rc = aspen_store_counts(s, counts, &e);
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected); /* an outage, not "SQLSTATE none" */
    assert_null(strstr(e.msg, "SQLSTATE none"));
    expect_msg(&e, "could not reconnect (not retried: stopping)", NULL);
    expect_msg(&e, "cannot reach the PostgreSQL server", NULL);
    e = (aspen_store_error){0};
    rc = aspen_store_counts(s, counts, &e); /* and again: still no backoff */
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    expect_msg(&e, "not retried: stopping", NULL);

    /* 2. the flag set while the call is in its backoff (it has ~5 s of it) */
    atomic_store(&give_up, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, give_up_later, &give_up), 0);
    e = (aspen_store_error){0};
    rc = aspen_store_counts(s, counts, &e);
    pthread_join(th, NULL);
    assert_int_equal(rc, ASPEN_STORE_EIO);
    assert_true(e.disconnected);
    expect_msg(&e, "not retried: stopping", NULL);

    /* 3. the server back: the handle reconnects and answers */
    pg_server("up", dir);
    atomic_store(&give_up, 0);
    e = (aspen_store_error){0};
    rc = aspen_store_counts(s, counts, &e);
    if (rc != 0)
        fail_msg("after the server came back: %s", e.msg);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 1);
    aspen_store_close(s);
    pg_server("stop", dir);
    rmdir(dir);
}

int main(void)
{
    if (!test_on_pg()) {
        fprintf(stderr, "test_store_pgopen: run it through ctest (ASPEN_TEST_BACKEND=postgres, "
                        "fixture pg)\n");
        return 1;
    }
#define E(fn) cmocka_unit_test_setup_teardown(fn, empty_setup, empty_teardown)
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        E(test_fresh_database_concurrent_opens),
        T(test_newer_schema_refused),
        E(test_not_aspen_database),
        cmocka_unit_test(test_database_missing),
        cmocka_unit_test(test_authentication_refused),
        T(test_password_never_shown),
        E(test_read_only_and_no_create),
        T(test_weird_text_round_trips),
        T(test_filter_values_are_data),
        T(test_damaged_binary),
        T(test_connection_killed),
        T(test_server_message_not_on_stderr),
        cmocka_unit_test(test_server_stopped),
        cmocka_unit_test(test_server_crashed_give_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
