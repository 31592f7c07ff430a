/* fuzz/fuzz_tape.c — libFuzzer target: a replay record's tape (vm/tape.c), which `aspen replay`
 * reads back from the store, where anyone with the database can edit it. An input is the tape's
 * bytes. aspen_vm_tape_open must refuse what does not decode (EINVAL, "damaged"); a tape it
 * accepts must walk with aspen_vm_tape_next_call (the listing of `aspen replay --calls`) to its
 * end without a -1, call by call numbered from 1, with as many calls and values as the tape's
 * info counts and every bytes value inside the tape's buffer; editing each number with
 * aspen_vm_tape_set_value must succeed and show in a second walk (same calls, same value
 * counts), and editing bytes must be refused — never a crash or a read past the buffer. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aspen_vm.h"

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_tape: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* Walks t: the number of calls and values; checks each call against the tape's buffer. */
static void walk(const aspen_vm_tape *t, uint32_t *calls, uint32_t *values)
{
    size_t len = 0;
    const uint8_t *buf = aspen_vm_tape_data(t, &len);
    aspen_vm_tape_cursor cur = {0};
    aspen_vm_tape_call c;
    *calls = *values = 0;
    int k;
    while ((k = aspen_vm_tape_next_call(t, NULL, &cur, &c)) == 1) {
        if (c.index != *calls + 1)
            finding("call %u numbered %u", *calls + 1, c.index);
        if (!c.name || !c.name[0])
            finding("call %u has no name", c.index);
        if (c.nvalues > ASPEN_VM_TAPE_MAX_VALUES)
            finding("call %u has %u values", c.index, c.nvalues);
        for (uint32_t i = 0; i < c.nvalues; i++)
            if (c.values[i].is_bytes &&
                (c.values[i].bytes < buf || c.values[i].len > len ||
                 (size_t)(c.values[i].bytes - buf) > len - c.values[i].len))
                finding("value %u of call %u (%zu bytes) lies outside the tape", i + 1, c.index,
                        c.values[i].len);
        *calls += 1;
        *values += c.nvalues;
    }
    if (k != 0)
        finding("an opened tape does not walk to its end (call %u: %d)", *calls + 1, k);
    if (aspen_vm_tape_next_call(t, NULL, &cur, &c) != 0)
        finding("the walk goes on after its end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aspen_vm_tape *t = NULL;
    aspen_vm_error err = {0};
    int rc = aspen_vm_tape_open(data, size, &t, &err);
    if (rc != 0) {
        if (rc != ASPEN_VM_EINVAL || !strstr(err.msg, "damaged") || t)
            finding("a refused tape: rc %d, \"%s\"", rc, err.msg);
        return 0;
    }
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(t, &ti);
    uint32_t calls, values;
    walk(t, &calls, &values);
    if (calls != ti.calls || values != ti.values)
        finding("the walk found %u calls and %u values, the tape counts %u and %u", calls, values,
                ti.calls, ti.values);
    /* every number edited (the first 8 calls'), every bytes value refused */
    for (uint32_t call = 1; call <= calls && call <= 8; call++) {
        aspen_vm_tape_cursor cur = {0};
        aspen_vm_tape_call c;
        for (uint32_t k = 0; k < call; k++)
            if (aspen_vm_tape_next_call(t, NULL, &cur, &c) != 1)
                finding("call %u is gone", call);
        uint32_t n = c.nvalues;
        bool bytes[ASPEN_VM_TAPE_MAX_VALUES];
        for (uint32_t i = 0; i < n; i++)
            bytes[i] = c.values[i].is_bytes;
        for (uint32_t i = 0; i < n; i++) {
            int64_t v = (int64_t)(0x5eed0000u + call * 64 + i) * (i & 1 ? -1 : 1);
            int s = aspen_vm_tape_set_value(t, call, i, v, &err);
            if (bytes[i]) {
                if (s != ASPEN_VM_EINVAL)
                    finding("bytes value %u.%u was set (%d)", call, i + 1, s);
                continue;
            }
            if (s != 0)
                finding("number %u.%u could not be set: %s", call, i + 1, err.msg);
            cur = (aspen_vm_tape_cursor){0};
            for (uint32_t k = 0; k < call; k++)
                if (aspen_vm_tape_next_call(t, NULL, &cur, &c) != 1)
                    finding("call %u is gone after an edit", call);
            if (c.values[i].is_bytes || (int64_t)c.values[i].number != v)
                finding("value %u.%u does not read back as set", call, i + 1);
        }
        if (aspen_vm_tape_set_value(t, call, n, 1, &err) != ASPEN_VM_EINVAL)
            finding("value %u.%u past the last was set", call, n + 1);
    }
    if (aspen_vm_tape_set_value(t, calls + 1, 0, 1, &err) != ASPEN_VM_EINVAL)
        finding("call %u past the last was set", calls + 1);
    uint32_t calls2, values2;
    walk(t, &calls2, &values2);
    if (calls2 != calls || values2 != values)
        finding("edits changed the calls (%u, %u values) to %u, %u values", calls, values, calls2,
                values2);
    aspen_vm_tape_free(t);
    return 0;
}
