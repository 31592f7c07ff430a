/* tests/engine/test_engine_isolation.c — through the engine, a job never sees what the previous
 * job on its worker's warm VM left behind (docs/ABI.md section 10).
 *
 * One worker, so every job runs on the same pooled VM, one after another: for each channel, a
 * probe job on the VM, then the hostile guest test-leak's plant job, then the same probe again. The
 * two probes' results must be equal, and the pool must have created exactly one VM (the plants did
 * not get their VM thrown away, which would hide a leak). The channels are the ones the VM tests
 * cover one by one (tests/vm/test_isolation.c), here through submit, the pool and the store.
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

#define LEAK GUEST_DIR "/test-leak"

#define TEST_TMP_PREFIX "aspen-engine-isolation"
#include "test_support.h"

/* Submit one job and wait for it to end; returns its state, *result its result (malloc'd). */
static aspen_store_state run_job(aspen_engine *eng, const char *input, char **result)
{
    char payload[128];
    snprintf(payload, sizeof payload, "\"%s\"", input); /* a JSON string */
    aspen_engine_job_spec s = {.guest = LEAK, .payload = payload, .max_attempts = 1};
    int64_t id = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_submit(eng, &s, &id, &err) != 0)
        fail_msg("submit %s: %s", input, err.msg);
    int64_t t0 = now_ms();
    for (;;) {
        aspen_store_job j = {0};
        assert_int_equal(aspen_engine_get(eng, id, &j, &err), 0);
        if (j.state == ASPEN_STORE_SUCCEEDED || j.state == ASPEN_STORE_FAILED) {
            aspen_store_state st = j.state;
            *result = strdup(j.result ? (const char *)j.result : (j.error ? j.error : ""));
            aspen_store_job_clear(&j);
            return st;
        }
        aspen_store_job_clear(&j);
        if (now_ms() - t0 > 30000)
            fail_msg("job %s did not finish", input);
        sleep_ms(1);
    }
}

static void test_no_state_passes_between_jobs(void **state)
{
    (void)state;
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 1;
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0)
        fail_msg("open: %s", err.msg);
    if (aspen_engine_start(eng, &err) != 0)
        fail_msg("start: %s", err.msg);

    /* A guest whose CPU has no PKU (the AMD EPYC machines) faults on wrpkru: the job fails and
     * the VM must stay in the pool as it was. */
    char *cpu = NULL;
    assert_int_equal(run_job(eng, "probe:cpu", &cpu), ASPEN_STORE_SUCCEEDED);
    aspen_store_state pkru_ends = strstr(cpu, "pkru=ok ") ? ASPEN_STORE_SUCCEEDED : ASPEN_STORE_FAILED;
    free(cpu);
    const struct {
        const char *plant, *probe;
        aspen_store_state plant_ends;
    } ch[] = {
        {"regs", "regs", ASPEN_STORE_SUCCEEDED},
        {"xsave", "xsave", ASPEN_STORE_SUCCEEDED}, /* x87, SSE, AVX, PKRU at once */
        {"avx", "avx", ASPEN_STORE_SUCCEEDED},
        {"mxcsr", "mxcsr", ASPEN_STORE_SUCCEEDED},
        {"pkru-poison", "pkru", pkru_ends},
        {"fsgs", "fsgs", ASPEN_STORE_SUCCEEDED},
        {"seg", "seg", ASPEN_STORE_SUCCEEDED},
        {"mem", "mem", ASPEN_STORE_SUCCEEDED},
        {"in", "io", ASPEN_STORE_FAILED}, /* an illegal host call: the job fails, the VM stays */
        {"ins", "io", ASPEN_STORE_FAILED},
        {"tf", "regs", ASPEN_STORE_SUCCEEDED},
    };
    for (size_t i = 0; i < sizeof ch / sizeof ch[0]; i++) {
        char probe[64], plant[64];
        snprintf(probe, sizeof probe, "probe:%s", ch[i].probe);
        snprintf(plant, sizeof plant, "plant:%s", ch[i].plant);
        char *before, *planted, *after;
        assert_int_equal(run_job(eng, probe, &before), ASPEN_STORE_SUCCEEDED);
        aspen_store_state st = run_job(eng, plant, &planted);
        if (st != ch[i].plant_ends)
            fail_msg("%s ended %s: %s", plant, aspen_store_state_name(st), planted);
        if (st == ASPEN_STORE_SUCCEEDED)
            assert_string_equal(planted, "planted");
        assert_int_equal(run_job(eng, probe, &after), ASPEN_STORE_SUCCEEDED);
        if (strcmp(before, after) != 0)
            fail_msg("%s leaks through the engine:\n before: %s\n after:  %s", plant, before, after);
        assert_null(strstr(after, "HIJACKED"));
        free(before);
        free(planted);
        free(after);
    }
    /* every job ran on one warm VM */
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    assert_int_equal(aspen_engine_snapshot_get(eng, snap, &err), 0);
    assert_int_equal(snap->throughput.pool_misses, 1);
    assert_true(snap->throughput.pool_hits >= 3 * (sizeof ch / sizeof ch[0]));
    free(snap);
    aspen_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_state_passes_between_jobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
