/* fuzz/fuzz_elf.c — libFuzzer target: the guest ELF validator, aspen_vm_image_load_mem, on
 * arbitrary bytes.
 *
 * A rejection must come with ASPEN_VM_EIMAGE (or ENOMEM) and a message; an accepted image must
 * report sizes consistent with its input. An image that passes is then started in a small VM and
 * given one job, so an image the validator lets through cannot hurt the monitor either: creation
 * and the run may fail, but only with an error code and a message, never with a crash (the
 * sanitizers watch the host side). The guest's code is whatever the fuzzer wrote, so start-up
 * faults, crashes and timeouts are ordinary outcomes here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aspen_vm.h"

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_elf: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static bool g_run = true;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("ASPEN_FUZZ_ELF_RUN"); /* 0: validate only, no VM */
    g_run = !(e && strcmp(e, "0") == 0);
    return 0;
}

static void try_run(aspen_vm_image *img)
{
    size_t mem = aspen_vm_image_mem_size(img);
    if (mem > (8u << 20))
        return; /* valid, but a large VM per input would slow the search down */
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.stack_bytes = 16u << 10;
    cfg.memory_bytes = (mem + (128u << 10) + 4095) & ~(size_t)4095;
    cfg.timeout_ms = 50;
    aspen_vm *vm = NULL;
    aspen_vm_error err = {0};
    int rc = aspen_vm_create(img, &cfg, NULL, &vm, &err);
    if (rc != 0) {
        if (rc > 0 || vm || !err.msg[0] || !memchr(err.msg, '\0', sizeof err.msg))
            finding("aspen_vm_create returned %d without a clean error: %s", rc, err.msg);
        return;
    }
    static const char input[] = "{\"fuzz\":1}";
    aspen_vm_run_opts opts = {.input = input, .input_len = sizeof input - 1};
    aspen_vm_result res;
    rc = aspen_vm_run(vm, &opts, &res, &err);
    if (rc > 0 || (unsigned)res.outcome > ASPEN_VM_CRASHED)
        finding("aspen_vm_run returned %d, outcome %u", rc, (unsigned)res.outcome);
    if (rc == 0 && res.outcome != ASPEN_VM_SUCCESS && !res.message[0])
        finding("outcome %s without a message", aspen_vm_outcome_name(res.outcome));
    if (rc == 0 && res.outcome != ASPEN_VM_CRASHED && !aspen_vm_usable(vm))
        finding("the VM is unusable after outcome %s", aspen_vm_outcome_name(res.outcome));
    aspen_vm_result_free(&res);
    aspen_vm_destroy(vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read one past the end is an ASan report. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    aspen_vm_image *img = NULL;
    aspen_vm_error err;
    memset(&err, 0, sizeof err);
    int rc = aspen_vm_image_load_mem(copy, size, "fuzz.elf", &img, &err);
    if (rc == 0) {
        if (!img)
            finding("success without an image");
        if (aspen_vm_image_file_size(img) != size)
            finding("file size %zu for a %zu-byte input", aspen_vm_image_file_size(img), size);
        size_t mem = aspen_vm_image_mem_size(img);
        if (mem == 0 || mem % 4096 != 0 || mem > (1u << 30))
            finding("image memory size %zu is not a page multiple in (0, 1 GiB]", mem);
        if (strcmp(aspen_vm_image_name(img), "fuzz.elf") != 0)
            finding("image name \"%s\"", aspen_vm_image_name(img));
        free(copy); /* the image must not keep pointers into the caller's bytes */
        copy = NULL;
        if (g_run)
            try_run(img);
        aspen_vm_image_release(img);
    } else {
        if (img)
            finding("failure %d with an image", rc);
        if (rc != ASPEN_VM_EIMAGE && rc != ASPEN_VM_ENOMEM)
            finding("rejected with code %d, not EIMAGE: %s", rc, err.msg);
        if (err.code != rc || !err.msg[0] || !memchr(err.msg, '\0', sizeof err.msg))
            finding("rejected (%d) without a message (code %d)", rc, err.code);
    }
    free(copy);
    return 0;
}
