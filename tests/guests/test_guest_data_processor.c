/* tests/guests/test_guest_data_processor.c — guests/data-processor's handler run natively through
 * the SDK's harness (no VM): the aggregates and normalisation on known data, the options, every
 * failure message, big inputs, and a heap too small to finish (a job error, never a crash). The
 * output is checked with jansson, independently of the SDK's own JSON code.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aspen_native.h"

static const aspen_native_config cfg = {.time_s = 1700000000};

static json_t *run_ok(const char *in, aspen_native_result *r)
{
    assert_int_equal(aspen_native_run(&cfg, in, strlen(in), r), 0);
    if (r->status != ASPEN_STATUS_OK)
        fail_msg("status %u: %s", r->status, r->message);
    json_error_t err;
    json_t *j = json_loadb((const char *)r->output, r->output_len, 0, &err);
    if (!j)
        fail_msg("output is not JSON (%s): %s", err.text, r->output);
    return j;
}

static void expect_error(const char *in, const char *substr)
{
    aspen_native_result r;
    assert_int_equal(aspen_native_run(&cfg, in, strlen(in), &r), 0);
    if (r.status != ASPEN_STATUS_ERROR || !strstr(r.message, substr))
        fail_msg("input %s: want an error containing \"%s\", got status %u \"%s\"", in, substr,
                 r.status, r.message);
    aspen_native_result_free(&r);
}

static void test_summary(void **state)
{
    aspen_native_result r;
    json_t *j = run_ok("{\"records\":["
                       "{\"name\":\"  Alice \",\"age\":30,\"city\":\"paris\"},"
                       "{\"name\":\"BOB\\t\\t smith\",\"age\":25.5,\"city\":\"Paris\"},"
                       "{\"name\":\"\xc3\x89lodie\",\"age\":41,\"city\":\" london \",\"vip\":true}]}",
                       &r);
    assert_int_equal(json_integer_value(json_object_get(j, "record_count")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "processed_at")), 1700000000);
    json_t *age = json_object_get(json_object_get(j, "numeric_fields"), "age");
    assert_int_equal(json_integer_value(json_object_get(age, "count")), 3);
    assert_true(json_number_value(json_object_get(age, "min")) == 25.5);
    assert_int_equal(json_integer_value(json_object_get(age, "max")), 41);
    assert_true(json_number_value(json_object_get(age, "sum")) == 96.5);
    assert_true(fabs(json_number_value(json_object_get(age, "mean")) - 96.5 / 3) < 1e-12);
    json_t *names = json_object_get(json_object_get(j, "string_fields"), "name");
    json_t *values = json_object_get(names, "values");
    assert_string_equal(json_string_value(json_array_get(values, 0)), "alice");
    assert_string_equal(json_string_value(json_array_get(values, 1)), "bob smith");
    assert_string_equal(json_string_value(json_array_get(values, 2)), "\xc3\xa9lodie");
    json_t *city = json_object_get(json_object_get(j, "string_fields"), "city");
    assert_int_equal(json_integer_value(json_object_get(city, "distinct")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(city, "counts"), "paris")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "ignored_values"), "vip")), 1);
    /* logs a summary line, and makes exactly two host calls (clock + log) */
    assert_non_null(strstr(r.log, "data-processor: 3 records, 1 numeric and 2 string fields"));
    assert_int_equal(r.host_calls, 2);
    json_decref(j);
    aspen_native_result_free(&r);
}

static void test_exact_integer_sum(void **state)
{
    aspen_native_result r;
    json_t *j = run_ok("{\"records\":[{\"n\":9007199254740993},{\"n\":1},{\"n\":-5}]}", &r);
    json_t *n = json_object_get(json_object_get(j, "numeric_fields"), "n");
    assert_int_equal(json_integer_value(json_object_get(n, "sum")), 9007199254740989LL);
    assert_int_equal(json_integer_value(json_object_get(n, "max")), 9007199254740993LL);
    json_decref(j);
    aspen_native_result_free(&r);
    /* overflowing int64 falls back to a double sum */
    j = run_ok("{\"records\":[{\"n\":9223372036854775807},{\"n\":9223372036854775807}]}", &r);
    n = json_object_get(json_object_get(j, "numeric_fields"), "n");
    assert_true(json_is_real(json_object_get(n, "sum")));
    json_decref(j);
    aspen_native_result_free(&r);
}

static void test_options(void **state)
{
    aspen_native_result r;
    json_t *j = run_ok("{\"records\":[{\"s\":\"  a  B\\u00e9 \"}],"
                       "\"options\":{\"case\":\"upper\",\"values\":false,\"records\":true}}",
                       &r);
    json_t *s = json_object_get(json_object_get(j, "string_fields"), "s");
    assert_null(json_object_get(s, "values"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "counts"), "A B\xc3\x89")), 1);
    json_t *rec0 = json_array_get(json_object_get(j, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(rec0, "s")), "A B\xc3\x89");
    json_decref(j);
    aspen_native_result_free(&r);
    j = run_ok("{\"records\":[{\"s\":\" Mixed  Case \"}],\"options\":{\"case\":\"none\"}}", &r);
    s = json_object_get(json_object_get(j, "string_fields"), "s");
    assert_string_equal(json_string_value(json_array_get(json_object_get(s, "values"), 0)),
                        "Mixed Case");
    json_decref(j);
    aspen_native_result_free(&r);
    j = run_ok("{\"records\":[]}", &r);
    assert_int_equal(json_integer_value(json_object_get(j, "record_count")), 0);
    json_decref(j);
    aspen_native_result_free(&r);
}

static void test_failures(void **state)
{
    expect_error("not json", "input is not valid JSON: invalid literal: expected 'null' at line 1, column 1 (byte 0)");
    expect_error("", "input is not valid JSON: empty input");
    expect_error("{\"records\":[1,2", "line 1, column 16");
    expect_error("[1,2]", "the payload must be a JSON object");
    expect_error("{}", "\"records\" must be an array of objects (it is missing)");
    expect_error("{\"records\":5}", "\"records\" must be an array of objects (number)");
    expect_error("{\"records\":[{},{},\"x\"]}", "records[2] is a string, not an object");
    expect_error("{\"records\":[[]]}", "records[0] is an array, not an object");
    expect_error("{\"records\":[],\"options\":1}", "\"options\" must be an object");
    expect_error("{\"records\":[],\"options\":{\"case\":\"title\"}}", "options.case");
    expect_error("{\"records\":[],\"options\":{\"values\":1}}", "options.values");
}

static void test_big_and_small_heaps(void **state)
{
    /* 5000 records in 8 MiB: fine */
    size_t cap = 1u << 20, n = 0;
    char *in = malloc(cap);
    n += (size_t)snprintf(in + n, cap - n, "{\"records\":[");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(in + n, cap - n, "%s{\"id\":%d,\"name\":\"User %d\",\"team\":\"t%d\"}",
                              i ? "," : "", i, i, i % 7);
    n += (size_t)snprintf(in + n, cap - n, "]}");
    aspen_native_config big = cfg;
    big.memory_bytes = 8u << 20;
    aspen_native_result r;
    assert_int_equal(aspen_native_run(&big, in, n, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_OK);
    json_t *j = json_loadb((const char *)r.output, r.output_len, 0, NULL);
    json_t *id = json_object_get(json_object_get(j, "numeric_fields"), "id");
    assert_int_equal(json_integer_value(json_object_get(id, "sum")), 5000 * 4999 / 2);
    json_t *team = json_object_get(json_object_get(j, "string_fields"), "team");
    assert_int_equal(json_integer_value(json_object_get(team, "distinct")), 7);
    json_decref(j);
    aspen_native_result_free(&r);
    /* the same in 1 MiB: out of memory is a job error with a message */
    assert_int_equal(aspen_native_run(&cfg, in, n, &r), 0);
    assert_int_equal(r.status, ASPEN_STATUS_ERROR);
    assert_non_null(strstr(r.message, "out of memory"));
    aspen_native_result_free(&r);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_exact_integer_sum),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_big_and_small_heaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
