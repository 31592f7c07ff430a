/* tests/vm/test_kvm_missing.c — without a usable /dev/kvm, every entry point says "KVM not
 * available" with the fix, and nothing crashes. Its own executable: the KVM handle is opened once
 * per process, so this must run before anything opens the real device. */
#include "aspen_vm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void test_missing_device(void **state)
{
    setenv("ASPEN_KVM_DEVICE", "/nonexistent/kvm", 1);
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_check_kvm(&err), ASPEN_VM_EKVM);
    assert_non_null(strstr(err.msg, "KVM not available"));
    assert_non_null(strstr(err.msg, "modprobe kvm"));

    aspen_vm_image *img = NULL;
    assert_int_equal(aspen_vm_image_load_file(MINIMAL_GUEST, &img, &err), 0);
    aspen_vm *vm = NULL;
    assert_int_equal(aspen_vm_create(img, NULL, NULL, &vm, &err), ASPEN_VM_EKVM);
    assert_null(vm);
    assert_non_null(strstr(err.msg, "KVM not available"));
    aspen_vm_image_release(img);
}

static void test_no_permission(void **state)
{
    /* a file we cannot open for writing stands in for /dev/kvm without group membership */
    char path[] = "/tmp/aspen-kvm-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    chmod(path, 0);
    setenv("ASPEN_KVM_DEVICE", path, 1);
    aspen_vm_error err = {0};
    int rc = aspen_vm_check_kvm(&err);
    /* root ignores file modes: then the open works and the file is simply not KVM */
    assert_int_equal(rc, ASPEN_VM_EKVM);
    assert_non_null(strstr(err.msg, "KVM not available"));
    if (geteuid() != 0)
        assert_non_null(strstr(err.msg, "kvm group"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_device),
        cmocka_unit_test(test_no_permission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
