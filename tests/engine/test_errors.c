/* tests/engine/test_errors.c — the rooms' error tables (ASPEN_VM_ERRNO_MAP, ASPEN_STORE_ERRNO_MAP,
 * ASPEN_ENGINE_ERRNO_MAP): every code has a unique name and a message, the three rooms' ranges do
 * not overlap (so a code handed up unchanged still names its room), the engine's name function
 * answers for all three, and the store's permanent flag is the table's. */
#include "aspen_engine.h"
#include "aspen_store.h"
#include "aspen_vm.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct code {
    int value;
    const char *name;
    const char *room;
};

#define VM_CODE(name, value, text) {value, "ASPEN_VM_" #name, "vm"},
#define STORE_CODE(name, value, permanent, text) {value, "ASPEN_STORE_" #name, "store"},
#define ENGINE_CODE(name, value, text) {value, "ASPEN_ENGINE_" #name, "engine"},
static const struct code CODES[] = {
    ASPEN_VM_ERRNO_MAP(VM_CODE) ASPEN_STORE_ERRNO_MAP(STORE_CODE) ASPEN_ENGINE_ERRNO_MAP(ENGINE_CODE)};
#define N_CODES (sizeof CODES / sizeof CODES[0])

static void every_code_is_named_once(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        assert_true(CODES[i].value < 0);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_int_not_equal(CODES[i].value, CODES[j].value); /* no overlap between rooms */
        /* the engine's function names any room's code; each room's its own only */
        assert_string_equal(aspen_engine_err_name(CODES[i].value), CODES[i].name);
        const char *text = aspen_engine_strerror(CODES[i].value);
        assert_non_null(text);
        assert_true(strlen(text) > 5);
        const char *own = strcmp(CODES[i].room, "vm") == 0      ? aspen_vm_err_name(CODES[i].value)
                          : strcmp(CODES[i].room, "store") == 0 ? aspen_store_err_name(CODES[i].value)
                                                                : CODES[i].name;
        assert_string_equal(own, CODES[i].name);
        if (strcmp(CODES[i].room, "vm") != 0)
            assert_null(aspen_vm_err_name(CODES[i].value));
        if (strcmp(CODES[i].room, "store") != 0)
            assert_null(aspen_store_err_name(CODES[i].value));
    }
}

static void ranges_tell_the_room(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        int hundreds = -CODES[i].value / 100;
        const char *room = hundreds == 1 ? "vm" : hundreds == 2 ? "store" : hundreds == 3 ? "engine" : "?";
        assert_string_equal(room, CODES[i].room);
    }
}

static void unknown_codes_have_no_name(void **state)
{
    (void)state;
    const int unknown[] = {-1, -2, -100, -199, -299, -399, -400, 1, 42, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(aspen_engine_err_name(unknown[i]));
        assert_null(aspen_engine_strerror(unknown[i]));
        assert_null(aspen_vm_err_name(unknown[i]));
        assert_null(aspen_store_strerror(unknown[i]));
    }
    assert_string_equal(aspen_engine_err_name(0), "ASPEN_ENGINE_OK");
    assert_string_equal(aspen_store_err_name(0), "ASPEN_STORE_OK");
    assert_string_equal(aspen_vm_err_name(0), "ASPEN_VM_OK");
}

static void permanent_store_errors(void **state)
{
    (void)state;
    /* the ones that need a person; everything else passes by itself (retry with backoff) */
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ECORRUPT));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ENEWER));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_EPERM));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ESCHEMA));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ENODIR));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EBUSY));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EFULL));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EIO));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_ENOMEM));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_ELEASE));
    assert_false(aspen_store_error_permanent(ASPEN_ENGINE_EINVAL)); /* not the store's */
    assert_false(aspen_store_error_permanent(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_is_named_once),
        cmocka_unit_test(ranges_tell_the_room),
        cmocka_unit_test(unknown_codes_have_no_name),
        cmocka_unit_test(permanent_store_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
