/* test_store_filter.c — the one filter language of the console and the CLI (store/filter.c):
 * shorthands (guest:, bare states, ids and guest names) mean what their long forms mean; errors
 * name the term, list the valid keys and suggest the near-miss key or state; and hostile text —
 * quotes, very long terms, 10,000 terms, control bytes, SQL-looking values — either parses into
 * exactly the bytes given or fails with EINVAL and a message, never writes past the caller's
 * buffer, and SQL in a value stays data when the filter runs on a real store. */
#include "helpers.h"

static aspen_store_filter f;
static char buf[4096];
static aspen_store_error e;

static int parse(const char *text)
{
    memset(&e, 0, sizeof e);
    return aspen_store_filter_parse(text, &f, buf, sizeof buf, &e);
}

static void expect_ok(const char *text)
{
    if (parse(text) != 0)
        fail_msg("'%s' should parse: %s", text ? text : "(NULL)", e.msg);
}

/* Fails with EINVAL, and the message holds every needle given (NULL-terminated). */
static void expect_err(const char *text, ...)
{
    int rc = parse(text);
    if (rc != ASPEN_STORE_EINVAL)
        fail_msg("'%s' should be refused, got %d", text, rc);
    assert_true(e.msg[0] != '\0');
    va_list ap;
    va_start(ap, text);
    for (const char *n; (n = va_arg(ap, const char *));)
        if (!strstr(e.msg, n))
            fail_msg("'%s': message lacks \"%s\": %s", text, n, e.msg);
    va_end(ap);
}

static void test_shorthands_mean_the_long_forms(void **state)
{
    (void)state;
    expect_ok("guest:echo-worker failed");
    assert_string_equal(f.binary_name, "echo-worker");
    assert_int_equal(f.states, 1u << ASPEN_STORE_FAILED);
    expect_ok("binary:echo-worker state:failed");
    assert_string_equal(f.binary_name, "echo-worker");
    assert_int_equal(f.states, 1u << ASPEN_STORE_FAILED);
    expect_ok("echo-worker");
    assert_string_equal(f.binary_name, "echo-worker");
    assert_int_equal(f.states, 0);
    expect_ok("failed running state:queued");
    assert_int_equal(f.states, (1u << ASPEN_STORE_FAILED) | (1u << ASPEN_STORE_RUNNING) |
                                   (1u << ASPEN_STORE_QUEUED));
    expect_ok("#42");
    assert_int_equal(f.id, 42);
    expect_ok("42 id:42");
    assert_int_equal(f.id, 42);
    /* quoted, a bare word is a guest name whatever it looks like */
    expect_ok("\"failed\" \t");
    assert_string_equal(f.binary_name, "failed");
    assert_int_equal(f.states, 0);
    expect_ok("tag:urgent type:vm_execute rerun-of:7 order:oldest payload.user:alice");
    assert_string_equal(f.tag, "urgent");
    assert_string_equal(f.type, "vm_execute");
    assert_int_equal(f.rerun_of, 7);
    assert_int_equal(f.order, ASPEN_STORE_ORDER_OLDEST);
    assert_int_equal(f.n_fields, 1);
    assert_string_equal(f.fields[0].path, "user");
    assert_string_equal(f.fields[0].value, "alice");
    /* a value may hold ':'; any white space separates terms (a pasted multi-line filter) */
    expect_ok("tag:a:b\n\r\vfailed\f");
    assert_string_equal(f.tag, "a:b");
    assert_int_equal(f.states, 1u << ASPEN_STORE_FAILED);
    expect_ok("   \t\n ");
    assert_int_equal(f.states, 0);
    assert_null(f.binary_name);
    expect_ok(NULL);
}

static void test_errors_name_the_term_and_suggest(void **state)
{
    (void)state;
    expect_err("stat:failed", "'stat'", "stat:failed", "did you mean 'state:'?", "Valid keys",
               "guest:", "payload.FIELD:", NULL);
    expect_err("gust:echo", "did you mean 'guest:'?", NULL);
    expect_err("State:failed", "did you mean 'state:'?", NULL);
    expect_err("ordr:oldest", "did you mean 'order:'?", NULL);
    expect_err("paylod.user:x", "did you mean 'payload.FIELD:'?", NULL);
    expect_err("bogus:1", "'bogus'", "Valid keys", NULL);
    assert_null(strstr(e.msg, "did you mean"));
    expect_err("state:faild", "'faild'", "did you mean 'failed'?", "succeeded", NULL);
    expect_err("state:failed,runing", "did you mean 'running'?", NULL);
    expect_err("state:xyzzy", "'xyzzy'", "States: queued", NULL);
    assert_null(strstr(e.msg, "did you mean"));
    expect_err("payload:x", "payload.FIELD:VALUE", NULL);
    expect_err("payload.a;b:x", "bad payload field", NULL);
    expect_err("state:", "'state:' has no value", NULL);
    expect_err("order:random", "order:newest", NULL);
    expect_err(":x", "unknown filter key ''", NULL);
    expect_err("#abc", "#42", NULL);
    expect_err("id:0", "positive job id", NULL);
    expect_err("id:-1", "positive job id", NULL);
    expect_err("id:1x", "positive job id", NULL);
    expect_err("id:99999999999999999999", "positive job id", NULL);
    expect_err("rerun-of:+5", "positive job id", NULL);
    /* one-valued keys: the same again is fine, another value is refused, not "last one wins" */
    expect_ok("guest:a a binary:a");
    assert_string_equal(f.binary_name, "a");
    expect_err("guest:a guest:b", "'guest:b'", "earlier guest 'a'", NULL);
    expect_err("echo data", "'data'", "earlier guest 'echo'", NULL);
    expect_err("id:1 #2", "earlier job id 1", NULL);
    expect_err("tag:x tag:y", "earlier tag 'x'", NULL);
    expect_err("type:x type:y", "earlier type 'x'", NULL);
}

static void test_quotes(void **state)
{
    (void)state;
    expect_ok("payload.user.name:\"Alice B\" tag:\"a \\\"q\\\" \\\\ z\"");
    assert_string_equal(f.fields[0].value, "Alice B");
    assert_string_equal(f.tag, "a \"q\" \\ z");
    expect_ok("tag:\"state:failed guest:x\"");
    assert_string_equal(f.tag, "state:failed guest:x");
    assert_int_equal(f.states, 0);
    assert_null(f.binary_name);
    expect_ok("tag:\"\\n\""); /* only \" and \\ are escapes: the rest stays as typed */
    assert_string_equal(f.tag, "\\n");
    expect_err("tag:\"open", "unterminated quote", "'tag:\"open'", NULL);
    expect_err("tag:\"", "unterminated quote", NULL);
    expect_err("tag:\"a\\\"", "unterminated quote", NULL);
    expect_err("tag:a\"b", "stray quote", "'tag:a\"b'", NULL);
    expect_err("foo\"bar", "stray quote", NULL);
    expect_err("tag:\"a\"b", "after its closing quote", NULL);
    expect_err("\"x\":y", "after its closing quote", NULL);
    expect_err("\"\"", "empty quoted", NULL);
    expect_err("tag:\"\"", "has no value", NULL);
}

static void test_long_terms_and_many_terms(void **state)
{
    (void)state;
    /* a 100 KB value: refused into a 4 KB buffer, the message cut to a readable length */
    size_t big = 100000;
    char *t = malloc(big + 16);
    assert_non_null(t);
    memcpy(t, "guest:", 6);
    memset(t + 6, 'x', big);
    t[6 + big] = '\0';
    expect_err(t, "filter too long", "100006 bytes", "\u2026", NULL);
    assert_true(strlen(e.msg) < 300);
    /* and taken whole into a buffer big enough */
    char *large = malloc(big + 64);
    assert_non_null(large);
    assert_int_equal(aspen_store_filter_parse(t, &f, large, big + 64, &e), 0);
    assert_int_equal(strlen(f.binary_name), big);
    free(large);
    /* a long term cut in the message never splits a UTF-8 character */
    memcpy(t, "bogus:", 6);
    for (size_t i = 0; i < 100; i++)
        memcpy(t + 6 + 2 * i, "\xc3\xa9", 2); /* é */
    t[206] = '\0';
    expect_err(t, "unknown filter key", NULL);
    const char *q = strstr(e.msg, "in 'bogus:");
    assert_non_null(q);
    const char *cut = strstr(q, "\u2026");
    assert_non_null(cut);
    assert_true(((cut - q) - 10) % 2 == 0); /* whole é's before the ellipsis */
    free(t);

    /* 10,000 terms: repeats take no room, so they fit a small buffer */
    size_t n = 10000, cap = n * 24 + 1;
    char *many = malloc(cap);
    assert_non_null(many);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += (size_t)snprintf(many + w, cap - w, "%s ",
                              i % 4 == 0   ? "failed"
                              : i % 4 == 1 ? "guest:echo-worker"
                              : i % 4 == 2 ? "state:queued,running"
                                           : "payload.user:alice");
    char small[256];
    assert_int_equal(aspen_store_filter_parse(many, &f, small, sizeof small, &e), 0);
    assert_string_equal(f.binary_name, "echo-worker");
    assert_int_equal(f.n_fields, 1);
    assert_int_equal(f.states, (1u << ASPEN_STORE_FAILED) | (1u << ASPEN_STORE_QUEUED) |
                                   (1u << ASPEN_STORE_RUNNING));
    /* 10,000 different payload terms: refused at the fifth, named */
    w = 0;
    for (size_t i = 0; i < n; i++)
        w += (size_t)snprintf(many + w, cap - w, "payload.k%zu:v ", i);
    expect_err(many, "'payload.k4:v'", "at most 4", NULL);
    /* 10,000 different tags: refused at the second */
    w = 0;
    for (size_t i = 0; i < n; i++)
        w += (size_t)snprintf(many + w, cap - w, "tag:t%zu ", i);
    expect_err(many, "'tag:t1'", "earlier tag 't0'", NULL);
    free(many);
}

/* Every buffer size from 1 up: the parse succeeds or says "too long", and never writes past the
 * size it was given (a guard pattern after it stays). */
static void test_every_buffer_size(void **state)
{
    (void)state;
    const char *text = "guest:echo-worker failed payload.user.name:\"Alice B\" tag:urgent "
                       "payload.n:5 type:vm_execute #7 order:queue";
    char mem[512];
    bool ok_seen = false;
    for (size_t size = 1; size < 200; size++) {
        memset(mem, 0xA5, sizeof mem);
        int rc = aspen_store_filter_parse(text, &f, mem, size, &e);
        for (size_t i = size; i < sizeof mem; i++)
            if ((unsigned char)mem[i] != 0xA5)
                fail_msg("buffer of %zu bytes: byte %zu written", size, i);
        if (rc == 0) {
            ok_seen = true;
            assert_string_equal(f.binary_name, "echo-worker");
            assert_string_equal(f.fields[0].value, "Alice B");
            assert_string_equal(f.fields[1].path, "n");
        } else {
            assert_int_equal(rc, ASPEN_STORE_EINVAL);
            assert_non_null(strstr(e.msg, "too long"));
            assert_false(ok_seen); /* once it fits, a larger buffer fits too */
        }
    }
    assert_true(ok_seen);
    assert_int_equal(aspen_store_filter_parse("failed", &f, NULL, 0, &e), ASPEN_STORE_EINVAL);
}

/* Control bytes (no NUL can be in a C string) are data: kept exactly in values, named in errors. */
static void test_control_bytes(void **state)
{
    (void)state;
    expect_ok("guest:a\x1b[2J\x07z tag:\x01\x7f\x9b");
    assert_string_equal(f.binary_name, "a\x1b[2J\x07z");
    assert_string_equal(f.tag, "\x01\x7f\x9b");
    /* quoted escaped, as every store message quotes a name (store_shown): no raw control byte
     * reaches a caller, and the front ends print the same \xNN */
    expect_err("\x1b]0;x\x07:1", "unknown filter key '\\x1b]0;x\\x07'", NULL);
    assert_null(strchr(e.msg, '\x1b'));
    expect_err("tag:caf\xc3\xa9 queue:caf\xc3\xa9", "queue name \"caf\xc3\xa9\" is not valid", NULL);
    expect_err("queue:caf\xff", "queue name \"caf\\xff\" is not valid", NULL);
    expect_ok("\x02\x03"); /* a bare word: a guest name, however odd */
    assert_string_equal(f.binary_name, "\x02\x03");
}

/* SQL in a value is a value: it matches nothing and changes nothing, and the table is still there. */
static void test_sql_looking_values_stay_data(void **state)
{
    struct fixture *fx = *state;
    aspen_store_job_spec spec = {.type = "echo", .payload = "{\"user\":\"alice\"}",
                                 .binary_name = "echo-worker", .tags = "[\"x\"]"};
    int64_t id;
    assert_int_equal(aspen_store_submit(fx->s, &spec, T0, &id, &e), 0);
    spec.binary_name = "x'); DROP TABLE jobs;--";
    assert_int_equal(aspen_store_submit(fx->s, &spec, T0, &id, &e), 0);
    const char *hostile[] = {
        "guest:\"x' OR '1'='1\"",
        "tag:\"x\\\" OR 1=1 --\"",
        "payload.user:\"' OR 1=1; DELETE FROM jobs; --\"",
        "type:echo'--",
        "\"echo-worker' OR 'a'='a\"",
        "payload.user:alice)--",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        expect_ok(hostile[i]);
        int64_t n = -1;
        assert_int_equal(aspen_store_count(fx->s, &f, &n, &e), 0);
        if (n != 0)
            fail_msg("'%s' matched %lld jobs", hostile[i], (long long)n);
    }
    /* a guest name that looks like SQL matches itself, exactly */
    expect_ok("guest:\"x'); DROP TABLE jobs;--\"");
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(fx->s, &f, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, id);
    aspen_store_jobs_free(jobs, n);
    expect_ok("");
    int64_t all = 0;
    assert_int_equal(aspen_store_count(fx->s, &f, &all, &e), 0);
    assert_int_equal(all, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shorthands_mean_the_long_forms),
        cmocka_unit_test(test_errors_name_the_term_and_suggest),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_long_terms_and_many_terms),
        cmocka_unit_test(test_every_buffer_size),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test_setup_teardown(test_sql_looking_values_stay_data, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
