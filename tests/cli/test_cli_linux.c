/* tests/cli/test_cli_linux.c — static Linux programs through `aspen run` (docs/ABI.md section 12):
 * zlib's unmodified minigzip compresses a file given with --input and, with --arg -d, gets it back
 * byte for byte; stderr lines are printed as the guest's log lines and a failing exit status is
 * the job's error, with `aspen run` exiting 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_support.h"

static void test_minigzip_round_trip(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-cli-linux-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[4096];
    /* the input: this very test's source, a few KiB of text */
    snprintf(cmd, sizeof cmd,
             ASPEN_BIN " run minigzip --timeout 30000 --memory 8M --input %s/tests/cli/test_cli_linux.c > %s/c.gz"
             " && " ASPEN_BIN " run minigzip --timeout 30000 --memory 8M --arg -d --input %s/c.gz > %s/back"
             " && cmp %s/back %s/tests/cli/test_cli_linux.c && gzip -t %s/c.gz && echo same",
             ASPEN_SOURCE_DIR, dir, dir, dir, dir, ASPEN_SOURCE_DIR, dir);
    out o = run_shell(cmd);
    if (o.status != 0 || !has(&o, "same"))
        fail_msg("round trip failed (%d): %s", o.status, o.buf);
    free(o.buf);
    /* not gzip data: minigzip -d says so on stderr and exits 1 */
    snprintf(cmd, sizeof cmd,
             "printf '\\037\\213\\010\\000\\000\\000\\000\\000\\000\\003\\377\\377' | " ASPEN_BIN
             " run minigzip --timeout 30000 --memory 8M --arg -d --input - 2>&1; echo \"rc=$?\"");
    o = run_shell(cmd);
    if (!has(&o, "error: the program exited with status 1") || !has(&o, "[minigzip] ") ||
        !has(&o, "rc=1"))
        fail_msg("corrupt input: %s", o.buf);
    free(o.buf);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_args_and_unsupported(void **state)
{
    (void)state;
    out o = run_shell("printf 'in' | " ASPEN_BIN " run test-lx-probe --timeout 30000 --arg echo --arg 'a b' "
                      "--input - 2>&1");
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "argv[1]=echo\nargv[2]=a b\nin"));
    assert_true(has(&o, "[test-lx-probe] probe: 2 bytes, argc 3"));
    free(o.buf);
    o = run_shell("printf 41 | " ASPEN_BIN " run test-lx-probe --timeout 30000 --arg syscall --input - 2>&1");
    assert_int_equal(o.status, 1);
    assert_true(has(&o, "error: unsupported system call 41 (socket)"));
    free(o.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minigzip_round_trip),
        cmocka_unit_test(test_args_and_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
