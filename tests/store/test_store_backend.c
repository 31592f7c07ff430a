/* test_store_backend.c — the seam between the store's API and its backends: which backend a
 * database name asks for (store_backend_of), that a PostgreSQL name goes to the PostgreSQL backend
 * (with no server there: an error naming what was tried) and never falls through to SQLite as a
 * file of that name, that no error message echoes a password, the shared JSON check of payloads
 * and tags, and that the checks api.c makes for every backend (job specs, payload and tags, binary
 * hashes, a NULL handle) run before any backend is reached. */
#include "helpers.h"

#include <sys/stat.h>

#include "store_backend.h"

static void expect_kind(const char *name, enum store_backend_kind want, const char *want_form)
{
    const char *form = NULL;
    enum store_backend_kind got = store_backend_of(name, &form);
    if (got != want)
        fail_msg("'%s': backend %d, want %d", name ? name : "(null)", got, want);
    assert_non_null(form);
    if (want_form)
        assert_string_equal(form, want_form);
    assert_int_equal(store_backend_of(name, NULL), want); /* form is optional */
    assert_int_equal(aspen_store_name_is_postgres(name), want == STORE_BACKEND_POSTGRES);
}

static void test_paths_are_sqlite(void **state)
{
    (void)state;
    const char *paths[] = {
        "aspen.db",
        "./aspen.db",
        "/var/lib/aspen/aspen.db",
        ":memory:",
        "file:x.db?mode=memory",
        "./a=b.db",         /* '=' after a non-keyword: a file name */
        "/srv/host=x/a.db", /* starts with '/', not a keyword */
        "hots=localhost",   /* not a libpq keyword: libpq would refuse it too; a file here */
        "postgresql",       /* a file named like the scheme, without :// */
        "postgresql:/x",    /* not a URI libpq accepts */
        "Host=x",           /* libpq keywords are lower case */
        "",
        "=x",
        " ",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_kind(paths[i], STORE_BACKEND_SQLITE, "a file path");
    expect_kind(NULL, STORE_BACKEND_SQLITE, "a file path");
}

static void test_postgres_names(void **state)
{
    (void)state;
    expect_kind("postgresql://localhost/aspen", STORE_BACKEND_POSTGRES, "a postgresql:// URI");
    expect_kind("postgresql://", STORE_BACKEND_POSTGRES, "a postgresql:// URI");
    expect_kind("postgres://u:p@db.example:5433/jobs?sslmode=require", STORE_BACKEND_POSTGRES,
                "a postgres:// URI");
    const char *kv = "a libpq key=value connection string";
    expect_kind("host=/tmp dbname=aspen", STORE_BACKEND_POSTGRES, kv);
    expect_kind("dbname=aspen", STORE_BACKEND_POSTGRES, kv);
    expect_kind("  dbname = aspen port=5433", STORE_BACKEND_POSTGRES, kv);
    expect_kind("service=aspen", STORE_BACKEND_POSTGRES, kv);
    expect_kind("user=aspen host=127.0.0.1", STORE_BACKEND_POSTGRES, kv);
    expect_kind("sslmode=disable", STORE_BACKEND_POSTGRES, kv);
}

/* Opening a PostgreSQL name goes to the PostgreSQL backend, never to SQLite: with no server
 * where it points, EIO saying which socket or host and port was tried and how to start a server;
 * and no SQLite file of that name appears. (test_store_pgopen covers a real server.) */
static void test_postgres_open_unreachable(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-backend-test-XXXXXX", cwd[4096];
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    const struct {
        const char *name, *tried;
    } cases[] = {
        {"postgresql://aspen@127.0.0.1:1/aspen", "127.0.0.1 port 1"},
        {"postgres://127.0.0.1:1/aspen", "127.0.0.1 port 1"},
        {"dbname=aspen host=/nonexistent-aspen-dir port=1", "socket /nonexistent-aspen-dir/.s.PGSQL.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aspen_store *s = (aspen_store *)&s; /* must be reset to NULL */
        aspen_store_error e = {0};
        aspen_store_options ro = {.read_only = true};
        for (int opt = 0; opt < 2; opt++) {
            assert_int_equal(aspen_store_open(cases[i].name, opt ? &ro : NULL, &s, &e),
                             ASPEN_STORE_EIO);
            assert_null(s);
            assert_int_equal(e.code, ASPEN_STORE_EIO);
            if (!strstr(e.msg, "cannot reach the PostgreSQL server") ||
                !strstr(e.msg, cases[i].tried) || !strstr(e.msg, "Is it running?") ||
                !strstr(e.msg, "Start it") || !strstr(e.msg, cases[i].name))
                fail_msg("message for '%s': %s", cases[i].name, e.msg);
        }
        struct stat st;
        assert_int_not_equal(stat(cases[i].name, &st), 0); /* no file of that name was made */
    }
    /* A string libpq cannot read is EINVAL, saying how to write one. */
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_open("host=127.0.0.1 bogus=1", NULL, &s, &e), ASPEN_STORE_EINVAL);
    if (!strstr(e.msg, "libpq cannot read it") || !strstr(e.msg, "bogus"))
        fail_msg("%s", e.msg);
    /* An empty directory stays empty: nothing fell through to SQLite. */
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* Hostile: a password in the database name never appears in a message, whatever the form. */
static void test_open_errors_hide_password(void **state)
{
    (void)state;
    const char *names[] = {
        "postgresql://aspen:s3cr3t@127.0.0.1:1/aspen",
        "postgres://u:s3cr3t@127.0.0.1:1/db?sslmode=disable",
        "postgresql://127.0.0.1:1/db?sslmode=disable&password=s3cr3t",
        "host=127.0.0.1 port=1 password=s3cr3t dbname=aspen",
        "password = 's3cr3t with space\\' quote' host=127.0.0.1 port=1 dbname=aspen",
        "host=127.0.0.1 password=s3cr3t bogus=1", /* libpq cannot parse it */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        aspen_store *s = NULL;
        aspen_store_error e = {0};
        assert_true(aspen_store_open(names[i], NULL, &s, &e) < 0);
        assert_null(s);
        if (strstr(e.msg, "s3cr3t") || !strstr(e.msg, "***"))
            fail_msg("password shown for '%s': %s", names[i], e.msg);
    }
}

static void test_redact(void **state)
{
    (void)state;
    char out[128];
    const struct {
        const char *in, *out;
    } v[] = {
        {"postgresql://aspen:pw@localhost:5432/aspen",
         "postgresql://aspen:***@localhost:5432/aspen"},
        {"postgresql://aspen@localhost/aspen", "postgresql://aspen@localhost/aspen"},
        {"postgres://h/db?password=pw&sslmode=require",
         "postgres://h/db?password=***&sslmode=require"},
        {"postgres://h/db?sslmode=require&password=pw",
         "postgres://h/db?sslmode=require&password=***"},
        {"postgres://h/db?xpassword=pw", "postgres://h/db?xpassword=pw"},
        {"host=h password=pw dbname=d", "host=h password=*** dbname=d"},
        {"password='a b\\' c' dbname=d", "password=*** dbname=d"},
        {"password = pw", "password =***"},
        {"password=", "password=***"},
        {"mypassword=pw", "mypassword=pw"},
        {"dbname=d", "dbname=d"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        store_redact_conninfo(v[i].in, out, sizeof out);
        if (strcmp(out, v[i].out) != 0)
            fail_msg("redact '%s': got '%s', want '%s'", v[i].in, out, v[i].out);
    }
    store_redact_conninfo(NULL, out, sizeof out);
    assert_string_equal(out, "");
    /* the public form, for callers that print a database name (aspen worker, the console) */
    aspen_store_name_shown("postgresql://aspen:pw@h/db", out, sizeof out);
    assert_string_equal(out, "postgresql://aspen:***@h/db");
    aspen_store_name_shown("/var/lib/aspen/a password=x.db", out, sizeof out); /* a file */
    assert_string_equal(out, "/var/lib/aspen/a password=x.db");
    aspen_store_name_shown("host=h password='a b' dbname=d", out, sizeof out);
    assert_string_equal(out, "host=h password=*** dbname=d");
    /* Cut at the buffer, always terminated. */
    char small[8];
    memset(small, 'x', sizeof small);
    store_redact_conninfo("postgresql://aspen:pw@h/db", small, sizeof small);
    assert_string_equal(small, "postgr"
                               "e");
    store_redact_conninfo("abc", small, 0); /* size 0: nothing written */
    assert_string_equal(small, "postgre");
}

/* The checks every backend relies on are made before the backend runs: a batch with one bad spec
 * writes nothing (the message names the job), a bad hash is refused, a NULL handle is EINVAL. */
static void test_common_checks_first(void **state)
{
    (void)state;
    aspen_store *s = open_or_fail(":memory:", NULL);
    aspen_store_error e = {0};
    aspen_store_job_spec specs[3] = {{.type = "a"}, {.type = "b"}, {.type = ""}};
    int64_t ids[3] = {0};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job 3 of the batch: job type is missing"));
    specs[2] = (aspen_store_job_spec){.type = "c", .timeout_ms = -1};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job 3 of the batch: max attempts"));
    specs[2] = (aspen_store_job_spec){.type = "c", .binary_sha256 = "ABC"};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "is not a SHA-256"));
    int64_t n = -1;
    assert_int_equal(aspen_store_count(s, NULL, &n, &e), 0);
    assert_int_equal(n, 0);

    aspen_store_binary b;
    assert_int_equal(aspen_store_get_binary(s, "../etc/passwd", &b, &e), ASPEN_STORE_EINVAL);
    assert_null(b.bytes);
    assert_int_equal(aspen_store_put_binary(s, NULL, 5, "x", T0, NULL, &e), ASPEN_STORE_EINVAL);
    aspen_store_close(s);

    aspen_store_job job;
    assert_int_equal(aspen_store_get(NULL, 1, &job, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "no store handle"));
    assert_int_equal(aspen_store_claim(NULL, 1, 4, T0, NULL, NULL, NULL, &e), ASPEN_STORE_EINVAL);
    assert_null(aspen_store_path(NULL));
    aspen_store_close(NULL);
}

static void test_json_check(void **state)
{
    (void)state;
    const char *good[] = {
        "{}",
        "[]",
        " { \"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, \"x\\n\\u00e9\"] } ",
        "\"str\"",
        "0",
        "-0",
        "null",
        "[[[]]]",
        "{\"a\":{\"b\":{}}}",
        "\t\r\n[1]\n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"caf\xc3\xa9\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!store_json_check(good[i], 0, NULL, NULL))
            fail_msg("refused valid JSON: %s", good[i]);
    const struct {
        const char *text;
        size_t at;
    } bad[] = {
        {"", 0},           {"   ", 3},     {"{not json", 1},   {"{\"a\":1,}", 7}, {"[1,]", 3},
        {"[1 2]", 3},      {"01", 1},      {"1.", 2},          {"1e", 2},         {"-", 1},
        {".5", 0},         {"+1", 0},      {"tru", 0},         {"nul", 0},        {"\"abc", 4},
        {"\"a\x01b\"", 2}, {"\"\\x\"", 2}, {"\"\\u12G4\"", 2}, {"{} {}", 3},      {"{1:2}", 1},
        {"{\"a\" 1}", 5},  {"[", 1},       {"{\"a\":}", 5},    {"'a'", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = 99;
        const char *why = NULL;
        if (store_json_check(bad[i].text, 0, &at, &why))
            fail_msg("accepted invalid JSON: %s", bad[i].text);
        assert_non_null(why);
        if (at != bad[i].at)
            fail_msg("'%s': offset %zu (%s), want %zu", bad[i].text, at, why, bad[i].at);
    }
    assert_false(store_json_check(NULL, 0, NULL, NULL));
    /* kind: tags must be an array */
    assert_true(store_json_check(" [\"a\",\"b\"]", '[', NULL, NULL));
    const char *why = NULL;
    assert_false(store_json_check("\"notarray\"", '[', NULL, &why));
    assert_string_equal(why, "not an array");
    assert_false(store_json_check("{}", '[', NULL, NULL));
    /* depth: STORE_JSON_MAX_DEPTH levels pass, one more is refused (no recursion past it) */
    size_t deep = STORE_JSON_MAX_DEPTH + 1;
    char *text = malloc(2 * deep + 1);
    assert_non_null(text);
    memset(text, '[', deep - 1);
    memset(text + deep - 1, ']', deep - 1);
    text[2 * deep - 2] = '\0';
    assert_true(store_json_check(text, 0, NULL, NULL));
    memset(text, '[', deep);
    memset(text + deep, ']', deep);
    text[2 * deep] = '\0';
    assert_false(store_json_check(text, 0, NULL, &why));
    assert_string_equal(why, "nested too deeply");
    free(text);
    /* a hostile million-deep payload is refused quickly, not by a stack overflow */
    size_t huge = 1000000;
    text = malloc(huge + 1);
    assert_non_null(text);
    memset(text, '[', huge);
    text[huge] = '\0';
    assert_false(store_json_check(text, 0, NULL, &why));
    assert_string_equal(why, "nested too deeply");
    free(text);
}

/* Payload and tags are checked before the backend: a batch whose third job has a bad payload
 * writes nothing, and the message names the job, the problem and the byte. */
/* SQLite announces no new work: no descriptor, nothing notified, and the blocking wait returns at
 * once rather than sleeping (its caller polls data_version instead). */
static void test_sqlite_has_no_wait_fd(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int fd = 7;
    assert_int_equal(aspen_store_wait_fd(f->s, &fd, &e), 0);
    assert_int_equal(fd, -1);
    bool woken = true;
    assert_int_equal(aspen_store_notified(f->s, &woken, &e), 0);
    assert_false(woken);
    submit_job(f->s, "x", 0, 0, 1, T0);
    woken = true;
    int64_t t = aspen_store_now_ms();
    assert_int_equal(aspen_store_wait_work(f->s, 5000, &woken, &e), 0);
    assert_false(woken);
    assert_true(aspen_store_now_ms() - t < 1000);
    assert_int_equal(aspen_store_wait_fd(NULL, &fd, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_wait_fd(f->s, NULL, &e), ASPEN_STORE_EINVAL);
}

static void test_payload_tags_checked_first(void **state)
{
    (void)state;
    aspen_store *s = open_or_fail(":memory:", NULL);
    aspen_store_error e = {0};
    aspen_store_job_spec specs[3] = {{.type = "a", .payload = "{\"x\":1}"},
                                     {.type = "b", .tags = "[\"t\"]"},
                                     {.type = "c", .payload = "{\"x\":01}"}};
    int64_t ids[3] = {0};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), ASPEN_STORE_EINVAL);
    if (!strstr(e.msg, "job 3 of the batch: payload is not valid JSON (") ||
        !strstr(e.msg, "at byte 6"))
        fail_msg("%s", e.msg);
    specs[2] = (aspen_store_job_spec){.type = "c", .tags = "{\"a\":1}"};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job 3 of the batch: tags must be a JSON array"));
    int64_t n = -1;
    assert_int_equal(aspen_store_count(s, NULL, &n, &e), 0);
    assert_int_equal(n, 0);
    specs[2] = (aspen_store_job_spec){.type = "c", .payload = " [1, {\"k\": null}] "};
    assert_int_equal(aspen_store_submit_batch(s, specs, 3, T0, ids, &e), 0);
    assert_int_equal(aspen_store_count(s, NULL, &n, &e), 0);
    assert_int_equal(n, 3);
    aspen_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_are_sqlite),
        cmocka_unit_test(test_postgres_names),
        cmocka_unit_test(test_postgres_open_unreachable),
        cmocka_unit_test(test_open_errors_hide_password),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_common_checks_first),
        cmocka_unit_test(test_json_check),
        cmocka_unit_test(test_payload_tags_checked_first),
        cmocka_unit_test_setup_teardown(test_sqlite_has_no_wait_fd, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
