/* tests/guests/test_rust_guests.c — the Rust guests (guests/rust/, built with the crate
 * guests/rust/aspen_jobs_guest) in real micro-VMs (KVM required: these fail, never skip, without it).
 *
 * The Rust ports of the seed's guests must do exactly what the C ports do: rust-echo-worker and
 * echo-worker give the same output and log line for the seed's payload; rust-data-processor and
 * data-processor give the same output bytes (processed_at aside, checked against the clock), the
 * same log line and the same error messages. The hostile guest test-rust-hostile checks that a panic
 * is reported with its message and file:line, that allocations beyond the heap end the job as a
 * reported panic (not a fault), and that a warm VM's allocator is reset by the snapshot (the same
 * run twice gives identical bytes). The last tests run both Rust guests through the engine and
 * check that `aspen demo` runs them.
 *
 * RUST_GUEST_DIR (environment, default the build's guest dir) selects which build of the Rust guests
 * runs: CMake registers this test once per installed toolchain (cargo on the PATH, /usr/bin/cargo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char rust_dir[512];

static void rust_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", rust_dir, name);
}

typedef struct logbuf {
    char text[8192];
    size_t len;
    int lines;
} logbuf;

static void on_log(void *user, const char *line, size_t len)
{
    logbuf *l = user;
    if (l->len + len + 2 < sizeof l->text) {
        memcpy(l->text + l->len, line, len);
        l->len += len;
        l->text[l->len++] = '\n';
        l->text[l->len] = '\0';
    }
    l->lines++;
}

static aspen_vm *make_vm(const char *path, size_t memory)
{
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    int rc = aspen_vm_image_load_file(path, &img, &err);
    if (rc)
        fprintf(stderr, "load %s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    if (memory)
        cfg.memory_bytes = memory;
    aspen_vm *vm = NULL;
    rc = aspen_vm_create(img, &cfg, NULL, &vm, &err);
    if (rc)
        fprintf(stderr, "create %s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    aspen_vm_image_release(img);
    return vm;
}

static void run(aspen_vm *vm, const void *in, size_t len, aspen_vm_result *r, logbuf *log)
{
    aspen_vm_error err = {0};
    memset(log, 0, sizeof *log);
    aspen_vm_run_opts o = {.input = in, .input_len = len, .on_log = on_log, .log_user = log};
    int rc = aspen_vm_run(vm, &o, r, &err);
    if (rc)
        fprintf(stderr, "run: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void run_str(aspen_vm *vm, const char *in, aspen_vm_result *r, logbuf *log)
{
    run(vm, in, strlen(in), r, log);
}

/* ---- echo-worker ------------------------------------------------------------------------------- */

static void test_echo_matches_c(void **state)
{
    (void)state;
    char path[600];
    rust_path(path, sizeof path, "rust-echo-worker");
    aspen_vm *rvm = make_vm(path, 0), *cvm = make_vm(GUEST_DIR "/echo-worker", 0);
    const char *payloads[] = {"{\"message\":\"Hello\"}", "", "x"};
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
        aspen_vm_result r = {0}, c = {0};
        logbuf rl, cl;
        run_str(rvm, payloads[i], &r, &rl);
        run_str(cvm, payloads[i], &c, &cl);
        assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
        assert_int_equal(c.outcome, ASPEN_VM_SUCCESS);
        assert_int_equal(r.output_len, c.output_len);
        assert_memory_equal(r.output, c.output, c.output_len);
        assert_string_equal(rl.text, cl.text);
        assert_int_equal(r.stats.host_calls, 1);
        aspen_vm_result_free(&r);
        aspen_vm_result_free(&c);
    }
    /* the seed's payload, spelled out */
    aspen_vm_result r = {0};
    logbuf rl;
    run_str(rvm, "{\"message\":\"Hello\"}", &r, &rl);
    assert_string_equal((char *)r.output, "Echo: {\"message\":\"Hello\"}");
    assert_string_equal(rl.text, "echo-worker: received 19 bytes\n");
    aspen_vm_result_free(&r);
    /* binary input comes back byte for byte */
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7);
    run(rvm, bin, sizeof bin, &r, &rl);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_int_equal(r.output_len, 6 + sizeof bin);
    assert_memory_equal(r.output + 6, bin, sizeof bin);
    aspen_vm_result_free(&r);
    aspen_vm_destroy(rvm);
    aspen_vm_destroy(cvm);
}

/* ---- data-processor ---------------------------------------------------------------------------- */

/* Removes "processed_at":N from a result (in place) and returns N, or -1 when it is missing. */
static long long cut_processed_at(char *s)
{
    char *p = strstr(s, ",\"processed_at\":");
    if (!p)
        return -1;
    char *num = p + strlen(",\"processed_at\":");
    char *end;
    long long v = strtoll(num, &end, 10);
    memmove(p, end, strlen(end) + 1);
    return v;
}

static const char *const dp_payloads[] = {
    /* the seed's payload: records to summarise */
    "{\"records\":[{\"name\":\"  Alice \",\"age\":30,\"city\":\"paris\"},"
    "{\"name\":\"Bob   Smith\",\"age\":41.5,\"city\":\"Paris\",\"x\":null},"
    "{\"name\":\"\\u00c9LODIE\",\"age\":25,\"city\":\"lyon\"}]}",
    "{\"records\":[{\"s\":\" a  b\\u00e9 \",\"n\":1e2,\"b\":true},{\"s\":\"A\",\"n\":-0.125,\"n2\":[1]}],"
    "\"options\":{\"case\":\"upper\",\"records\":true,\"values\":false}}",
    "{\"records\":[{\"v\":9007199254740993},{\"v\":9223372036854775807},{\"v\":1},{\"w\":0.1},"
    "{\"w\":1e-7},{\"w\":123456789012345678901234567890},{\"w\":-2.5e300},{\"k\":\"x\",\"k\":\"y\"}],"
    "\"options\":{\"case\":\"none\"}}",
    "{\"records\":[],\"options\":null}",
    /* failures: each must be the same error as the C port's */
    "not json", "", "{\"records\":[1,2", "[1,2]", "{}", "{\"records\":5}",
    "{\"records\":[{},{},\"x\"]}", "{\"records\":[[]]}", "{\"records\":[],\"options\":1}",
    "{\"records\":[],\"options\":{\"case\":\"title\"}}",
    "{\"records\":[],\"options\":{\"values\":1}}", "{\"records\":[],\"options\":{\"records\":\"no\"}}",
    "{\"records\":[{\"a\":\"\\ud800\"}]}", "{\"records\":[{\"a\":01}]}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

static long long realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

static void test_data_processor_matches_c(void **state)
{
    (void)state;
    char path[600];
    rust_path(path, sizeof path, "rust-data-processor");
    aspen_vm *rvm = make_vm(path, 0), *cvm = make_vm(GUEST_DIR "/data-processor", 0);
    for (size_t i = 0; i < sizeof dp_payloads / sizeof *dp_payloads; i++) {
        aspen_vm_result r = {0}, c = {0};
        logbuf rl, cl;
        /* the host's clock (hl_get_time reads CLOCK_REALTIME): time() may lag it by a tick */
        long long t0 = realtime_s();
        run_str(rvm, dp_payloads[i], &r, &rl);
        run_str(cvm, dp_payloads[i], &c, &cl);
        long long t1 = realtime_s();
        if (r.outcome != c.outcome || strcmp(r.message, c.message) != 0)
            fprintf(stderr, "payload %zu: rust %s '%s', C %s '%s'\n", i,
                    aspen_vm_outcome_name(r.outcome), r.message, aspen_vm_outcome_name(c.outcome),
                    c.message);
        assert_int_equal(r.outcome, c.outcome);
        assert_string_equal(r.message, c.message);
        if (c.outcome == ASPEN_VM_SUCCESS) {
            long long rt = cut_processed_at((char *)r.output);
            long long ct = cut_processed_at((char *)c.output);
            assert_true(rt >= t0 && rt <= t1);
            assert_true(ct >= t0 && ct <= t1);
            if (strcmp((char *)r.output, (char *)c.output) != 0)
                fprintf(stderr, "payload %zu:\n rust %s\n C    %s\n", i, (char *)r.output,
                        (char *)c.output);
            assert_string_equal((char *)r.output, (char *)c.output);
            assert_string_equal(rl.text, cl.text);
        } else {
            assert_int_equal(c.outcome, ASPEN_VM_JOB_ERROR);
        }
        aspen_vm_result_free(&r);
        aspen_vm_result_free(&c);
    }
    /* the seed's summary, spelled out */
    aspen_vm_result r = {0};
    logbuf rl;
    run_str(rvm, dp_payloads[0], &r, &rl);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_non_null(strstr((char *)r.output, "\"record_count\":3"));
    assert_non_null(strstr((char *)r.output,
                           "\"age\":{\"count\":3,\"min\":25,\"max\":41.5,\"sum\":96.5,"
                           "\"mean\":32.166666666666664}"));
    assert_non_null(strstr((char *)r.output, "\"values\":[\"alice\",\"bob smith\",\"\xc3\xa9lodie\"]"));
    assert_string_equal(rl.text, "data-processor: 3 records, 1 numeric and 2 string fields\n");
    aspen_vm_result_free(&r);
    aspen_vm_destroy(rvm);
    aspen_vm_destroy(cvm);
}

/* ---- hostile ----------------------------------------------------------------------------------- */

/* The line of tests/guests/rust-hostile/src/main.rs that holds the panic (marked PANIC_HERE). */
static int panic_line(void)
{
    FILE *f = fopen(HOSTILE_SRC, "r");
    assert_non_null(f);
    char line[512];
    int n = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        if (strstr(line, "panic!(") && strstr(line, "PANIC_HERE")) {
            found = n;
            break;
        }
    }
    fclose(f);
    assert_true(found > 0);
    return found;
}

static void test_panic_reports_message_and_location(void **state)
{
    (void)state;
    char path[600], want[256];
    rust_path(path, sizeof path, "test-rust-hostile");
    aspen_vm *vm = make_vm(path, 0);
    aspen_vm_result r = {0};
    logbuf l;
    run_str(vm, "panic", &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_PANIC);
    snprintf(want, sizeof want, "guest panicked: deliberate panic: 42 at src/main.rs:%d:", panic_line());
    if (strncmp(r.message, want, strlen(want)) != 0)
        fprintf(stderr, "got '%s', want '%s...'\n", r.message, want);
    assert_memory_equal(r.message, want, strlen(want));
    aspen_vm_result_free(&r);
    /* a panic raised inside core */
    run_str(vm, "unwrap", &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_PANIC);
    assert_non_null(strstr(r.message, "called `Option::unwrap()` on a `None` value at src/main.rs:"));
    aspen_vm_result_free(&r);
    /* the VM is fine afterwards */
    run_str(vm, "still here", &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_string_equal((char *)r.output, "still here");
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);
}

static void test_allocation_beyond_heap(void **state)
{
    (void)state;
    char path[600];
    rust_path(path, sizeof path, "test-rust-hostile");
    aspen_vm *vm = make_vm(path, 1u << 20);
    const char *modes[] = {"oom", "grow"};
    for (size_t i = 0; i < 2; i++) {
        aspen_vm_result r = {0};
        logbuf l;
        run_str(vm, modes[i], &r, &l);
        if (r.outcome != ASPEN_VM_PANIC)
            fprintf(stderr, "%s: %s %s\n", modes[i], aspen_vm_outcome_name(r.outcome), r.message);
        assert_int_equal(r.outcome, ASPEN_VM_PANIC);
        assert_non_null(strstr(r.message, "guest panicked: memory allocation of "));
        assert_non_null(strstr(r.message, "bytes failed (out of guest memory: "));
        aspen_vm_result_free(&r);
    }
    /* the input itself is not heap: a 600 KiB echo in 1 MiB needs 600 KiB more, which is not there */
    size_t n = 600u << 10;
    char *big = malloc(n);
    memset(big, 'x', n);
    aspen_vm_result r = {0};
    logbuf l;
    run(vm, big, n, &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_PANIC);
    assert_non_null(strstr(r.message, "memory allocation of"));
    aspen_vm_result_free(&r);
    /* and the VM still works, with the whole heap back */
    run_str(vm, "ok", &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_string_equal((char *)r.output, "ok");
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);
    /* with room, the same input works */
    vm = make_vm(path, 4u << 20);
    run(vm, big, n, &r, &l);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_int_equal(r.output_len, n);
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);
    free(big);
}

static void test_warm_runs_identical(void **state)
{
    (void)state;
    char path[600];
    rust_path(path, sizeof path, "test-rust-hostile");
    aspen_vm *vm = make_vm(path, 2u << 20);
    aspen_vm_result a = {0}, b = {0}, x = {0};
    logbuf l;
    run_str(vm, "heap", &a, &l);
    assert_int_equal(a.outcome, ASPEN_VM_SUCCESS);
    assert_non_null(strstr((char *)a.output, "before=(0, ")); /* a job starts with an empty heap */
    run_str(vm, "grow", &x, &l); /* exhausts the heap in between */
    assert_int_equal(x.outcome, ASPEN_VM_PANIC);
    run_str(vm, "heap", &b, &l);
    assert_int_equal(b.outcome, ASPEN_VM_SUCCESS);
    assert_string_equal((char *)a.output, (char *)b.output);
    aspen_vm_result_free(&a);
    aspen_vm_result_free(&b);
    aspen_vm_result_free(&x);
    aspen_vm_destroy(vm);
    /* the data processor too, twice on one VM (processed_at aside) */
    char dp[600];
    rust_path(dp, sizeof dp, "rust-data-processor");
    vm = make_vm(dp, 0);
    run_str(vm, dp_payloads[2], &a, &l);
    run_str(vm, dp_payloads[2], &b, &l);
    assert_int_equal(a.outcome, ASPEN_VM_SUCCESS);
    assert_int_equal(b.outcome, ASPEN_VM_SUCCESS);
    cut_processed_at((char *)a.output);
    cut_processed_at((char *)b.output);
    assert_string_equal((char *)a.output, (char *)b.output);
    assert_int_equal(a.stats.pages_dirtied, b.stats.pages_dirtied);
    aspen_vm_result_free(&a);
    aspen_vm_result_free(&b);
    aspen_vm_destroy(vm);
}

/* json! builds what serde_json's would, the writer's bytes are the C SDK's conventions (integral
 * numbers as integers, %.17g-style shortest digits, \u00XX for controls, UTF-8 raw), the parser
 * reads them back to an equal value, and v["missing"]["deeper"] is null rather than a panic. */
static void test_json_macro_and_writer(void **state)
{
    (void)state;
    char path[600];
    rust_path(path, sizeof path, "test-rust-hostile");
    aspen_vm *vm = make_vm(path, 0);
    aspen_vm_result r = {0};
    logbuf l;
    run_str(vm, "json", &r, &l);
    if (r.outcome != ASPEN_VM_SUCCESS)
        fprintf(stderr, "%s\n", r.message);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_string_equal((char *)r.output,
                        "{\"a\":[1,null,\"s\",true,{\"n\":-2},[],{}],\"b\":6,\"k2\":0.5,\"c\":null,"
                        "\"d\":3,\"e\":null,\"f\":\"quote\\\" \\\\ \\n \\u0001 \xc3\xa9\","
                        "\"g\":0.30000000000000004,\"h\":1e+21,\"i\":1.5e-07,\"j\":-0,"
                        "\"k\":18446744073709551615,\"l\":-9223372036854775808} | s true -2 6 7");
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);
}

/* ---- through the engine ------------------------------------------------------------------------ */

static void test_through_engine(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-rust-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[600];
    snprintf(db, sizeof db, "%s/t.db", dir);
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = db;
    cfg.workers = 1;
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    int rc = aspen_engine_open(&cfg, &eng, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);

    char echo[600], dp[600];
    rust_path(echo, sizeof echo, "rust-echo-worker");
    rust_path(dp, sizeof dp, "rust-data-processor");
    aspen_engine_job_spec specs[3] = {
        {.guest = echo, .payload = "{\"message\":\"Hello\"}"},
        {.guest = dp, .payload = dp_payloads[0]},
        {.guest = dp, .payload = "{\"records\":5}", .max_attempts = 1},
    };
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        rc = aspen_engine_submit(eng, &specs[i], &ids[i], &err);
        if (rc)
            fprintf(stderr, "submit: %s\n", err.msg);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    assert_int_equal(aspen_engine_wait_idle(eng, 60000, true, &err), 0);

    aspen_store_job j = {0};
    assert_int_equal(aspen_engine_get(eng, ids[0], &j, &err), 0);
    assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
    assert_string_equal((char *)j.result, "Echo: {\"message\":\"Hello\"}");
    assert_int_equal(j.log_count, 1);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_engine_get(eng, ids[1], &j, &err), 0);
    assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
    assert_non_null(strstr((char *)j.result, "\"record_count\":3"));
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_engine_get(eng, ids[2], &j, &err), 0);
    assert_int_equal(j.state, ASPEN_STORE_FAILED);
    assert_non_null(j.error);
    assert_non_null(strstr(j.error, "\"records\" must be an array of objects (number)"));
    aspen_store_job_clear(&j);

    assert_int_equal(aspen_engine_stop(eng, 5000, &err), 0);
    aspen_engine_close(eng);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- aspen demo ---------------------------------------------------------------------------------- */

/* The text of the report block "== job N: TITLE..." up to the next "\n== ", or NULL. */
static char *report_block(const char *out, const char *title)
{
    const char *p = strstr(out, title);
    if (!p)
        return NULL;
    const char *end = strstr(p, "\n== ");
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char *b = malloc(n + 1);
    memcpy(b, p, n);
    b[n] = '\0';
    return b;
}

static void test_demo_runs_rust_guests(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-rust-demo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ASPEN_GUEST_DIR='%s' '%s' demo --db '%s/demo.db' 2>&1", GUEST_DIR,
             ASPEN_BIN, dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += k;
    out[len] = '\0';
    int status = pclose(f);
    if (status != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(status, 0);
    char *e = report_block(out, ": rust-echo-worker");
    char *d = report_block(out, ": rust-data-processor");
    if (!e || !d)
        fprintf(stderr, "%s\n", out);
    assert_non_null(e);
    assert_non_null(d);
    assert_non_null(strstr(e, "succeeded, type vm_execute (micro-VM)"));
    assert_non_null(strstr(e, "out  Echo: {\"message\":\"Hello\"}"));
    assert_non_null(strstr(d, "succeeded, type vm_execute (micro-VM)"));
    assert_non_null(strstr(d, "\"record_count\":3"));
    free(e);
    free(d);
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const char *d = getenv("RUST_GUEST_DIR");
    snprintf(rust_dir, sizeof rust_dir, "%s", d && *d ? d : GUEST_DIR);
    fprintf(stderr, "Rust guests from %s\n", rust_dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_matches_c),
        cmocka_unit_test(test_data_processor_matches_c),
        cmocka_unit_test(test_panic_reports_message_and_location),
        cmocka_unit_test(test_allocation_beyond_heap),
        cmocka_unit_test(test_warm_runs_identical),
        cmocka_unit_test(test_json_macro_and_writer),
        cmocka_unit_test(test_through_engine),
        cmocka_unit_test(test_demo_runs_rust_guests),
    };
    /* The demo always uses the build's own guests: only the default registration runs it. */
    size_t n = sizeof tests / sizeof *tests;
    if (d && *d)
        n--;
    return _cmocka_run_group_tests("test_rust_guests", tests, n, NULL, NULL);
}
