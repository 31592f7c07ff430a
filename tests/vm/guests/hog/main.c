/* tests/vm/guests/hog — allocates the number of KiB given as input in one block and touches every
 * page of it; outputs the number of KiB it got. Running out of memory must be a job error with a
 * message (malloc returns NULL), never a crash. */
#include <aspen.h>
#include <stdlib.h>

#include "../test_guest.h"

static int hog(const uint8_t *in, size_t len, aspen_buf *out)
{
    uint64_t kib;
    if (!input_u64(in, len, &kib) || kib > ((uint64_t)1 << 40))
        return aspen_error("test-hog: the input must be a number of KiB");
    volatile uint8_t *p = malloc((size_t)kib * 1024);
    if (!p) {
        aspen_heap_stats st;
        aspen_heap_get_stats(&st);
        return aspen_error("test-hog: out of memory: cannot allocate %llu KiB (the heap has %zu KiB "
                           "free)",
                           (unsigned long long)kib, st.free_bytes / 1024);
    }
    for (uint64_t off = 0; off < kib * 1024; off += 4096)
        p[off] = (uint8_t)off;
    return aspen_buf_appendf(out, "%llu", (unsigned long long)kib);
}

ASPEN_JOB_HANDLER(hog);
