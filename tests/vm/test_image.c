/* tests/vm/test_image.c — the ELF validator against crafted bad binaries.
 *
 * Starts from a valid minimal guest (tests/vm/minimal.S) and breaks one thing at a time, checking
 * that each binary is refused with its own message and that nothing crashes. Also runs the valid
 * one to prove the baseline is really accepted. */
#include "abi.h"
#include "aspen_vm.h"

#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint8_t *g_good;
static size_t g_len;

static void load_good(void)
{
    FILE *f = fopen(MINIMAL_GUEST, "rb");
    assert_non_null(f);
    g_good = malloc(1 << 16);
    g_len = fread(g_good, 1, 1 << 16, f);
    fclose(f);
    assert_true(g_len > sizeof(Elf64_Ehdr));
}

static uint8_t *copy(void)
{
    uint8_t *c = malloc(g_len);
    memcpy(c, g_good, g_len);
    return c;
}

static Elf64_Ehdr *eh(uint8_t *b) { return (Elf64_Ehdr *)b; }
static Elf64_Phdr *ph(uint8_t *b, int i) { return (Elf64_Phdr *)(b + eh(b)->e_phoff) + i; }
static int find_ph(uint8_t *b, uint32_t type, int nth)
{
    for (int i = 0; i < eh(b)->e_phnum; i++)
        if (ph(b, i)->p_type == type && nth-- == 0)
            return i;
    return -1;
}

/* Load buf and expect a rejection whose message contains want. */
static void expect_reject(const uint8_t *buf, size_t len, const char *want)
{
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    int rc = aspen_vm_image_load_mem(buf, len, "bad-guest", &img, &err);
    if (rc == 0 || !strstr(err.msg, want))
        fail_msg("expected rejection containing \"%s\", got rc=%d msg=\"%s\"", want, rc, err.msg);
    assert_null(img);
    assert_int_equal(err.code, rc);
}

static void test_good_binary_runs(void **state)
{
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_image_load_mem(g_good, g_len, "minimal", &img, &err), 0);
    aspen_vm *vm = NULL;
    if (aspen_vm_create(img, NULL, NULL, &vm, &err) != 0)
        fail_msg("create: %s", err.msg);
    aspen_vm_result r;
    aspen_vm_run_opts o = {.input = "ping", .input_len = 4};
    assert_int_equal(aspen_vm_run(vm, &o, &r, &err), 0);
    assert_int_equal(r.outcome, ASPEN_VM_SUCCESS);
    assert_int_equal(r.output_len, 4);
    assert_memory_equal(r.output, "ping", 4);
    assert_int_equal(r.stats.exits, 1); /* a job without host calls costs exactly one exit */
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);
    aspen_vm_image_release(img);
}

static void test_not_elf(void **state)
{
    expect_reject((const uint8_t *)"hello world, not an elf", 23, "not an ELF binary");
    expect_reject((const uint8_t *)"", 0, "not an ELF binary");
    uint8_t *b = copy();
    expect_reject(b, 40, "truncated");
    free(b);
}

static void test_wrong_class_endian_machine_type(void **state)
{
    uint8_t *b = copy();
    b[EI_CLASS] = ELFCLASS32;
    expect_reject(b, g_len, "32-bit");
    free(b);
    b = copy();
    b[EI_DATA] = ELFDATA2MSB;
    expect_reject(b, g_len, "big-endian");
    free(b);
    b = copy();
    eh(b)->e_machine = EM_AARCH64;
    expect_reject(b, g_len, "AArch64");
    free(b);
    b = copy();
    eh(b)->e_type = ET_DYN;
    expect_reject(b, g_len, "position-independent");
    free(b);
    b = copy(); /* a dynamically linked PIE: the interpreter is what to talk about */
    eh(b)->e_type = ET_DYN;
    ph(b, find_ph(b, PT_NOTE, 0))->p_type = PT_INTERP;
    expect_reject(b, g_len, "dynamically linked");
    free(b);
    b = copy();
    eh(b)->e_type = ET_REL;
    expect_reject(b, g_len, "object file");
    free(b);
}

static void test_dynamic(void **state)
{
    uint8_t *b = copy();
    int n = find_ph(b, PT_NOTE, 0);
    ph(b, n)->p_type = PT_INTERP;
    expect_reject(b, g_len, "dynamically linked");
    expect_reject(b, g_len, "-static");
    free(b);
    b = copy();
    ph(b, find_ph(b, PT_NOTE, 0))->p_type = PT_DYNAMIC;
    expect_reject(b, g_len, "dynamically linked");
    free(b);
    /* a loaded relocation section (e.g. IRELATIVE in static glibc) */
    b = copy();
    Elf64_Shdr *sh = (Elf64_Shdr *)(b + eh(b)->e_shoff);
    int found = 0;
    for (int i = 1; i < eh(b)->e_shnum && !found; i++)
        if (sh[i].sh_type == SHT_PROGBITS && (sh[i].sh_flags & SHF_ALLOC)) {
            sh[i].sh_type = SHT_RELA;
            found = 1;
        }
    assert_true(found);
    expect_reject(b, g_len, "relocations");
    free(b);
    b = copy();
    ph(b, find_ph(b, PT_NOTE, 0))->p_type = PT_TLS;
    expect_reject(b, g_len, "thread-local storage");
    free(b);
}

static void test_segments(void **state)
{
    int text, data;
    uint8_t *b = copy();
    text = find_ph(b, PT_LOAD, 0);
    data = find_ph(b, PT_LOAD, 1);
    assert_true(text >= 0 && data >= 0);
    ph(b, data)->p_vaddr = ph(b, text)->p_vaddr; /* overlap */
    expect_reject(b, g_len, "overlap");
    free(b);

    b = copy();
    ph(b, data)->p_vaddr = 0xfffffffffffff000ull; /* wraps */
    ph(b, data)->p_memsz = 0x2000;
    expect_reject(b, g_len, "overflows");
    free(b);

    b = copy();
    ph(b, data)->p_vaddr = ASPEN_USER_MAX; /* outside guest memory */
    expect_reject(b, g_len, "leaves guest memory");
    free(b);

    b = copy();
    ph(b, text)->p_vaddr = 0x1000; /* below ASPEN_USER_MIN: would map the null area */
    expect_reject(b, g_len, "leaves guest memory");
    free(b);

    b = copy();
    ph(b, data)->p_flags = PF_R | PF_W | PF_X;
    expect_reject(b, g_len, "writable and executable");
    free(b);

    b = copy();
    ph(b, text)->p_filesz = ph(b, text)->p_memsz + 1;
    expect_reject(b, g_len, "more file bytes");
    free(b);

    b = copy();
    ph(b, data)->p_offset = g_len - 2; /* file bytes past the end */
    expect_reject(b, g_len, "past the end");
    free(b);

    b = copy();
    eh(b)->e_phoff = g_len - 8;
    expect_reject(b, g_len, "program header");
    free(b);

    b = copy();
    for (int i = 0; i < eh(b)->e_phnum; i++)
        if (ph(b, i)->p_type == PT_LOAD)
            ph(b, i)->p_type = PT_NULL;
    expect_reject(b, g_len, "no loadable segments");
    free(b);
}

static void test_entry_and_note(void **state)
{
    uint8_t *b = copy();
    eh(b)->e_entry = ph(b, find_ph(b, PT_LOAD, 1))->p_vaddr; /* into data */
    expect_reject(b, g_len, "entry point");
    expect_reject(b, g_len, "outside its code");
    free(b);

    /* find the note descriptor in the file */
    b = copy();
    Elf64_Phdr *n = ph(b, find_ph(b, PT_NOTE, 0));
    Elf64_Nhdr *nh = (Elf64_Nhdr *)(b + n->p_offset);
    struct aspen_abi_note *desc = (struct aspen_abi_note *)(b + n->p_offset + sizeof *nh + 8);
    assert_int_equal(nh->n_type, ASPEN_NOTE_TYPE);
    desc->execute = 0;
    expect_reject(b, g_len, "missing execute function export");
    free(b);

    b = copy();
    n = ph(b, find_ph(b, PT_NOTE, 0));
    desc = (struct aspen_abi_note *)(b + n->p_offset + sizeof *nh + 8);
    desc->execute = ph(b, find_ph(b, PT_LOAD, 1))->p_vaddr; /* data, not code */
    expect_reject(b, g_len, "missing execute function export");
    free(b);

    b = copy();
    n = ph(b, find_ph(b, PT_NOTE, 0));
    desc = (struct aspen_abi_note *)(b + n->p_offset + sizeof *nh + 8);
    desc->abi_version = 99;
    expect_reject(b, g_len, "ABI version 99");
    free(b);

    b = copy();
    n = ph(b, find_ph(b, PT_NOTE, 0));
    ((Elf64_Nhdr *)(b + n->p_offset))->n_type = 1; /* not our note any more */
    /* the section copy of the note is the same bytes, so it is gone too: without the note, the
     * binary is taken for a static Linux program (docs/ABI.md section 12), not refused */
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_image_load_mem(b, g_len, "no-note", &img, &err), 0);
    assert_true(aspen_vm_image_is_linux(img));
    aspen_vm_image_release(img);
    /* ... but not with thread-local storage whose template its libc could not find: this test
     * guest's program headers are not in a loaded segment (musl-gcc's are; test_linux) */
    ph(b, find_ph(b, PT_NOTE, 0))->p_type = PT_TLS;
    expect_reject(b, g_len, "program headers are not in a loaded segment");
    free(b);

    b = copy();
    n = ph(b, find_ph(b, PT_NOTE, 0));
    ((Elf64_Nhdr *)(b + n->p_offset))->n_descsz = 0x7ffffff0; /* malformed length */
    expect_reject(b, g_len, "malformed note");
    free(b);
}

static void test_too_large(void **state)
{
    size_t big = ASPEN_VM_MAX_BINARY + 1;
    uint8_t *b = calloc(1, big);
    memcpy(b, g_good, g_len);
    expect_reject(b, big, "Binary too large: 52428801 bytes (max: 52428800 bytes)");
    free(b);
}

static void test_file_errors(void **state)
{
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_image_load_file("/nonexistent/guest", &img, &err), ASPEN_VM_EIO);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_int_equal(aspen_vm_image_load_file("/tmp", &img, &err), ASPEN_VM_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

/* Random corruption: thousands of mutated binaries, none may crash the loader. */
static void test_fuzz_mutations(void **state)
{
    srand(12345);
    for (int i = 0; i < 20000; i++) {
        uint8_t *b = copy();
        int flips = 1 + rand() % 8;
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)rand() % (g_len < 512 ? g_len : 512); /* headers mostly */
            if (rand() % 4 == 0)
                pos = (size_t)rand() % g_len;
            b[pos] = (uint8_t)rand();
        }
        aspen_vm_image *img = NULL;
        aspen_vm_error err = {0};
        if (aspen_vm_image_load_mem(b, g_len, "fuzz", &img, &err) == 0)
            aspen_vm_image_release(img);
        else
            assert_true(err.msg[0] != '\0');
        free(b);
    }
}

static void test_parse_size(void **state)
{
    size_t v = 0;
    assert_int_equal(aspen_vm_parse_size("1M", &v), 0);
    assert_int_equal(v, 1u << 20);
    assert_int_equal(aspen_vm_parse_size("512K", &v), 0);
    assert_int_equal(v, 512u << 10);
    assert_int_equal(aspen_vm_parse_size("256MiB", &v), 0);
    assert_int_equal(v, 256u << 20);
    assert_int_equal(aspen_vm_parse_size("1g", &v), 0);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(aspen_vm_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    static const char *bad[] = {"", "0", "-1", "1X", "M", "1MB2", "99999999999999999999",
                                "18446744073709551615K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (aspen_vm_parse_size(bad[i], &v) == 0)
            fail_msg("\"%s\" parsed as %zu", bad[i], v);
}

int main(void)
{
    load_good();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_binary_runs),
        cmocka_unit_test(test_not_elf),
        cmocka_unit_test(test_wrong_class_endian_machine_type),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_entry_and_note),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_parse_size),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_good);
    return rc;
}
