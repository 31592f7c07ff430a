/* tests/guests/test_guest_echo.c — guests/echo-worker's handler run natively through the SDK's
 * harness (guests/sdk/native): the real guest code and SDK runtime, with a fake host instead of a
 * VM. Checks the output, the one log line, the single host call, binary input, and that an input
 * too big for the heap is a job error rather than a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aspen_native.h"

static void test_echo(void **state)
{
    aspen_native_result r;
    const char *in = "{\"message\":\"Hello\"}";
    assert_int_equal(aspen_native_run(NULL, in, strlen(in), &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_OK);
    assert_string_equal((char *)r.output, "Echo: {\"message\":\"Hello\"}");
    assert_string_equal(r.log, "echo-worker: received 19 bytes\n");
    assert_int_equal(r.host_calls, 1);
    aspen_native_result_free(&r);
}

static void test_binary_and_empty(void **state)
{
    aspen_native_result r;
    const unsigned char bin[] = {0, 1, 2, 0xff, 0, '\n'};
    assert_int_equal(aspen_native_run(NULL, bin, sizeof bin, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_OK);
    assert_int_equal(r.output_len, 6 + sizeof bin);
    assert_memory_equal(r.output + 6, bin, sizeof bin);
    aspen_native_result_free(&r);
    assert_int_equal(aspen_native_run(NULL, "", 0, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_OK);
    assert_string_equal((char *)r.output, "Echo: ");
    aspen_native_result_free(&r);
}

static void test_input_larger_than_heap(void **state)
{
    /* 600 KiB in a 1 MiB guest: the reply needs another 600 KiB, which is not there */
    size_t n = 600u << 10;
    char *in = malloc(n);
    memset(in, 'x', n);
    aspen_native_result r;
    assert_int_equal(aspen_native_run(NULL, in, n, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_ERROR);
    assert_non_null(strstr(r.message, "out of memory"));
    aspen_native_result_free(&r);
    /* with room, it works */
    aspen_native_config cfg = {.memory_bytes = 4u << 20};
    assert_int_equal(aspen_native_run(&cfg, in, n, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_OK);
    assert_int_equal(r.output_len, n + 6);
    aspen_native_result_free(&r);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_binary_and_empty),
        cmocka_unit_test(test_input_larger_than_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
