/* tests/cli/test_guest_log.c — the log sanitiser every guest log line passes on its way to
 * `aspen run`, `aspen logs` and the console (vm/host.c host_emit_log; issue 7: C1 controls and bidi
 * overrides passed it). A live VM runs test-hostcalls, which calls a host function registered here
 * that logs hostile text through aspen_vm_call_log (the path hl_println takes). C0 controls but
 * tab, DEL, C1 controls (as UTF-8, and the raw bytes 0x80..0x9F outside a character), bidi
 * controls and line separators must each become '?'; well-formed UTF-8 whose continuation bytes
 * are 0x80..0x9F (an em dash, quotes) must pass unchanged, and other non-UTF-8 bytes are kept for
 * the front ends to show escaped. Needs /dev/kvm: fails, never skips, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aspen_vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *in, *want; /* want: the lines, each ending in '\n' */
} cases[] = {
    {"\x1b]0;pwned\x07", "?]0;pwned?\n"},
    {"a\xc2\x9b" "31mb", "a?31mb\n"},
    {"a\x9b" "31mb\x9d" "0;t\x9c", "a?31mb?0;t?\n"},
    {"\xc2\x80\xc2\x85\xc2\x9f|", "???|\n"},
    {"x\xe2\x80\xaey \xe2\x81\xa6z\xe2\x81\xa9 \xe2\x80\x8e\xe2\x80\x8f\xd8\x9c \xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
     "x?y ?z? ??? ????\n"},
    {"\xe2\x80\xa8sep\xe2\x80\xa9", "?sep?\n"},
    {"caf\xc3\xa9 \xe2\x80\x94 \xe2\x80\x9cq\xe2\x80\x9d \xf0\x9f\x98\x80 \xc2\xa0",
     "caf\xc3\xa9 \xe2\x80\x94 \xe2\x80\x9cq\xe2\x80\x9d \xf0\x9f\x98\x80 \xc2\xa0\n"},
    {"\xff\xfe ok \xc3", "\xff\xfe ok \xc3\n"},
    {"tab\tkept\x7f", "tab\tkept?\n"},
    {"l1\nl2\r\n", "l1\nl2?\n"},
};

typedef struct lines {
    char buf[4096];
    size_t len;
} lines;

static void on_log(void *user, const char *line, size_t len)
{
    lines *l = user;
    assert_true(l->len + len + 1 < sizeof l->buf);
    memcpy(l->buf + l->len, line, len);
    l->len += len;
    l->buf[l->len++] = '\n';
}

static int fn_emit(aspen_vm_call *call, void *user)
{
    (void)user;
    uint64_t i = aspen_vm_call_arg(call, 0);
    if (i >= sizeof cases / sizeof cases[0])
        return aspen_vm_call_illegal(call, "no case %llu", (unsigned long long)i);
    aspen_vm_call_log(call, cases[i].in, strlen(cases[i].in));
    aspen_vm_call_return(call, 0);
    return 0;
}

static void test_log_sanitiser(void **st)
{
    (void)st;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_check_kvm(&err), 0);
    aspen_vm_host *host = aspen_vm_host_new();
    assert_non_null(host);
    assert_int_equal(aspen_vm_host_register(host, "emit", "(u64 case, u64) -> 0", fn_emit, NULL, &err), 0);
    aspen_vm_image *img = NULL;
    if (aspen_vm_image_load_file(GUEST_DIR "/test-hostcalls", &img, &err) != 0)
        fail_msg("%s", err.msg);
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    aspen_vm *vm = NULL;
    if (aspen_vm_create(img, &cfg, host, &vm, &err) != 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char input[64];
        snprintf(input, sizeof input, "call:emit:%zu:0", i);
        lines got = {0};
        aspen_vm_run_opts ro = {.input = input, .input_len = strlen(input), .on_log = on_log,
                                .log_user = &got};
        aspen_vm_result res;
        memset(&res, 0, sizeof res);
        assert_int_equal(aspen_vm_run(vm, &ro, &res, &err), 0);
        if (res.outcome != ASPEN_VM_SUCCESS)
            fail_msg("case %zu: %s", i, res.message);
        got.buf[got.len] = '\0';
        if (strcmp(got.buf, cases[i].want) != 0)
            fail_msg("case %zu: logged \"%s\", want \"%s\"", i, got.buf, cases[i].want);
        aspen_vm_result_free(&res);
    }
    aspen_vm_destroy(vm);
    aspen_vm_image_release(img);
    aspen_vm_host_free(host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_log_sanitiser)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
