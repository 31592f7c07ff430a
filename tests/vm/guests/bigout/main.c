/* tests/vm/guests/bigout — outputs exactly N bytes (N is the input, in decimal), a repeating
 * "0123456789" so the host can check the bytes arrived intact; for the output limit tests. */
#include <aspen.h>

#include "../test_guest.h"

static int bigout(const uint8_t *in, size_t len, aspen_buf *out)
{
    uint64_t n;
    if (!input_u64(in, len, &n) || n > SIZE_MAX / 2)
        return aspen_error("test-bigout: the input must be a byte count");
    if (aspen_buf_reserve(out, (size_t)n) != 0)
        return aspen_error("test-bigout: out of memory for %llu bytes", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        out->data[i] = (uint8_t)('0' + i % 10);
    out->len = (size_t)n;
    return 0;
}

ASPEN_JOB_HANDLER(bigout);
