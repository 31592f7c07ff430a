/* tests/engine/test_engine_linux.c — static Linux programs (musl-gcc -static, docs/ABI.md section
 * 12) as jobs through the engine: submit, the warm VM pool, the store.
 *
 * zlib's minigzip, unmodified, compresses a job's payload (its stdin) and the result inflates back
 * to it; arguments come from the job's "arg:" tags and key the VM pool (start-up saw them); stderr
 * lines are the job's log; a non-zero exit status fails the job with it; and on one worker's warm
 * VM the hostile test-lx-leak's plant job leaves nothing for the next job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define TEST_TMP_PREFIX "aspen-engine-linux"
#include "test_support.h"

static aspen_engine *start_engine(int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0)
        fail_msg("open: %s", err.msg);
    if (aspen_engine_start(eng, &err) != 0)
        fail_msg("start: %s", err.msg);
    return eng;
}

/* Submit one job and wait for it to end; *job is its row (clear it). */
static aspen_store_state run_job(aspen_engine *eng, const char *guest, const char *payload,
                                 const char *const *tags, size_t n_tags, aspen_store_job *job,
                                 int64_t *id_out)
{
    aspen_engine_job_spec s = {.guest = guest, .payload = payload, .max_attempts = 1,
                               .memory_bytes = 8 << 20, .tags = tags, .n_tags = n_tags};
    int64_t id = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_submit(eng, &s, &id, &err) != 0)
        fail_msg("submit %s: %s", guest, err.msg);
    if (id_out)
        *id_out = id;
    int64_t t0 = now_ms();
    for (;;) {
        memset(job, 0, sizeof *job);
        assert_int_equal(aspen_engine_get(eng, id, job, &err), 0);
        if (job->state == ASPEN_STORE_SUCCEEDED || job->state == ASPEN_STORE_FAILED)
            return job->state;
        aspen_store_job_clear(job);
        if (now_ms() - t0 > 30000)
            fail_msg("job %s did not finish", guest);
        sleep_ms(2);
    }
}

static void test_minigzip_job(void **state)
{
    (void)state;
    aspen_engine *eng = start_engine(1);
    static const char payload[] = "{\"text\": \"to be or not to be, to be or not to be, that is "
                                  "the question, to be or not to be\"}";
    for (int i = 0; i < 3; i++) {
        aspen_store_job j;
        assert_int_equal(run_job(eng, GUEST_DIR "/minigzip", payload, NULL, 0, &j, NULL),
                         ASPEN_STORE_SUCCEEDED);
        /* the result is gzip data; it inflates back to the payload */
        uint8_t back[512];
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = j.result;
        z.avail_in = (uInt)j.result_size;
        z.next_out = back;
        z.avail_out = sizeof back;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, sizeof payload - 1);
        assert_memory_equal(back, payload, sizeof payload - 1);
        inflateEnd(&z);
        assert_true(j.result_size < sizeof payload - 1);
        aspen_store_job_clear(&j);
    }
    aspen_engine_close(eng);
}

static void test_args_logs_status(void **state)
{
    (void)state;
    aspen_engine *eng = start_engine(1);
    aspen_engine_error err = {0};
    const char *echo[] = {"arg:echo", "other-tag", "arg:two words"};
    aspen_store_job j;
    int64_t id;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-probe", "[1,2]", echo, 3, &j, &id),
                         ASPEN_STORE_SUCCEEDED);
        assert_string_equal((char *)j.result, "argv[1]=echo\nargv[2]=two words\n[1,2]");
        aspen_store_job_clear(&j);
        aspen_store_log *logs = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_logs(eng, id, 0, 100, &logs, &n, &err), 0);
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found += strstr(logs[k].line, "probe: 5 bytes, argc 3") != NULL;
        assert_int_equal(found, 1);
        aspen_store_logs_free(logs, n);
    }
    /* other arguments: another VM (start-up saw argv); a failing exit status fails the job */
    const char *ex[] = {"arg:exit"};
    assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-probe", "3", ex, 1, &j, NULL),
                     ASPEN_STORE_FAILED);
    assert_non_null(strstr(j.error, "exited with status 3"));
    aspen_store_job_clear(&j);
    assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-probe", "[1,2]", echo, 3, &j, NULL),
                     ASPEN_STORE_SUCCEEDED);
    aspen_store_job_clear(&j);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    assert_int_equal(aspen_engine_snapshot_get(eng, snap, &err), 0);
    assert_int_equal(snap->throughput.pool_misses, 2); /* echo, exit; echo again reuses its VM */
    free(snap);
    aspen_engine_close(eng);
}

static void test_no_state_passes(void **state)
{
    (void)state;
    aspen_engine *eng = start_engine(1);
    aspen_store_job j;
    assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-leak", "\"check\"", NULL, 0, &j, NULL),
                     ASPEN_STORE_SUCCEEDED);
    char *before = strdup((char *)j.result);
    aspen_store_job_clear(&j);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-leak", "\"plant\"", NULL, 0, &j, NULL),
                         ASPEN_STORE_SUCCEEDED);
        assert_string_equal((char *)j.result, "planted\n");
        aspen_store_job_clear(&j);
        assert_int_equal(run_job(eng, GUEST_DIR "/test-lx-leak", "\"check\"", NULL, 0, &j, NULL),
                         ASPEN_STORE_SUCCEEDED);
        assert_string_equal((char *)j.result, before);
        aspen_store_job_clear(&j);
    }
    free(before);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_snapshot_get(eng, snap, &err), 0);
    assert_int_equal(snap->throughput.pool_misses, 1); /* one warm VM ran them all */
    free(snap);
    aspen_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minigzip_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args_logs_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_state_passes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
